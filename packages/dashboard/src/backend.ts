/**
 * What the dashboard needs from the server, as data. The server implements it over its store
 * (packages/server/src/dashboard/); this package never imports the server. Every list is a page:
 * nothing here may return an unbounded number of rows. Times are ISO-8601 strings.
 *
 * A method refuses bad input a user could have typed (an unknown platform, a malformed key) with
 * a DashboardError, whose message is shown on the page; any other error is a bug or an outage and
 * the page says only that.
 */

/** `reporter` tokens send one host's reports and nothing else: they never log in here. */
export type Role = 'reader' | 'generator' | 'admin' | 'reporter';
export const ROLES: readonly Role[] = ['reader', 'generator', 'admin', 'reporter'];

/** A logged-in token. */
export interface Principal {
  tokenId: number;
  name: string;
  role: Role;
}

/** A refusal to show the user: 400 (bad input), 404 (no such thing), 409 (not in this state). */
export class DashboardError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
    this.name = 'DashboardError';
  }
}

export interface PageRequest {
  offset: number;
  limit: number;
}

export interface Page<T> {
  items: T[];
  offset: number;
  limit: number;
  /** Total rows when counting them is cheap; absent otherwise. */
  total?: number;
  hasMore: boolean;
}

export interface JobCounts {
  pending: number;
  running: number;
  done: number;
  dead: number;
  /** Pending jobs that failed before and wait for their retry. */
  retrying: number;
}

/** One platform image, as the catalogs and the queue see it. */
export interface FleetRow {
  platform: string;
  /** Generation time of the first and of the latest signed catalog snapshot. */
  firstCatalogAt?: string;
  latestCatalogAt?: string;
  snapshots: number;
  /** Package names (× architecture) the platform's catalogs have listed. */
  packages: number;
  /** Package versions the latest catalog lists. */
  versions: number;
  trackedPackages: number;
  /** Tracked packages whose newest version has a manifest. */
  trackedCovered: number;
  manifests: number;
  jobs: JobCounts;
  /**
   * The whole-catalog backlog (server `track: "all"`): its jobs still to make, and made. Absent
   * when the platform has none.
   */
  backlog?: { left: number; done: number; dead: number };
  /** Hosts whose latest report names this platform (absent: the server keeps no hosts). */
  hosts?: number;
}

export interface PackageHit {
  name: string;
  /** Where the package is (or was) in a catalog, with its newest version there. */
  platforms: { platform: string; arch: string; newestVersion?: string }[];
}

export type ManifestStatus =
  | { state: 'stored'; digest: string; generatedAt: string; fileCount: number }
  | { state: 'pending' | 'running' | 'dead' | 'done'; jobId: number; attempts: number; lastError?: string }
  | { state: 'none' };

export interface VersionRow {
  version: string;
  arch: string;
  /** Absent for a version that has a manifest but was never in a catalog of this platform. */
  firstSeen?: string;
  lastSeen?: string;
  withdrawnAt?: string;
  newest: boolean;
  /** The package archive's SHA-256 as the repository index gives it (dpkg, rpm catalogs). */
  archiveSha256?: string;
  /** apk's `C:` checksum from the APKINDEX (Alpine catalogs, which have no SHA-256 of the archive). */
  apkChecksum?: string;
  /** Where its manifest lives (`…/all` for architecture-independent packages). */
  manifestPlatform: string;
  manifest: ManifestStatus;
}

export interface PlatformPackage {
  platform: string;
  arch: string;
  newestVersion?: string;
  tracked: boolean;
  /** Newest first, by the distribution's own version ordering. */
  versions: VersionRow[];
}

export interface ManifestSummary {
  digest: string;
  platform: string;
  name: string;
  version: string;
  arch: string;
  source: { name: string; version: string };
  generatedAt: string;
  signedAt: string;
  signerFingerprint: string;
  ingestedAt: string;
  entryCount: number;
  fileCount: number;
}

/** One path of a manifest, with the attributes the manifest records for it. */
export interface ManifestFile {
  path: string;
  type: string;
  mode?: string;
  user?: string;
  group?: string;
  uid?: number;
  gid?: number;
  size?: number;
  sha256?: string;
  target?: string;
  linkTo?: string;
  capabilities?: string;
  conffile?: boolean;
  divertedTo?: string;
  distroDigest?: string;
  distroDigestMismatch?: boolean;
  device?: string;
}

export interface ManifestDocumentFile {
  bytes: Uint8Array;
  signature: string;
  /** A file name for the download, without extension (`name_version_arch`). */
  baseName: string;
}

export type UpgradeWindow = '24h' | '7d' | '30d';
export const UPGRADE_WINDOWS: readonly UpgradeWindow[] = ['24h', '7d', '30d'];

/** The newest version of a package moved (from is absent when the package was new). */
export interface UpgradeEvent {
  platform: string;
  name: string;
  arch: string;
  from?: string;
  to: string;
  /** Generation time of the snapshot that first listed `to`. */
  at: string;
  /**
   * Hosts on this platform whose latest report has the package at a version older than `to`
   * (absent when the server keeps no hosts).
   */
  hostsBehind?: number;
}

export interface UpgradesReport {
  since: string;
  until: string;
  bucketSeconds: number;
  platforms: string[];
  /** Upgrades per bucket and platform, oldest bucket first, covering since → until. */
  buckets: { start: string; counts: Record<string, number> }[];
  events: Page<UpgradeEvent>;
}

/** Request figures of this server process (from its metrics). */
export interface HttpStats {
  uptimeSeconds: number;
  /** The figures below cover the last `windowSeconds`. */
  windowSeconds: number;
  requests: number;
  requestsPerSecond: number;
  /** Share of answers with status >= 500, 0..1. */
  errorRate: number;
  /** Share of answers with status 400..499, 0..1. */
  clientErrorRate?: number;
  latencyMs: { p50: number; p95: number; p99: number };
}

export interface WorkerInfo {
  id: string;
  /** The last time it claimed or renewed a lease. */
  lastHeartbeatAt: string;
  /** When its latest lease runs out (in the past: the worker is presumed dead). */
  leaseExpiresAt: string;
  jobs: { id: number; platform: string; name: string; version: string; arch: string }[];
}

export interface HealthInfo {
  http?: HttpStats;
  database: { dialect: string; bytes: number; schemaApplied: number; schemaKnown: number };
  queue: JobCounts & { due: number; oldestPendingCreatedAt?: string };
  workers: WorkerInfo[];
}

export type JobView = 'queue' | 'history' | 'failures';
export const JOB_VIEWS: readonly JobView[] = ['queue', 'history', 'failures'];

export interface JobRow {
  id: number;
  platform: string;
  targetPlatform: string;
  name: string;
  version: string;
  arch: string;
  reason: string;
  state: string;
  attempts: number;
  nextRunAt: string;
  leaseOwner?: string;
  leaseExpiresAt?: string;
  lastError?: string;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
}

export interface TrackedRow {
  platform: string;
  name: string;
  source: string;
  since: string;
}

export interface TokenRow {
  id: number;
  name: string;
  role: Role;
  /** A reporter token's host: the only host whose reports it may send. */
  host?: string;
  createdAt: string;
  revokedAt?: string;
}

export interface KeyRow {
  fingerprint: string;
  addedAt: string;
  removedAt?: string;
}

// --- hosts: what each machine last said about itself (issue 19) ---

/**
 * A host's verdict, as core's protocol defines it (`HOST_VERDICTS`; the server checks at compile
 * time that the two lists agree): from its latest report's exit bits, or `stale` when no report
 * came for longer than the server's `staleAfter`.
 */
export const HOST_VERDICTS = ['clean', 'findings', 'incomplete', 'trust-failure', 'stale'] as const;
export type HostVerdict = (typeof HOST_VERDICTS)[number];

/** One host as `GET /v1/hosts` lists it (the protocol's HostSummary). */
export interface HostSummary {
  name: string;
  platform: string;
  lastReportAt: string;
  verdict: HostVerdict;
  exitCode: number;
  packages: number;
  verified: number;
  unverified: number;
  outdated: number;
  failures: number;
  /** Findings of the latest report per class (classes with none may be left out). */
  findingsByClass: Record<string, number>;
}

export interface HostFilter {
  verdict?: HostVerdict;
  platform?: string;
}

/** A page of hosts in name order, by cursor like `GET /v1/hosts`: the hosts after `after`. */
export interface HostsRequest extends HostFilter {
  after?: string;
  limit: number;
}

export interface HostsView {
  /** Hosts per verdict, within the platform filter (not the verdict filter): the page's tabs. */
  counts: Record<HostVerdict, number>;
  /** Platforms some host reported, sorted. */
  platforms: string[];
  /** A host with no report for this long is stale. */
  staleAfterHours: number;
  hosts: HostSummary[];
  /** More hosts follow: the next page's `after`. */
  next?: string;
}

/** One finding of a report (the client's Finding, as the host sent it: untrusted text). */
export interface HostFinding {
  class: string;
  package: string;
  arch: string;
  path?: string;
  location?: string;
  attribute?: string;
  expected?: string;
  actual?: string;
  detail: string;
  failure: boolean;
  accepted?: boolean;
}

/** One installed package of a report. */
export interface HostPackage {
  name: string;
  version: string;
  arch: string;
  status: string;
  reason?: string;
  origin?: string;
  newestVersion?: string;
  /** `newestVersion` is the server's unsigned claim: no signed catalog verified on the host. */
  newestClaimed?: boolean;
}

/** The first `items` of `total` (the page links the whole report for the rest). */
export interface Capped<T> {
  total: number;
  items: T[];
}

/** The latest report of a host, in the shape of the client's text report. */
export interface HostReportView {
  reportId: string;
  receivedAt: string;
  root: string;
  platform: string;
  /** Findings by class in the client's order, `unverified` and `outdated` left to their lists. */
  findings: (Capped<HostFinding> & { class: string; title: string; failures: number })[];
  /** Packages without a trusted manifest (unverified, bad signature), with the reason. */
  unverified: Capped<HostPackage>;
  /** Packages whose newest version differs from the installed one (installed → newest). */
  outdated: Capped<HostPackage>;
  notes: Capped<string>;
}

export interface HostHistoryEntry {
  reportId: string;
  receivedAt: string;
  verdict: HostVerdict;
  exitCode: number;
  failures: number;
}

export interface HostDetail {
  host: HostSummary;
  /** Newest first, as many as the server keeps. */
  history: HostHistoryEntry[];
  /** Absent when the latest report could not be read back. */
  latest?: HostReportView;
}

/** A host that runs a package at a version older than an upgrade's. */
export interface HostBehind {
  host: string;
  version: string;
  verdict: HostVerdict;
  lastReportAt: string;
}

export interface PackageVersionRef {
  platform: string;
  name: string;
  arch: string;
  /** The hosts listed run a version older than this one. */
  version: string;
}

export interface DashboardBackend {
  // --- sessions ---
  /** The live token this secret belongs to. */
  authenticate(secret: string): Promise<Principal | undefined>;
  /**
   * A live token's principal and binding: a value stable for the token's life (the server uses
   * its stored hash). Not a secret — it is in the database — so session keys are derived from it
   * and the server's session secret together (session.ts sessionKey). Undefined once revoked, which
   * ends the token's sessions.
   */
  sessionToken(tokenId: number): Promise<{ principal: Principal; binding: Uint8Array } | undefined>;

  // --- read-only views ---
  platforms(): Promise<string[]>;
  fleet(): Promise<FleetRow[]>;
  searchPackages(query: string, page: PageRequest): Promise<Page<PackageHit>>;
  packageDetail(name: string): Promise<PlatformPackage[]>;
  manifest(digest: string): Promise<ManifestSummary | undefined>;
  manifestFiles(digest: string, filter: string, page: PageRequest): Promise<Page<ManifestFile> | undefined>;
  manifestDocument(digest: string): Promise<ManifestDocumentFile | undefined>;
  upgrades(window: UpgradeWindow, platform: string | undefined, page: PageRequest): Promise<UpgradesReport>;
  health(): Promise<HealthInfo>;
  /** The queue's figures alone (the Jobs page's tabs). */
  queueCounts(): Promise<HealthInfo['queue']>;
  jobs(view: JobView, page: PageRequest): Promise<Page<JobRow>>;
  job(id: number): Promise<JobRow | undefined>;
  /** Hosts and their latest verdicts. A platform nobody reported gives an empty page, not an error. */
  hosts(request: HostsRequest): Promise<HostsView>;
  host(name: string): Promise<HostDetail | undefined>;
  /** A stored report's JSON as the host sent it (validated on receipt). */
  hostReport(name: string, reportId: string): Promise<Uint8Array | undefined>;
  /** Hosts running `ref.name` older than `ref.version` on `ref.platform`, by host name. */
  hostsBehind(ref: PackageVersionRef, page: PageRequest): Promise<Page<HostBehind>>;

  // --- admin views and actions ---
  trackedPackages(page: PageRequest): Promise<Page<TrackedRow>>;
  tokens(): Promise<TokenRow[]>;
  trustedKeys(): Promise<KeyRow[]>;
  requeueJob(id: number): Promise<JobRow>;
  trackPackage(platform: string, name: string): Promise<{ jobsQueued: number }>;
  untrackPackage(platform: string, name: string): Promise<number>;
  /** A reporter token needs `host` (the host it may report for); other roles take none. */
  createToken(role: Role, name: string, host?: string): Promise<{ id: number; secret: string }>;
  revokeToken(id: number): Promise<TokenRow>;
  trustKey(armored: string): Promise<KeyRow>;
  distrustKey(fingerprint: string): Promise<void>;
  /** Forgets a host: its reports go, its reporter tokens are revoked. 404 when unknown. */
  forgetHost(name: string): Promise<{ reports: number; tokensRevoked: number }>;
  /**
   * Asks the generator fleet to read a platform's catalog again. Optional: without it the
   * dashboard offers no such button. Returns what to tell the operator.
   */
  requestCatalogSync?(platform: string): Promise<string>;
}
