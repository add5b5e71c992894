export * from './http-transport.js';
