import { queueBacklog } from './backlog.js';
import type {
  HostDetailAnswer,
  HostVerdict,
  TrustedKeyring,
  VerifiedCatalog,
  VerifiedManifest,
  VerifyReport,
} from '@sysattest/core';
import type {
  FleetRow,
  HealthInfo,
  HostBehind,
  PackageVersionRef,
  JobView,
  ManifestSummary,
  PackageHit,
  Page,
  PageRequest,
  PlatformPackage,
  UpgradeEvent,
  WorkerInfo,
} from '@sysattest/dashboard';
import type { Kysely } from 'kysely';
import {
  catalogPackage,
  getCatalogSnapshot,
  ingestCatalog,
  latestCatalog,
  type CatalogIngestResult,
  type CatalogPackageInfo,
  type CatalogSnapshotDocument,
  type CatalogSnapshotInfo,
} from './catalogs.js';
import {
  createDatabase,
  parseStoreLocation,
  redactLocation,
  type ConnectionOptions,
  type DialectName,
} from './connection.js';
import { translateError, type JobPolicy, type StoreContext } from './context.js';
import type { Database } from './database.js';
import {
  DEFAULT_HOST_POLICY,
  forgetHost,
  recordReport,
  type ForgottenHost,
  type HostPolicy,
  type RecordOutcome,
  type ReportToRecord,
} from './hosts.js';
import {
  claimJobs,
  completeJob,
  failJob,
  getJob,
  heartbeat,
  listJobs,
  requeueJob,
  type GenerationJob,
  type JobFilter,
} from './jobs.js';
import {
  lookup,
  lookupWith,
  reverseLookup,
  type LookupItem,
  type LookupOptions,
  type LookupResult,
  type ReverseLookupResult,
} from './lookup.js';
import {
  getConflictDocument,
  getManifest,
  ingestManifest,
  listConflicts,
  listManifests,
  type ManifestConflict,
  type ManifestDocument,
  type ManifestInfo,
  type ManifestIngestOutcome,
} from './manifests.js';
import { executedMigrations, migrateToLatest, MIGRATION_NAMES } from './migrations.js';
import {
  fleet,
  hostCountsByVerdict,
  hostDetail,
  hostReport,
  hostsPage,
  hostsRunning,
  latestHostReport,
  type HostFilter,
  type HostPage,
  type HostRunning,
  jobsPage,
  manifestSummary,
  newestSnapshotId,
  packageUpgrades,
  packageVersions,
  platformsWithCatalog,
  queueCounts,
  readContext,
  searchPackages,
  trackedPackagesPage,
  workers,
  type ReadContext,
} from './read-model/index.js';
import { hostsPerPlatform, hostVerdictCounts } from './read-model/host-counts.js';
import { hostsBehind, hostsBehindCounts, type UpgradeRef } from './read-model/host-upgrades.js';
import { databaseBytes, storeStats, type StoreStats } from './stats.js';
import { StoreError } from './store-error.js';
import {
  authenticate,
  createToken,
  listTokens,
  revokeToken,
  sessionToken,
  type CreatedToken,
  type TokenIdentity,
  type TokenInfo,
  type TokenRole,
} from './tokens.js';
import {
  listTrackedPackages,
  trackPackages,
  untrackPackages,
  type TrackedPackage,
  type TrackingSource,
} from './tracked-packages.js';
import {
  addTrustedKey,
  listTrustedKeys,
  removeTrustedKey,
  trustedKeyring,
  type TrustedKeyInfo,
} from './trusted-keys.js';

export interface StoreOptions extends ConnectionOptions {
  /** The store's clock (default: the system clock). Tests pass their own to move time. */
  now?: () => Date;
  /** Generation-queue retry policy (defaults: 5 attempts, backoff 60 s doubling up to 6 h). */
  jobs?: Partial<JobPolicy>;
  /** Platforms that track every version of their catalog (see backlog.ts). */
  trackAll?: readonly string[];
  /** Hosts' reports: retention and staleness (defaults: keep 100, 90 days, stale after 48 h). */
  hosts?: Partial<HostPolicy>;
}

export const DEFAULT_JOB_POLICY: JobPolicy = {
  maxAttempts: 5,
  backoffBaseSeconds: 60,
  backoffMaxSeconds: 6 * 3600,
};

/**
 * Opens the store at `location` (see parseStoreLocation: `postgres://…`, `sqlite:PATH`, a path,
 * or nothing for ./data/sysattest.db), brings its schema up to date, and returns it.
 * Errors: INVALID (location), UNAVAILABLE (cannot connect or open), SCHEMA_TOO_NEW.
 *
 * SQLite: open one Store per database file per process (it is one connection; several server
 * processes on one file are fine, their writes take turns). PostgreSQL: any number of stores and
 * processes; each store is a pool of `poolSize` connections.
 */
export async function openStore(location?: string, options: StoreOptions = {}): Promise<Store> {
  const parsed = parseStoreLocation(location);
  const db = createDatabase(parsed, options);
  const where = parsed.dialect === 'postgres' ? redactLocation(parsed.url) : parsed.path;
  try {
    await migrateToLatest(db, parsed.dialect);
  } catch (e) {
    await db.destroy().catch(() => undefined);
    const translated = translateError(e);
    if (translated instanceof StoreError) {
      throw translated.code === 'UNAVAILABLE'
        ? new StoreError('UNAVAILABLE', `cannot open the database ${where}: ${translated.message}`, {
            cause: e,
          })
        : translated;
    }
    throw translated;
  }
  return new Store(db, parsed.dialect, where, {
    now: options.now ?? (() => new Date()),
    jobs: { ...DEFAULT_JOB_POLICY, ...options.jobs },
    trackAll: new Set(options.trackAll ?? []),
    hosts: hostPolicy(options.hosts),
  });
}

function hostPolicy(options: Partial<HostPolicy> = {}): HostPolicy {
  const policy = { ...DEFAULT_HOST_POLICY, ...options };
  const positive = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;
  if (!positive(policy.keep) || !positive(policy.maxAgeDays) || !positive(policy.staleAfterSeconds)) {
    throw new StoreError(
      'INVALID',
      'hosts: keep, maxAgeDays and staleAfterSeconds are whole numbers of at least 1',
    );
  }
  return policy;
}

/**
 * The server's storage: catalogs, manifests, the reverse index, the generation queue, tokens,
 * trusted keys, and the read model behind the dashboard's views (read-model/). One code path over
 * SQLite and PostgreSQL. Every method that writes does so in one transaction (all or nothing).
 * Errors the caller should expect are StoreErrors with a code; database outages surface as
 * UNAVAILABLE.
 *
 * The store trusts what it is given to be verified: ingest methods take core's VerifiedCatalog /
 * VerifiedManifest, which only verifyCatalog / verifyManifest can produce (so the caller must have
 * checked the signature against trustedKeyring()).
 */
export class Store {
  readonly #ctx: StoreContext;
  readonly #read: ReadContext;

  /** @internal use openStore(). */
  constructor(
    db: Kysely<Database>,
    readonly dialect: DialectName,
    /** The database, for messages (a PostgreSQL password is redacted). */
    readonly location: string,
    options: { now: () => Date; jobs: JobPolicy; trackAll: ReadonlySet<string>; hosts: HostPolicy },
  ) {
    this.#ctx = {
      db,
      dialect,
      now: options.now,
      jobs: options.jobs,
      trackAll: options.trackAll,
      hosts: options.hosts,
    };
    this.#read = readContext(this.#ctx);
  }

  /** The store's clock: what its timestamps are written with. */
  now(): Date {
    return this.#ctx.now();
  }

  /** Closes every connection. The store cannot be used afterwards. */
  async close(): Promise<void> {
    await this.#ctx.db.destroy();
  }

  /** Migrations applied to the database, and how many this code knows (equal after openStore). */
  async schemaVersion(): Promise<{ applied: number; known: number }> {
    const applied = await executedMigrations(this.#ctx.db);
    return { applied: applied.length, known: MIGRATION_NAMES.length };
  }

  // --- catalogs -------------------------------------------------------------------------------

  /** Queues every version the platform's catalog carries that has no manifest (backlog.ts). */
  queueBacklog(platform: string): Promise<number> {
    return queueBacklog(this.#ctx, platform);
  }

  /** Stores a verified catalog snapshot; see catalogs.ts ingestCatalog for the rules. */
  ingestCatalog(catalog: VerifiedCatalog): Promise<CatalogIngestResult> {
    return ingestCatalog(this.#ctx, catalog);
  }

  /** The platform's latest snapshot (greatest generatedAt), or undefined. */
  latestCatalog(platform: string): Promise<CatalogSnapshotInfo | undefined> {
    return latestCatalog(this.#ctx, platform);
  }

  /** A snapshot's exact bytes and signature, by id or digest. */
  getCatalogSnapshot(ref: { id: number } | { digest: string }): Promise<CatalogSnapshotDocument | undefined> {
    return getCatalogSnapshot(this.#ctx, ref);
  }

  /** Every version the catalogs of a platform have listed for a package name, and its newest. */
  catalogPackage(platform: string, name: string): Promise<CatalogPackageInfo[]> {
    return catalogPackage(this.#ctx, platform, name);
  }

  // --- manifests ------------------------------------------------------------------------------

  /** 'stored' | 'duplicate'; throws CONFLICT (recorded) for other bytes of a stored version. */
  ingestManifest(manifest: VerifiedManifest): Promise<ManifestIngestOutcome> {
    return ingestManifest(this.#ctx, manifest);
  }

  getManifest(
    ref: { platform: string; name: string; version: string; arch: string } | { digest: string },
  ): Promise<ManifestDocument | undefined> {
    return getManifest(this.#ctx, ref);
  }

  /** Every stored version of a package on a platform (without bytes). */
  listManifests(platform: string, name: string): Promise<ManifestInfo[]> {
    return listManifests(this.#ctx, platform, name);
  }

  listConflicts(options?: { limit?: number }): Promise<ManifestConflict[]> {
    return listConflicts(this.#ctx, options);
  }

  getConflictDocument(id: number): Promise<{ bytes: Buffer; signature: string } | undefined> {
    return getConflictDocument(this.#ctx, id);
  }

  // --- clients --------------------------------------------------------------------------------

  /** A whole machine in one call; see lookup.ts. Queues jobs for pending items, tracks packages. */
  lookup(platform: string, items: readonly LookupItem[], options?: LookupOptions): Promise<LookupResult> {
    return lookup(this.#ctx, platform, items, options);
  }

  /** For each sha256 (lower-case hex), the package versions and paths that contain it. */
  reverseLookup(
    hashes: readonly string[],
    options?: { maxHitsPerHash?: number },
  ): Promise<ReverseLookupResult[]> {
    return reverseLookup(this.#ctx, hashes, options);
  }

  // --- generation queue -----------------------------------------------------------------------

  /**
   * Queues one package version by operator request. NOT_FOUND unless the platform's latest
   * catalog offers it; INVALID when its manifest is already stored. Returns the (existing or new)
   * job.
   */
  async enqueueJob(platform: string, item: LookupItem): Promise<GenerationJob> {
    const result = await lookupWith(this.#ctx, platform, [item], {
      includeDocuments: false,
      track: false,
      reason: 'operator',
    });
    const answer = result.items[0];
    const what = `${item.name} ${item.version} (${item.arch}) on ${platform}`;
    if (answer?.status === 'pending' && 'job' in answer)
      return (await getJob(this.#ctx, answer.job.id)) as GenerationJob;
    if (answer?.status === 'ok') throw new StoreError('INVALID', `${what} already has a manifest`);
    throw new StoreError('NOT_FOUND', `${what} is not in the platform's catalog: nothing to generate`);
  }

  /** Leases up to `max` due jobs of these platforms to `workerId` for `leaseSeconds`. */
  claimJobs(
    workerId: string,
    platforms: readonly string[],
    max: number,
    leaseSeconds: number,
  ): Promise<GenerationJob[]> {
    return claimJobs(this.#ctx, workerId, platforms, max, leaseSeconds);
  }

  /** Renews the lease (by its original length). LEASE_LOST if another worker has the job. */
  heartbeat(jobId: number, workerId: string): Promise<GenerationJob> {
    return heartbeat(this.#ctx, jobId, workerId);
  }

  /** Confirms a job whose manifest was uploaded; INVALID if it was not. Idempotent. */
  completeJob(jobId: number, workerId: string): Promise<GenerationJob> {
    return completeJob(this.#ctx, jobId, workerId);
  }

  /** Retry later (exponential backoff) or, after the last attempt, dead. */
  failJob(jobId: number, workerId: string, error: string): Promise<GenerationJob> {
    return failJob(this.#ctx, jobId, workerId, error);
  }

  /** Back to pending now with a fresh attempt count (a dead job, typically). */
  requeue(jobId: number): Promise<GenerationJob> {
    return requeueJob(this.#ctx, jobId);
  }

  getJob(jobId: number): Promise<GenerationJob | undefined> {
    return getJob(this.#ctx, jobId);
  }

  listJobs(filter?: JobFilter): Promise<GenerationJob[]> {
    return listJobs(this.#ctx, filter);
  }

  // --- tracked packages -----------------------------------------------------------------------

  /** Tracks packages and queues their newest versions that lack a manifest. */
  trackPackages(
    platform: string,
    names: readonly string[],
    source?: TrackingSource,
  ): Promise<{ jobsQueued: number }> {
    return trackPackages(this.#ctx, platform, names, source);
  }

  untrackPackages(platform: string, names: readonly string[], source?: TrackingSource): Promise<number> {
    return untrackPackages(this.#ctx, platform, names, source);
  }

  listTrackedPackages(platform?: string): Promise<TrackedPackage[]> {
    return listTrackedPackages(this.#ctx, platform);
  }

  // --- tokens ---------------------------------------------------------------------------------

  /**
   * A new token; the secret is returned once and only its hash is stored. A reporter token needs
   * `host`, the host it reports for; no other role takes one (INVALID).
   */
  createToken(role: TokenRole, name: string, host?: string): Promise<CreatedToken> {
    return createToken(this.#ctx, role, name, host);
  }

  /** The live token a secret belongs to, or undefined (unknown, malformed or revoked). */
  authenticate(secret: string): Promise<TokenIdentity | undefined> {
    return authenticate(this.#ctx, secret);
  }

  /** A live token with its session binding (see tokens.ts sessionToken). */
  sessionToken(
    id: number,
  ): Promise<{ id: number; role: TokenRole; name: string; binding: Buffer } | undefined> {
    return sessionToken(this.#ctx, id);
  }

  revokeToken(id: number): Promise<TokenInfo> {
    return revokeToken(this.#ctx, id);
  }

  listTokens(): Promise<TokenInfo[]> {
    return listTokens(this.#ctx);
  }

  // --- hosts ----------------------------------------------------------------------------------

  /** The host's report, under the host its token is bound to; see hosts.ts recordReport. */
  recordReport(input: ReportToRecord): Promise<RecordOutcome> {
    return recordReport(this.#ctx, input);
  }

  /** Forgets a host: its reports go, its reporter tokens are revoked. NOT_FOUND for an unknown host. */
  forgetHost(name: string): Promise<ForgottenHost> {
    return forgetHost(this.#ctx, name);
  }

  /** The policy the store was opened with (retention, staleness). */
  hostPolicy(): HostPolicy {
    return { ...this.#ctx.hosts };
  }

  // --- trusted generator keys -----------------------------------------------------------------

  addTrustedKey(armored: string): Promise<TrustedKeyInfo> {
    return addTrustedKey(this.#ctx, armored);
  }

  removeTrustedKey(fingerprint: string): Promise<void> {
    return removeTrustedKey(this.#ctx, fingerprint);
  }

  listTrustedKeys(options?: { includeRemoved?: boolean }): Promise<TrustedKeyInfo[]> {
    return listTrustedKeys(this.#ctx, options);
  }

  /** The keys uploads must be signed by, ready for verifyManifest / verifyCatalog. */
  trustedKeyring(): Promise<TrustedKeyring> {
    return trustedKeyring(this.#ctx);
  }

  // --- health ---------------------------------------------------------------------------------

  stats(): Promise<StoreStats> {
    return storeStats(this.#ctx);
  }

  databaseBytes(): Promise<number> {
    return databaseBytes(this.#ctx);
  }

  // --- read model: the dashboard's views (read-model/; never the tokens table) ----------------

  /** Platforms some catalog snapshot was received for, sorted. */
  platformsWithCatalog(): Promise<string[]> {
    return platformsWithCatalog(this.#read);
  }

  fleet(): Promise<FleetRow[]> {
    return fleet(this.#read);
  }

  searchPackages(query: string, page: PageRequest): Promise<Page<PackageHit>> {
    return searchPackages(this.#read, query, page);
  }

  packageVersions(name: string): Promise<PlatformPackage[]> {
    return packageVersions(this.#read, name);
  }

  manifestSummary(digest: string): Promise<ManifestSummary | undefined> {
    return manifestSummary(this.#read, digest);
  }

  /** The id of the newest catalog snapshot (0 without one): upgrades change only with it. */
  newestSnapshotId(): Promise<number> {
    return newestSnapshotId(this.#read);
  }

  packageUpgrades(
    platform: string | undefined,
    since: Date,
  ): Promise<{ platforms: string[]; upgrades: UpgradeEvent[] }> {
    return packageUpgrades(this.#read, platform, since);
  }

  queueCounts(): Promise<HealthInfo['queue']> {
    return queueCounts(this.#read);
  }

  workers(): Promise<WorkerInfo[]> {
    return workers(this.#read);
  }

  jobsPage(list: JobView, page: PageRequest): Promise<Page<GenerationJob>> {
    return jobsPage(this.#read, list, page);
  }

  trackedPackagesPage(page: PageRequest): Promise<Page<TrackedPackage>> {
    return trackedPackagesPage(this.#read, page);
  }

  /** Hosts in name order, filtered, one page (read-model/hosts.ts). */
  hostsPage(filter?: HostFilter): Promise<HostPage> {
    return hostsPage(this.#read, filter);
  }

  /** A host and its history, newest first; undefined if it never reported (or was forgotten). */
  hostDetail(name: string, historyLimit?: number): Promise<HostDetailAnswer | undefined> {
    return hostDetail(this.#read, name, historyLimit);
  }

  /** A stored report as the host sent it (its claim), or undefined. */
  hostReport(name: string, reportId: string): Promise<VerifyReport | undefined> {
    return hostReport(this.#read, name, reportId);
  }

  latestHostReport(name: string): Promise<VerifyReport | undefined> {
    return latestHostReport(this.#read, name);
  }

  /** Hosts by verdict now, stale included (every verdict present). */
  hostCountsByVerdict(): Promise<Record<HostVerdict, number>> {
    return hostCountsByVerdict(this.#read);
  }

  /** Hosts whose latest report lists a package (a version; only outdated ones). */
  hostsRunning(query: {
    name: string;
    version?: string;
    outdated?: boolean;
    limit?: number;
  }): Promise<HostRunning[]> {
    return hostsRunning(this.#read, query);
  }

  // --- read model: the dashboard's host figures (read-model/host-counts.ts, host-upgrades.ts) --

  /** Hosts per verdict now, on one platform or all. */
  hostVerdictCounts(platform?: string): Promise<Record<HostVerdict, number>> {
    return hostVerdictCounts(this.#read, platform);
  }

  /** Hosts per platform their latest report names, by platform. */
  hostsPerPlatform(): Promise<Map<string, number>> {
    return hostsPerPlatform(this.#read);
  }

  /** Per upgrade, the hosts on its platform that run the package older than its new version. */
  hostsBehindCounts(upgrades: readonly UpgradeRef[]): Promise<number[]> {
    return hostsBehindCounts(this.#read, upgrades);
  }

  /** The hosts that run a package older than a version, by name. */
  hostsBehind(ref: PackageVersionRef, page: PageRequest): Promise<Page<HostBehind>> {
    return hostsBehind(this.#read, ref, page);
  }
}
