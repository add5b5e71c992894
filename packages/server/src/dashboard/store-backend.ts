import { parsePlatform, PlatformError, SysattestError, versionSchemeForDistro } from '@sysattest/core';
import {
  DashboardError,
  type DashboardBackend,
  type FleetRow,
  type HealthInfo,
  type HttpStats,
  type JobCounts,
  type JobRow,
  type JobView,
  type KeyRow,
  type ManifestDocumentFile,
  type ManifestFile,
  type ManifestStatus,
  type ManifestSummary,
  type Page,
  type PackageHit,
  type PageRequest,
  type PlatformPackage,
  type Principal,
  type Role,
  type TokenRow,
  type TrackedRow,
  type UpgradeEvent,
  type UpgradesReport,
  type UpgradeWindow,
  type VersionRow,
} from '@sysattest/dashboard';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/database.js';
import { isStoreError, type GenerationJob, type Store } from '../store/index.js';
import { bucketize, newestChanges, WINDOWS, type SeenVersion } from './upgrades.js';

/** The part of the server's metrics the Health page reads (http/metrics.ts ServerMetrics). */
export interface MetricsSource {
  snapshot(windowSeconds?: number): {
    uptimeSeconds: number;
    windowSeconds: number;
    requests: number;
    requestsPerSecond: number;
    errors: number;
    serverErrors: number;
    latencyMs: { p50?: number; p95?: number; p99?: number };
  };
}

export interface StoreBackendOptions {
  metrics?: MetricsSource;
  /** Window of the Health page's request figures (default 300 s). */
  metricsWindowSeconds?: number;
}

const n = (v: unknown): number => Number(v ?? 0);
const CHUNK = 500;

function* chunked<T>(items: readonly T[], size = CHUNK): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** Store refusals become messages on the page; anything else stays an error. */
function refusal(e: unknown): unknown {
  if (isStoreError(e)) {
    switch (e.code) {
      case 'INVALID':
      case 'UNSUPPORTED':
        return new DashboardError(400, e.message);
      case 'NOT_FOUND':
        return new DashboardError(404, e.message);
      case 'CONFLICT':
      case 'LEASE_LOST':
        return new DashboardError(409, e.message);
      default:
        return e;
    }
  }
  if (e instanceof PlatformError || (e instanceof SysattestError && !isStoreError(e))) {
    return new DashboardError(400, e.message);
  }
  return e;
}

async function refusing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw refusal(e);
  }
}

function page<T>(rows: T[], p: PageRequest, total?: number): Page<T> {
  return {
    items: rows.slice(0, p.limit),
    offset: p.offset,
    limit: p.limit,
    hasMore: rows.length > p.limit,
    ...(total === undefined ? {} : { total }),
  };
}

function jobRow(j: GenerationJob): JobRow {
  return {
    id: j.id,
    platform: j.platform,
    targetPlatform: j.targetPlatform,
    name: j.name,
    version: j.version,
    arch: j.arch,
    reason: j.reason,
    state: j.state,
    attempts: j.attempts,
    nextRunAt: j.nextRunAt,
    ...(j.leaseOwner === undefined ? {} : { leaseOwner: j.leaseOwner }),
    ...(j.leaseExpiresAt === undefined ? {} : { leaseExpiresAt: j.leaseExpiresAt }),
    ...(j.lastError === undefined ? {} : { lastError: j.lastError }),
    createdAt: j.createdAt,
    updatedAt: j.updatedAt,
    ...(j.completedAt === undefined ? {} : { completedAt: j.completedAt }),
  };
}

/** The distribution's version ordering, or plain text order for a distro without one. */
function comparerFor(platform: string): (a: string, b: string) => number {
  let compare: (a: string, b: string) => number;
  try {
    compare = versionSchemeForDistro(parsePlatform(platform).distro).compare;
  } catch {
    compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  }
  return (a, b) => {
    try {
      return compare(a, b);
    } catch {
      return a < b ? -1 : a > b ? 1 : 0;
    }
  };
}

const manifestPlatformOf = (platform: string, arch: string): string => {
  const [distro, release] = platform.split('/');
  return `${distro}/${release}/${arch}`;
};

/** Parsed manifest entries, kept for a few recently viewed manifests (paging re-reads them). */
class EntryCache {
  readonly #items = new Map<string, ManifestFile[]>();
  #entries = 0;
  /** About 200 bytes an entry: ~40 MB at most (a single larger manifest is kept alone). */
  constructor(readonly maxEntries = 200_000) {}

  get(digest: string): ManifestFile[] | undefined {
    const hit = this.#items.get(digest);
    if (hit !== undefined) {
      this.#items.delete(digest);
      this.#items.set(digest, hit);
    }
    return hit;
  }

  set(digest: string, files: ManifestFile[]): void {
    this.#items.set(digest, files);
    this.#entries += files.length;
    for (const [k, v] of this.#items) {
      if (this.#entries <= this.maxEntries || k === digest) break;
      this.#items.delete(k);
      this.#entries -= v.length;
    }
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** One manifest entry (already verified at upload) in the dashboard's shape. */
function toFile(e: Record<string, unknown>): ManifestFile {
  const digest = e.distroDigest as { algorithm?: unknown; hex?: unknown } | undefined;
  const f: ManifestFile = { path: str(e.path) ?? '?', type: str(e.type) ?? '?' };
  const copy = <K extends keyof ManifestFile>(k: K, v: ManifestFile[K] | undefined): void => {
    if (v !== undefined) f[k] = v;
  };
  copy('mode', str(e.mode));
  copy('user', str(e.user));
  copy('group', str(e.group));
  copy('uid', int(e.uid));
  copy('gid', int(e.gid));
  copy('size', int(e.size));
  copy('sha256', str(e.sha256));
  copy('target', str(e.target));
  copy('linkTo', str(e.linkTo));
  copy('capabilities', str(e.capabilities));
  copy('divertedTo', str(e.divertedTo));
  if (e.conffile === true) f.conffile = true;
  if (e.distroDigestMismatch === true) f.distroDigestMismatch = true;
  if (digest !== undefined && typeof digest.hex === 'string')
    f.distroDigest = `${String(digest.algorithm)}:${digest.hex}`;
  if (int(e.major) !== undefined) f.device = `${int(e.major)}:${int(e.minor) ?? 0}`;
  return f;
}

/**
 * The dashboard's data, read from the store's database with paginated, indexed queries (see the
 * indexes in store/migrations.ts) and written only through the store's own methods.
 */
export class StoreDashboardBackend implements DashboardBackend {
  readonly #store: Store;
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;
  readonly #metrics: MetricsSource | undefined;
  readonly #metricsWindow: number;
  readonly #entries = new EntryCache();
  readonly #upgradeCache = new Map<string, Omit<UpgradesReport, 'events'> & { events: UpgradeEvent[] }>();

  constructor(store: Store, options: StoreBackendOptions = {}) {
    this.#store = store;
    this.#db = store.readModel.db;
    this.#now = store.readModel.now;
    this.#metrics = options.metrics;
    this.#metricsWindow = options.metricsWindowSeconds ?? 300;
  }

  // --- sessions ---------------------------------------------------------------------------------

  async authenticate(secret: string): Promise<Principal | undefined> {
    const t = await this.#store.authenticate(secret);
    return t === undefined ? undefined : { tokenId: t.id, name: t.name, role: t.role };
  }

  /** The binding is the token's stored hash: in the database, so never a key by itself (session.ts). */
  async sessionToken(tokenId: number): Promise<{ principal: Principal; binding: Uint8Array } | undefined> {
    const r = await this.#db
      .selectFrom('tokens')
      .select(['id', 'name', 'role', 'secret_hash'])
      .where('id', '=', tokenId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (r === undefined) return undefined;
    return {
      principal: { tokenId: r.id, name: r.name, role: r.role as Role },
      binding: Buffer.from(r.secret_hash, 'hex'),
    };
  }

  // --- fleet ------------------------------------------------------------------------------------

  async platforms(): Promise<string[]> {
    const rows = await this.#db
      .selectFrom('platforms')
      .select('name')
      .where('id', 'in', this.#db.selectFrom('catalog_snapshots').select('platform_id'))
      .execute();
    return rows.map((r) => r.name).sort();
  }

  async fleet(): Promise<FleetRow[]> {
    const db = this.#db;
    const platforms = await db.selectFrom('platforms').select(['id', 'name', 'arch']).execute();
    const rows = new Map<number, FleetRow>();
    for (const p of platforms) {
      rows.set(p.id, {
        platform: p.name,
        snapshots: 0,
        packages: 0,
        versions: 0,
        trackedPackages: 0,
        trackedCovered: 0,
        manifests: 0,
        jobs: { pending: 0, running: 0, done: 0, dead: 0, retrying: 0 },
      });
    }
    const at = (id: number): FleetRow | undefined => rows.get(id);

    // Per platform, so that every query is a range of an index (no table scan over 60,000
    // catalog entries or every job ever queued).
    for (const p of platforms) {
      const row = at(p.id) as FleetRow;
      const snapshots = await db
        .selectFrom('catalog_snapshots')
        .select((eb) => [eb.fn.countAll().as('count'), eb.fn.min('generated_at').as('first')])
        .where('platform_id', '=', p.id)
        .executeTakeFirst();
      row.snapshots = n(snapshots?.count);
      if (typeof snapshots?.first === 'string') row.firstCatalogAt = snapshots.first;
      const latest = await db
        .selectFrom('catalog_snapshots')
        .select(['generated_at', 'package_count'])
        .where('platform_id', '=', p.id)
        .orderBy('generated_at', 'desc')
        .orderBy('id', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (latest !== undefined) {
        row.latestCatalogAt = latest.generated_at;
        // The versions the latest snapshot lists are exactly its packages.
        row.versions = latest.package_count;
      }
      const packages = await db
        .selectFrom('catalog_packages')
        .select((eb) => eb.fn.countAll().as('count'))
        .where('platform_id', '=', p.id)
        .executeTakeFirst();
      row.packages = n(packages?.count);
      const manifests = await db
        .selectFrom('manifests')
        .select((eb) => eb.fn.countAll().as('count'))
        .where('platform_id', '=', p.id)
        .executeTakeFirst();
      row.manifests = n(manifests?.count);
      const tracked = await db
        .selectFrom('tracked_packages')
        .select((eb) => eb.fn.count('name').distinct().as('count'))
        .where('platform_id', '=', p.id)
        .executeTakeFirst();
      row.trackedPackages = n(tracked?.count);
      const { pending, running, done, dead, retrying } = await this.#jobCounts(p.id);
      row.jobs = { pending, running, done, dead, retrying };
    }
    // Tracked packages whose newest version has a manifest (on the platform of its architecture).
    const covered = await db
      .selectFrom('tracked_packages as t')
      .innerJoin('catalog_packages as p', (j) =>
        j.onRef('p.platform_id', '=', 't.platform_id').onRef('p.name', '=', 't.name'),
      )
      .innerJoin('platforms as pl', 'pl.id', 't.platform_id')
      .innerJoin('platforms as mp', (j) =>
        j
          .onRef('mp.distro', '=', 'pl.distro')
          .onRef('mp.release', '=', 'pl.release')
          .onRef('mp.arch', '=', 'p.arch'),
      )
      .innerJoin('manifests as m', (j) =>
        j
          .onRef('m.platform_id', '=', 'mp.id')
          .onRef('m.name', '=', 'p.name')
          .onRef('m.version', '=', 'p.newest_version')
          .onRef('m.arch', '=', 'p.arch'),
      )
      .select((eb) => ['t.platform_id', eb.fn.count('t.name').distinct().as('count')])
      .groupBy('t.platform_id')
      .execute();
    for (const r of covered) {
      const row = at(r.platform_id);
      if (row !== undefined) row.trackedCovered = n(r.count);
    }
    // Architecture-independent manifests live on `…/all`: a platform with no catalog and no job
    // is not an image of the fleet.
    return [...rows.values()]
      .filter(
        (r) =>
          r.snapshots > 0 ||
          r.jobs.pending + r.jobs.running + r.jobs.dead > 0 ||
          !r.platform.endsWith('/all'),
      )
      .sort((a, b) => (a.platform < b.platform ? -1 : a.platform > b.platform ? 1 : 0));
  }

  // --- packages ---------------------------------------------------------------------------------

  async searchPackages(query: string, p: PageRequest): Promise<Page<PackageHit>> {
    const q = query.toLowerCase();
    const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const prefix = `${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const like = this.#store.dialect === 'postgres' ? sql`ilike` : sql`like`;
    const names = await sql<{ name: string }>`
      select name from catalog_packages
      where name ${like} ${pattern} escape '\\'
      group by name
      order by case when name = ${q} then 0 when name ${like} ${prefix} escape '\\' then 1 else 2 end, name
      limit ${p.limit + 1} offset ${p.offset}`.execute(this.#db);
    const total = await sql<{ c: number }>`
      select count(distinct name) as c from catalog_packages where name ${like} ${pattern} escape '\\'`.execute(
      this.#db,
    );
    const wanted = names.rows.slice(0, p.limit).map((r) => r.name);
    const byName = new Map<string, PackageHit>(wanted.map((name) => [name, { name, platforms: [] }]));
    for (const batch of chunked(wanted)) {
      const rows = await this.#db
        .selectFrom('catalog_packages as c')
        .innerJoin('platforms as pl', 'pl.id', 'c.platform_id')
        .select(['c.name', 'c.arch', 'c.newest_version', 'pl.name as platform'])
        .where('c.name', 'in', batch)
        .execute();
      for (const r of rows) {
        byName.get(r.name)?.platforms.push({
          platform: r.platform,
          arch: r.arch,
          ...(r.newest_version === null ? {} : { newestVersion: r.newest_version }),
        });
      }
    }
    for (const hit of byName.values())
      hit.platforms.sort((a, b) => (`${a.platform} ${a.arch}` < `${b.platform} ${b.arch}` ? -1 : 1));
    return {
      items: wanted.map((name) => byName.get(name) as PackageHit),
      offset: p.offset,
      limit: p.limit,
      hasMore: names.rows.length > p.limit,
      total: n(total.rows[0]?.c),
    };
  }

  async packageDetail(name: string): Promise<PlatformPackage[]> {
    const db = this.#db;
    const platforms = await db.selectFrom('platforms').select(['id', 'name']).execute();
    if (platforms.length === 0) return [];
    const ids = platforms.map((p) => p.id);
    const nameOf = new Map(platforms.map((p) => [p.id, p.name]));
    const idOf = new Map(platforms.map((p) => [p.name, p.id]));

    const packages = await db
      .selectFrom('catalog_packages')
      .select(['id', 'platform_id', 'arch', 'newest_version'])
      .where('platform_id', 'in', ids)
      .where('name', '=', name)
      .execute();
    const entries =
      packages.length === 0
        ? []
        : await db
            .selectFrom('catalog_entries')
            .select([
              'package_id',
              'version',
              'first_seen',
              'last_seen',
              'withdrawn_at',
              'archive_sha256',
              'apk_checksum',
            ])
            .where(
              'package_id',
              'in',
              packages.map((p) => p.id),
            )
            .execute();
    const manifests = await db
      .selectFrom('manifests')
      .select(['platform_id', 'version', 'arch', 'digest', 'generated_at', 'file_count'])
      .where('platform_id', 'in', ids)
      .where('name', '=', name)
      .execute();
    const jobs = await db
      .selectFrom('jobs')
      .select(['id', 'target_platform_id', 'version', 'arch', 'state', 'attempts', 'last_error'])
      .where('target_platform_id', 'in', ids)
      .where('name', '=', name)
      .execute();
    const tracked = await db
      .selectFrom('tracked_packages')
      .select('platform_id')
      .where('platform_id', 'in', ids)
      .where('name', '=', name)
      .execute();
    const trackedOn = new Set(tracked.map((t) => t.platform_id));

    const key = (platformId: number, version: string, arch: string): string =>
      `${platformId}\u0000${version}\u0000${arch}`;
    const manifestAt = new Map(manifests.map((m) => [key(m.platform_id, m.version, m.arch), m]));
    const jobAt = new Map<string, (typeof jobs)[number]>();
    for (const j of jobs.sort((a, b) => a.id - b.id))
      jobAt.set(key(j.target_platform_id, j.version, j.arch), j);
    const used = new Set<string>();
    const status = (manifestPlatform: string, version: string, arch: string): ManifestStatus => {
      const mpId = idOf.get(manifestPlatform);
      if (mpId === undefined) return { state: 'none' };
      const k = key(mpId, version, arch);
      used.add(k);
      const m = manifestAt.get(k);
      if (m !== undefined)
        return { state: 'stored', digest: m.digest, generatedAt: m.generated_at, fileCount: m.file_count };
      const j = jobAt.get(k);
      if (j !== undefined) {
        return {
          state: j.state as 'pending' | 'running' | 'dead' | 'done',
          jobId: j.id,
          attempts: j.attempts,
          ...(j.last_error === null ? {} : { lastError: j.last_error }),
        };
      }
      return { state: 'none' };
    };

    const out: PlatformPackage[] = [];
    for (const p of packages) {
      const platform = nameOf.get(p.platform_id) as string;
      const manifestPlatform = manifestPlatformOf(platform, p.arch);
      const compare = comparerFor(platform);
      const versions: VersionRow[] = entries
        .filter((e) => e.package_id === p.id)
        .sort((a, b) => compare(b.version, a.version))
        .map((e) => ({
          version: e.version,
          arch: p.arch,
          firstSeen: e.first_seen,
          lastSeen: e.last_seen,
          ...(e.withdrawn_at === null ? {} : { withdrawnAt: e.withdrawn_at }),
          ...(e.archive_sha256 === null ? {} : { archiveSha256: e.archive_sha256 }),
          ...(e.apk_checksum === null ? {} : { apkChecksum: e.apk_checksum }),
          newest: e.version === p.newest_version,
          manifestPlatform,
          manifest: status(manifestPlatform, e.version, p.arch),
        }));
      out.push({
        platform,
        arch: p.arch,
        ...(p.newest_version === null ? {} : { newestVersion: p.newest_version }),
        tracked: trackedOn.has(p.platform_id),
        versions,
      });
    }
    // Manifests of versions no catalog of theirs lists (uploaded for a platform without catalog).
    const orphans = new Map<string, PlatformPackage>();
    for (const m of manifests) {
      const k = key(m.platform_id, m.version, m.arch);
      if (used.has(k)) continue;
      const platform = nameOf.get(m.platform_id) as string;
      let group = orphans.get(`${platform} ${m.arch}`);
      if (group === undefined) {
        group = { platform, arch: m.arch, tracked: trackedOn.has(m.platform_id), versions: [] };
        orphans.set(`${platform} ${m.arch}`, group);
      }
      group.versions.push({
        version: m.version,
        arch: m.arch,
        newest: false,
        manifestPlatform: platform,
        manifest: { state: 'stored', digest: m.digest, generatedAt: m.generated_at, fileCount: m.file_count },
      });
    }
    for (const g of orphans.values()) {
      const compare = comparerFor(g.platform);
      g.versions.sort((a, b) => compare(b.version, a.version));
      out.push(g);
    }
    return out.sort((a, b) => (`${a.platform} ${a.arch}` < `${b.platform} ${b.arch}` ? -1 : 1));
  }

  async manifest(digest: string): Promise<ManifestSummary | undefined> {
    const r = await this.#db
      .selectFrom('manifests as m')
      .innerJoin('platforms as p', 'p.id', 'm.platform_id')
      .select([
        'm.digest',
        'p.name as platform',
        'm.name',
        'm.version',
        'm.arch',
        'm.source_name',
        'm.source_version',
        'm.generated_at',
        'm.signed_at',
        'm.signer_fingerprint',
        'm.ingested_at',
        'm.entry_count',
        'm.file_count',
      ])
      .where('m.digest', '=', digest)
      .executeTakeFirst();
    if (r === undefined) return undefined;
    return {
      digest: r.digest,
      platform: r.platform,
      name: r.name,
      version: r.version,
      arch: r.arch,
      source: { name: r.source_name, version: r.source_version },
      generatedAt: r.generated_at,
      signedAt: r.signed_at,
      signerFingerprint: r.signer_fingerprint,
      ingestedAt: r.ingested_at,
      entryCount: r.entry_count,
      fileCount: r.file_count,
    };
  }

  async manifestFiles(
    digest: string,
    filter: string,
    p: PageRequest,
  ): Promise<Page<ManifestFile> | undefined> {
    let files = this.#entries.get(digest);
    if (files === undefined) {
      const r = await this.#db
        .selectFrom('manifests')
        .select('bytes')
        .where('digest', '=', digest)
        .executeTakeFirst();
      if (r === undefined) return undefined;
      // Verified against a trusted key when it was uploaded; read defensively all the same.
      const doc = JSON.parse(Buffer.from(r.bytes).toString('utf8')) as { entries?: unknown };
      const entries = Array.isArray(doc.entries) ? doc.entries : [];
      files = entries
        .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null)
        .map(toFile);
      this.#entries.set(digest, files);
    }
    const matching = filter === '' ? files : files.filter((f) => f.path.includes(filter));
    return {
      items: matching.slice(p.offset, p.offset + p.limit),
      offset: p.offset,
      limit: p.limit,
      total: matching.length,
      hasMore: p.offset + p.limit < matching.length,
    };
  }

  async manifestDocument(digest: string): Promise<ManifestDocumentFile | undefined> {
    const d = await this.#store.getManifest({ digest });
    if (d === undefined) return undefined;
    return { bytes: d.bytes, signature: d.signature, baseName: `${d.name}_${d.version}_${d.arch}` };
  }

  // --- upgrades ---------------------------------------------------------------------------------

  async upgrades(
    window: UpgradeWindow,
    platform: string | undefined,
    p: PageRequest,
  ): Promise<UpgradesReport> {
    const { seconds, bucketSeconds } = WINDOWS[window];
    const now = this.#now();
    // Buckets end on a whole bucket so that the chart does not shift with every reload.
    const until = new Date(Math.ceil(now.getTime() / (bucketSeconds * 1000)) * bucketSeconds * 1000);
    const since = new Date(until.getTime() - seconds * 1000);
    // The events only change when a snapshot arrives (or the window moves on): computed once per
    // (window, platform, newest snapshot id, window end), then paged from memory.
    const newestSnapshot = await this.#db
      .selectFrom('catalog_snapshots')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst();
    const key = `${window}\u0000${platform ?? ''}\u0000${n(newestSnapshot?.id)}\u0000${until.toISOString()}`;
    let report = this.#upgradeCache.get(key);
    if (report === undefined) {
      report = await this.#computeUpgrades(platform, since, until, bucketSeconds);
      this.#upgradeCache.set(key, report);
      if (this.#upgradeCache.size > 12)
        this.#upgradeCache.delete(this.#upgradeCache.keys().next().value as string);
    }
    const { events, ...rest } = report;
    return {
      ...rest,
      events: {
        items: events.slice(p.offset, p.offset + p.limit),
        offset: p.offset,
        limit: p.limit,
        total: events.length,
        hasMore: p.offset + p.limit < events.length,
      },
    };
  }

  async #computeUpgrades(
    platform: string | undefined,
    since: Date,
    until: Date,
    bucketSeconds: number,
  ): Promise<Omit<UpgradesReport, 'events'> & { events: UpgradeEvent[] }> {
    const sinceIso = since.toISOString();
    const db = this.#db;

    const snapshotPlatforms = await db
      .selectFrom('catalog_snapshots as s')
      .innerJoin('platforms as pl', 'pl.id', 's.platform_id')
      .select((eb) => ['pl.id', 'pl.name', eb.fn.min('s.generated_at').as('first')])
      .$if(platform !== undefined, (q) => q.where('pl.name', '=', platform as string))
      .groupBy(['pl.id', 'pl.name'])
      .execute();
    const platforms = snapshotPlatforms.map((r) => r.name).sort();
    const events: UpgradeEvent[] = [];
    for (const sp of snapshotPlatforms) {
      // Versions first listed in the window, except by the platform's first snapshot (that is the
      // initial load, not a change).
      // Driven by catalog_entries_first_seen_idx (a cross join keeps SQLite's planner on the
      // window's range instead of seeking every package of the platform).
      const candidates = await db
        .selectFrom('catalog_entries as e')
        .crossJoin('catalog_packages as c')
        .select(['c.id as package_id', 'c.name', 'c.arch', 'e.first_seen'])
        .whereRef('c.id', '=', 'e.package_id')
        .where('c.platform_id', '=', sp.id)
        .where('e.first_seen', '>=', sinceIso)
        .where('e.first_seen', '>', sp.first)
        .execute();
      if (candidates.length === 0) continue;
      const times = new Map<number, { name: string; arch: string; times: string[] }>();
      for (const c of candidates) {
        const t = times.get(c.package_id) ?? { name: c.name, arch: c.arch, times: [] };
        t.times.push(c.first_seen);
        times.set(c.package_id, t);
      }
      const compare = comparerFor(sp.name);
      for (const batch of chunked([...times.keys()])) {
        const versions = await db
          .selectFrom('catalog_entries')
          .select(['package_id', 'version', 'first_seen', 'withdrawn_at'])
          .where('package_id', 'in', batch)
          .execute();
        const byPackage = new Map<number, SeenVersion[]>();
        for (const v of versions) {
          const list = byPackage.get(v.package_id) ?? [];
          list.push({ version: v.version, firstSeen: v.first_seen, withdrawnAt: v.withdrawn_at });
          byPackage.set(v.package_id, list);
        }
        for (const id of batch) {
          const t = times.get(id);
          if (t === undefined) continue;
          for (const change of newestChanges(byPackage.get(id) ?? [], t.times, compare)) {
            events.push({ platform: sp.name, name: t.name, arch: t.arch, ...change });
          }
        }
      }
    }
    events.sort((a, b) =>
      a.at !== b.at ? (a.at < b.at ? 1 : -1) : a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    return {
      since: sinceIso,
      until: until.toISOString(),
      bucketSeconds,
      platforms,
      buckets: bucketize(events, platforms, since, until, bucketSeconds),
      events,
    };
  }

  // --- health and jobs --------------------------------------------------------------------------

  /** Jobs built on one platform, by state: ranges of jobs_claim_idx (platform, state, next run). */
  async #jobCounts(
    platformId: number,
    nowIso?: string,
  ): Promise<JobCounts & { due: number; oldestPendingCreatedAt?: string }> {
    const db = this.#db;
    const counts: JobCounts & { due: number; oldestPendingCreatedAt?: string } = {
      pending: 0,
      running: 0,
      done: 0,
      dead: 0,
      retrying: 0,
      due: 0,
    };
    const byState = await db
      .selectFrom('jobs')
      .select((eb) => ['state', eb.fn.countAll().as('count')])
      .where('platform_id', '=', platformId)
      .groupBy('state')
      .execute();
    for (const r of byState) if (r.state in counts) counts[r.state as keyof JobCounts] = n(r.count);
    if (counts.pending > 0) {
      const pending = await db
        .selectFrom('jobs')
        .select((eb) => [
          eb.fn.sum<number>(eb.case().when('attempts', '>', 0).then(1).else(0).end()).as('retried'),
          eb.fn.min('created_at').as('oldest'),
          ...(nowIso === undefined
            ? []
            : [
                eb.fn
                  .sum<number>(eb.case().when('next_run_at', '<=', nowIso).then(1).else(0).end())
                  .as('due'),
              ]),
        ])
        .where('platform_id', '=', platformId)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      counts.retrying = n(pending?.retried);
      counts.due = n((pending as { due?: unknown } | undefined)?.due);
      if (typeof pending?.oldest === 'string') counts.oldestPendingCreatedAt = pending.oldest;
    }
    return counts;
  }

  async #queue(): Promise<HealthInfo['queue']> {
    const nowIso = this.#now().toISOString();
    const q: HealthInfo['queue'] = { pending: 0, running: 0, done: 0, dead: 0, retrying: 0, due: 0 };
    const platforms = await this.#db.selectFrom('platforms').select('id').execute();
    for (const p of platforms) {
      const c = await this.#jobCounts(p.id, nowIso);
      for (const k of ['pending', 'running', 'done', 'dead', 'retrying', 'due'] as const) q[k] += c[k];
      if (
        c.oldestPendingCreatedAt !== undefined &&
        (q.oldestPendingCreatedAt === undefined || c.oldestPendingCreatedAt < q.oldestPendingCreatedAt)
      ) {
        q.oldestPendingCreatedAt = c.oldestPendingCreatedAt;
      }
    }
    return q;
  }

  #http(): HttpStats | undefined {
    if (this.#metrics === undefined) return undefined;
    const s = this.#metrics.snapshot(this.#metricsWindow);
    const share = (x: number): number => (s.requests === 0 ? 0 : x / s.requests);
    return {
      uptimeSeconds: s.uptimeSeconds,
      windowSeconds: s.windowSeconds,
      requests: s.requests,
      requestsPerSecond: s.requestsPerSecond,
      errorRate: share(s.serverErrors),
      clientErrorRate: share(s.errors - s.serverErrors),
      latencyMs: { p50: s.latencyMs.p50 ?? 0, p95: s.latencyMs.p95 ?? 0, p99: s.latencyMs.p99 ?? 0 },
    };
  }

  async health(): Promise<HealthInfo> {
    const db = this.#db;
    const size =
      this.#store.dialect === 'postgres'
        ? await sql<{ size: number }>`select pg_database_size(current_database()) as size`.execute(db)
        : await sql<{
            size: number;
          }>`select page_count * page_size as size from pragma_page_count(), pragma_page_size()`.execute(db);
    const schema = await this.#store.schemaVersion();
    const platformIds = (await db.selectFrom('platforms').select('id').execute()).map((r) => r.id);
    const running = await db
      .selectFrom('jobs as j')
      .innerJoin('platforms as p', 'p.id', 'j.platform_id')
      .select([
        'j.id',
        'j.lease_owner',
        'j.updated_at',
        'j.lease_expires_at',
        'j.name',
        'j.version',
        'j.arch',
        'p.name as platform',
      ])
      // A range of jobs_claim_idx per platform, not a scan of every job ever queued.
      .where('j.platform_id', 'in', platformIds.length === 0 ? [0] : platformIds)
      .where('j.state', '=', 'running')
      .orderBy('j.id')
      .limit(10_000)
      .execute();
    const workers = new Map<string, HealthInfo['workers'][number]>();
    for (const r of running) {
      const id = r.lease_owner ?? '(unknown)';
      const w = workers.get(id) ?? {
        id,
        lastHeartbeatAt: r.updated_at,
        leaseExpiresAt: r.lease_expires_at ?? r.updated_at,
        jobs: [],
      };
      if (r.updated_at > w.lastHeartbeatAt) w.lastHeartbeatAt = r.updated_at;
      if ((r.lease_expires_at ?? '') > w.leaseExpiresAt) w.leaseExpiresAt = r.lease_expires_at as string;
      w.jobs.push({ id: r.id, platform: r.platform, name: r.name, version: r.version, arch: r.arch });
      workers.set(id, w);
    }
    const http = this.#http();
    return {
      ...(http === undefined ? {} : { http }),
      database: {
        dialect: this.#store.dialect,
        bytes: n(size.rows[0]?.size),
        schemaApplied: schema.applied,
        schemaKnown: schema.known,
      },
      queue: await this.#queue(),
      workers: [...workers.values()].sort((a, b) => (a.lastHeartbeatAt < b.lastHeartbeatAt ? 1 : -1)),
    };
  }

  /** Jobs by id, in the order given. */
  async #jobsByIds(ids: readonly number[]): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    const rows = await this.#db
      .selectFrom('jobs as j')
      .innerJoin('platforms as p', 'p.id', 'j.platform_id')
      .innerJoin('platforms as t', 't.id', 'j.target_platform_id')
      .selectAll('j')
      .select(['p.name as platform', 't.name as target_platform'])
      .where('j.id', 'in', [...ids])
      .execute();
    const byId = new Map(
      rows.map((r) => [
        r.id,
        {
          id: r.id,
          platform: r.platform,
          targetPlatform: r.target_platform,
          name: r.name,
          version: r.version,
          arch: r.arch,
          reason: r.reason,
          state: r.state,
          attempts: r.attempts,
          nextRunAt: r.next_run_at,
          ...(r.lease_owner === null ? {} : { leaseOwner: r.lease_owner }),
          ...(r.lease_expires_at === null ? {} : { leaseExpiresAt: r.lease_expires_at }),
          ...(r.last_error === null ? {} : { lastError: r.last_error }),
          createdAt: r.created_at,
          updatedAt: r.updated_at,
          ...(r.completed_at === null ? {} : { completedAt: r.completed_at }),
        } satisfies JobRow,
      ]),
    );
    return ids.flatMap((id) => {
      const j = byId.get(id);
      return j === undefined ? [] : [j];
    });
  }

  queueCounts(): Promise<HealthInfo['queue']> {
    return this.#queue();
  }

  async jobs(view: JobView, p: PageRequest): Promise<Page<JobRow>> {
    let ids: number[];
    if (view === 'failures') {
      // Dead jobs and retrying ones (pending after a failed attempt; a requeued job starts again at
      // 0 attempts and is not listed), newest failure first: two ranges of jobs_claim_idx.
      const platformIds = (await this.#db.selectFrom('platforms').select('id').execute()).map((r) => r.id);
      if (platformIds.length === 0) return page([], p);
      const failed = await this.#db
        .selectFrom('jobs')
        .select(['id', 'updated_at'])
        .where('platform_id', 'in', platformIds)
        .where((eb) =>
          eb.or([eb('state', '=', 'dead'), eb.and([eb('state', '=', 'pending'), eb('attempts', '>', 0)])]),
        )
        .execute();
      ids = failed
        .sort((a, b) =>
          a.updated_at !== b.updated_at ? (a.updated_at < b.updated_at ? 1 : -1) : b.id - a.id,
        )
        .slice(p.offset, p.offset + p.limit + 1)
        .map((r) => r.id);
    } else {
      const rows = await this.#db
        .selectFrom('jobs')
        .select('id')
        .$if(view === 'queue', (q) => q.where('state', 'in', ['pending', 'running']).orderBy('id'))
        .$if(view === 'history', (q) => q.where('state', '=', 'done').orderBy('id', 'desc'))
        .limit(p.limit + 1)
        .offset(p.offset)
        .execute();
      ids = rows.map((r) => r.id);
    }
    return page(await this.#jobsByIds(ids), p);
  }

  async job(id: number): Promise<JobRow | undefined> {
    const j = await this.#store.getJob(id);
    return j === undefined ? undefined : jobRow(j);
  }

  // --- admin ------------------------------------------------------------------------------------

  async trackedPackages(p: PageRequest): Promise<Page<TrackedRow>> {
    const rows = await this.#db
      .selectFrom('tracked_packages as t')
      .innerJoin('platforms as pl', 'pl.id', 't.platform_id')
      .select(['pl.name as platform', 't.name', 't.source', 't.created_at'])
      .orderBy('t.created_at', 'desc')
      .orderBy('t.name')
      .limit(p.limit + 1)
      .offset(p.offset)
      .execute();
    const total = await this.#db
      .selectFrom('tracked_packages')
      .select((eb) => eb.fn.countAll().as('c'))
      .executeTakeFirst();
    return page(
      rows.map((r) => ({ platform: r.platform, name: r.name, source: r.source, since: r.created_at })),
      p,
      n(total?.c),
    );
  }

  async tokens(): Promise<TokenRow[]> {
    return (await this.#store.listTokens()).map((t) => ({
      id: t.id,
      name: t.name,
      role: t.role,
      createdAt: t.createdAt,
      ...(t.revokedAt === undefined ? {} : { revokedAt: t.revokedAt }),
    }));
  }

  async trustedKeys(): Promise<KeyRow[]> {
    return (await this.#store.listTrustedKeys({ includeRemoved: true })).map((k) => ({
      fingerprint: k.fingerprint,
      addedAt: k.addedAt,
      ...(k.removedAt === undefined ? {} : { removedAt: k.removedAt }),
    }));
  }

  requeueJob(id: number): Promise<JobRow> {
    return refusing(async () => jobRow(await this.#store.requeue(id)));
  }

  async #knownPlatform(platform: string): Promise<void> {
    if (!(await this.platforms()).includes(platform)) {
      throw new DashboardError(400, `no catalog has been received for platform ${platform}`);
    }
  }

  async trackPackage(platform: string, name: string): Promise<{ jobsQueued: number }> {
    await this.#knownPlatform(platform);
    return refusing(() => this.#store.trackPackages(platform, [name], 'config'));
  }

  untrackPackage(platform: string, name: string): Promise<number> {
    return refusing(() => this.#store.untrackPackages(platform, [name], 'config'));
  }

  createToken(role: Role, name: string): Promise<{ id: number; secret: string }> {
    return refusing(() => this.#store.createToken(role, name));
  }

  revokeToken(id: number): Promise<TokenRow> {
    return refusing(async () => {
      const t = await this.#store.revokeToken(id);
      return {
        id: t.id,
        name: t.name,
        role: t.role,
        createdAt: t.createdAt,
        ...(t.revokedAt === undefined ? {} : { revokedAt: t.revokedAt }),
      };
    });
  }

  trustKey(armored: string): Promise<KeyRow> {
    return refusing(async () => {
      const k = await this.#store.addTrustedKey(armored);
      return { fingerprint: k.fingerprint, addedAt: k.addedAt };
    });
  }

  distrustKey(fingerprint: string): Promise<void> {
    return refusing(() => this.#store.removeTrustedKey(fingerprint.toUpperCase()));
  }
}
