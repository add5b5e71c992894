/**
 * The server's wire protocol, in one place: route paths, request and answer schemas (zod, from
 * which the server derives its JSON Schema validation and OpenAPI document), error codes, and the
 * bounds every side checks. The server validates requests with it; the client and the generator's
 * worker parse answers with it. Nothing here does I/O.
 */
export * from './routes.js';
export * from './errors.js';
export * from './fields.js';
export { documentedAs, protocolJsonSchema, sentAlways, unchecked } from './json-schema.js';
export * from './lookup.js';
export * from './jobs.js';
export * from './reports.js';
export * from './documents.js';
