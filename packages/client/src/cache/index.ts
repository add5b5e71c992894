/** The local cache of verified manifests. */
export * from './manifest-cache.js';
