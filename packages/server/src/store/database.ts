import type { ColumnType, Generated } from 'kysely';

/**
 * The tables as Kysely sees them (the schema itself, and why it is shaped so, is in
 * migrations.ts). Conventions that hold on both SQLite and PostgreSQL, so that one code path
 * serves both:
 * - ids are 64-bit integers (PostgreSQL `bigint` identity, parsed to numbers by the pool; SQLite
 *   rowids);
 * - times are TEXT in `Date.prototype.toISOString()` form (`2026-11-25T12:00:00.000Z`): fixed
 *   width, so text order is time order, and written by the store's clock, never the database's,
 *   so a test can move time (leases, backoff) without sleeping;
 * - exact document bytes and binary digests are BLOB / bytea (Buffer on read).
 */

type Id = Generated<number>;
/** A binary column: Buffer when read, any Uint8Array when written. */
type Bytes = ColumnType<Buffer, Uint8Array, Uint8Array>;

export interface PlatformsTable {
  id: Id;
  /** `distro/release/arch`. */
  name: string;
  distro: string;
  release: string;
  arch: string;
  created_at: string;
}

export interface CatalogSnapshotsTable {
  id: Id;
  platform_id: number;
  digest: string;
  generated_at: string;
  signer_fingerprint: string;
  signed_at: string;
  package_count: number;
  ingested_at: string;
  signature: string;
  bytes: Bytes;
}

export interface CatalogPackagesTable {
  id: Id;
  platform_id: number;
  name: string;
  arch: string;
  newest_version: string | null;
}

export interface CatalogEntriesTable {
  id: Id;
  package_id: number;
  version: string;
  source_name: string;
  source_version: string;
  size: number;
  /** The index's SHA-256 of the package file; null for an apk entry (which has apk_checksum). */
  archive_sha256: string | null;
  filename: string | null;
  first_seen: string;
  last_seen: string;
  withdrawn_at: string | null;
  /** Alpine: the APKINDEX `C:` checksum as written (`Q1…`/`Q2…`); null elsewhere. */
  apk_checksum: string | null;
}

export interface ManifestsTable {
  id: Id;
  platform_id: number;
  name: string;
  version: string;
  arch: string;
  source_name: string;
  source_version: string;
  digest: string;
  signer_fingerprint: string;
  signed_at: string;
  generated_at: string;
  entry_count: number;
  file_count: number;
  ingested_at: string;
  signature: string;
  bytes: Bytes;
}

export interface PathsTable {
  id: Id;
  /** sha256 of the UTF-8 path: the unique key (a btree cannot index 4 KiB paths on PostgreSQL). */
  key: Bytes;
  path: string;
}

export interface ContentsTable {
  id: Id;
  /** The file's sha256, 32 bytes. */
  sha256: Bytes;
  size: number;
}

export interface ManifestFilesTable {
  manifest_id: number;
  path_id: number;
  content_id: number;
}

export interface ConflictsTable {
  id: Id;
  platform_id: number;
  name: string;
  version: string;
  arch: string;
  manifest_id: number;
  digest: string;
  signer_fingerprint: string;
  first_received_at: string;
  last_received_at: string;
  attempts: number;
  signature: string;
  bytes: Bytes;
}

export interface TokensTable {
  id: Id;
  name: string;
  role: string;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
  /** The host a reporter token writes for (0006); null on every other role. */
  host: string | null;
}

export interface TrustedKeysTable {
  fingerprint: string;
  armored: string;
  added_at: string;
  removed_at: string | null;
}

export interface TrackedPackagesTable {
  platform_id: number;
  name: string;
  source: string;
  created_at: string;
}

export interface JobsTable {
  id: Id;
  platform_id: number;
  target_platform_id: number;
  name: string;
  version: string;
  arch: string;
  reason: string;
  state: string;
  attempts: number;
  next_run_at: string;
  lease_owner: string | null;
  lease_seconds: number | null;
  lease_expires_at: string | null;
  last_error: string | null;
  manifest_id: number | null;
  created_at: string;
  updated_at: string;
  completed_at: string | null;
  /** Claims take higher first (0005): 0 asked for, -1 a tracked catalog's backlog. */
  priority: Generated<number>;
}

/** What anonymous lookups of one client created in one quota window (queue-quota.ts). */
export interface QueueQuotasTable {
  /** The client's address (IPv6: its /64), as the HTTP layer names it. */
  client: string;
  window_start: string;
  jobs: number;
  tracked: number;
}

/** A host that has reported (0006): its latest report's verdict and counts. */
export interface HostsTable {
  id: Id;
  name: string;
  /** The platform its latest report names (the host's claim: not a platforms row). */
  platform: string;
  first_report_at: string;
  last_report_at: string;
  last_verdict: string;
  last_exit_code: number;
  /** host_reports.id of the latest report. */
  latest_report_id: number;
  /** JSON: the latest report's HostCounts (hosts.ts). */
  summary: string;
}

export interface HostReportsTable {
  id: Id;
  host_id: number;
  /** The client's id of the report (a UUID): unique per host. */
  report_id: string;
  received_at: string;
  verdict: string;
  exit_code: number;
  failures: number;
  /** JSON: the report's HostCounts. */
  summary: string;
  /** The report's JSON, gzipped. */
  report: Bytes;
  /** Bytes of the report's JSON (uncompressed). */
  bytes: number;
}

/** The latest report's packages of each host. */
export interface HostPackagesTable {
  host_id: number;
  name: string;
  arch: string;
  version: string;
  status: string;
  reason: string | null;
  /** The newest version the report names (signed catalog's, else the server's claim), or null. */
  newest_version: string | null;
}

export interface Database {
  platforms: PlatformsTable;
  catalog_snapshots: CatalogSnapshotsTable;
  catalog_packages: CatalogPackagesTable;
  catalog_entries: CatalogEntriesTable;
  manifests: ManifestsTable;
  paths: PathsTable;
  contents: ContentsTable;
  manifest_files: ManifestFilesTable;
  conflicts: ConflictsTable;
  tokens: TokensTable;
  trusted_keys: TrustedKeysTable;
  tracked_packages: TrackedPackagesTable;
  jobs: JobsTable;
  queue_quotas: QueueQuotasTable;
  hosts: HostsTable;
  host_reports: HostReportsTable;
  host_packages: HostPackagesTable;
}
