/** The pinned generator keys. */
export * from './store.js';
