/**
 * The server's storage layer: one code path over SQLite (the default, a file) and PostgreSQL.
 * Open it with openStore(); everything else is a method of Store.
 */
export { openStore, Store, DEFAULT_JOB_POLICY, type StoreOptions } from './store.js';
export { StoreError, isStoreError, type StoreErrorCode } from './store-error.js';
export {
  DEFAULT_SQLITE_PATH,
  parseStoreLocation,
  redactLocation,
  type ConnectionOptions,
  type DialectName,
  type StoreLocation,
} from './connection.js';
export { SCHEMA_VERSION } from './migrations.js';
export type { JobPolicy } from './context.js';
export type {
  CatalogEntryInfo,
  CatalogIngestResult,
  CatalogPackageInfo,
  CatalogSnapshotDocument,
  CatalogSnapshotInfo,
  NewestChange,
} from './catalogs.js';
export type { ManifestConflict, ManifestDocument, ManifestInfo, ManifestIngestOutcome } from './manifests.js';
export {
  LOOKUP_LIMITS,
  type LookupDeferred,
  type LookupItem,
  type LookupItemResult,
  type LookupOptions,
  type LookupResult,
  type LookupStatus,
  type ReverseLookupHit,
  type ReverseLookupResult,
} from './lookup.js';
export type { DeferReason, QueuePolicy } from './queue-quota.js';
export {
  JOB_LIMITS,
  JOB_STATES,
  type GenerationJob,
  type JobFilter,
  type JobReason,
  type JobState,
} from './jobs.js';
export {
  TOKEN_PREFIX,
  TOKEN_ROLES,
  type CreatedToken,
  type TokenIdentity,
  type TokenInfo,
  type TokenRole,
} from './tokens.js';
export {
  DEFAULT_HOST_POLICY,
  type ForgottenHost,
  type HostCounts,
  type HostPolicy,
  type RecordOutcome,
  type ReportToRecord,
} from './hosts.js';
export type { HostFilter, HostPage, HostRunning } from './read-model/index.js';
export type { TrustedKeyInfo } from './trusted-keys.js';
export type { TrackedPackage, TrackingSource } from './tracked-packages.js';
export type { PlatformStats, StoreStats } from './stats.js';
