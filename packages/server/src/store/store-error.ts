import { SysattestError } from '@sysattest/core';

/**
 * Why a store operation was refused. Callers (the HTTP layer, the admin CLI) switch on `code`:
 * - CONFLICT: different bytes for a manifest that is already stored (recorded for the operator);
 * - NOT_FOUND: the job, token, key or document named does not exist;
 * - INVALID: the arguments are malformed or ask for something the store refuses to do;
 * - LEASE_LOST: a worker acted on a job it no longer holds (its lease was taken by another);
 * - UNSUPPORTED: the platform's distribution has no implemented version ordering;
 * - SCHEMA_TOO_NEW: the database was migrated by a newer sysattest-server than this one;
 * - UNAVAILABLE: the database cannot be reached, opened or locked right now (retry later).
 */
export type StoreErrorCode =
  'CONFLICT' | 'NOT_FOUND' | 'INVALID' | 'LEASE_LOST' | 'UNSUPPORTED' | 'SCHEMA_TOO_NEW' | 'UNAVAILABLE';

export class StoreError extends SysattestError<StoreErrorCode> {}

export function isStoreError(e: unknown, code?: StoreErrorCode): e is StoreError {
  return e instanceof StoreError && (code === undefined || e.code === code);
}
