export * from './http-client.js';
export * from './http-source.js';
