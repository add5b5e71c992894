import { sql } from 'kysely';
import { reading, type StoreContext } from './context.js';
import type { JobState } from './jobs.js';

/** Counts for one platform, for the dashboard and metrics. */
export interface PlatformStats {
  platform: string;
  /** Package versions the latest catalog offers / versions seen once and withdrawn since. */
  catalogEntries: number;
  withdrawnEntries: number;
  catalogSnapshots: number;
  latestCatalogAt?: string;
  manifests: number;
  trackedPackages: number;
  /** Jobs built on this platform, by state; `retrying` are the pending ones that failed before. */
  jobs: Record<JobState, number> & { retrying: number };
}

export interface StoreStats {
  dialect: 'sqlite' | 'postgres';
  platforms: PlatformStats[];
  manifests: number;
  /** Rows of the reverse index, distinct file contents and distinct paths behind it. */
  manifestFiles: number;
  contents: number;
  paths: number;
  conflicts: number;
  activeTokens: number;
  trustedKeys: number;
  /** Bytes the database occupies (SQLite: the main file's pages; PostgreSQL: pg_database_size). */
  databaseBytes: number;
  /**
   * Since when the longest-waiting claimable job has been due (the smallest next_run_at of the
   * pending jobs whose next_run_at has passed); absent when no job is waiting.
   */
  oldestDueJobSince?: string;
}

const n = (v: unknown): number => Number(v ?? 0);

/** Bytes the database occupies (SQLite: the main file's pages; PostgreSQL: pg_database_size). */
const SIZE_QUERIES = {
  postgres: sql<{ size: number }>`select pg_database_size(current_database()) as size`,
  sqlite: sql<{
    size: number;
  }>`select page_count * page_size as size from pragma_page_count(), pragma_page_size()`,
};

async function databaseSize(ctx: StoreContext): Promise<number> {
  return n((await SIZE_QUERIES[ctx.dialect].execute(ctx.db)).rows[0]?.size);
}

export function databaseBytes(ctx: StoreContext): Promise<number> {
  return reading(() => databaseSize(ctx));
}

type Db = StoreContext['db'];
/** The platform's stats being filled in, by platform id (undefined: a platform added meanwhile). */
type StatsOf = (platformId: number) => PlatformStats | undefined;

/** Counts per platform and in total, each from one grouped query (read in one snapshot). */
export async function storeStats(ctx: StoreContext): Promise<StoreStats> {
  return reading(async () => {
    const byId = await emptyPlatformStats(ctx.db);
    const at: StatsOf = (id) => byId.get(id);
    await addCatalogEntries(ctx.db, at);
    await addCatalogSnapshots(ctx.db, at);
    await addManifests(ctx.db, at);
    await addTrackedPackages(ctx.db, at);
    await addJobs(ctx.db, at);
    return { ...(await totals(ctx)), platforms: [...byId.values()] };
  });
}

async function emptyPlatformStats(db: Db): Promise<Map<number, PlatformStats>> {
  const platforms = await db.selectFrom('platforms').select(['id', 'name']).orderBy('id').execute();
  return new Map(
    platforms.map((p) => [
      p.id,
      {
        platform: p.name,
        catalogEntries: 0,
        withdrawnEntries: 0,
        catalogSnapshots: 0,
        manifests: 0,
        trackedPackages: 0,
        jobs: { pending: 0, running: 0, done: 0, dead: 0, retrying: 0 },
      },
    ]),
  );
}

async function addCatalogEntries(db: Db, at: StatsOf): Promise<void> {
  const rows = await db
    .selectFrom('catalog_entries as e')
    .innerJoin('catalog_packages as p', 'p.id', 'e.package_id')
    .select((eb) => [
      'p.platform_id',
      eb.fn.countAll().as('total'),
      eb.fn.count('e.withdrawn_at').as('withdrawn'),
    ])
    .groupBy('p.platform_id')
    .execute();
  for (const r of rows) {
    const s = at(r.platform_id);
    if (s === undefined) continue;
    s.withdrawnEntries = n(r.withdrawn);
    s.catalogEntries = n(r.total) - s.withdrawnEntries;
  }
}

async function addCatalogSnapshots(db: Db, at: StatsOf): Promise<void> {
  const rows = await db
    .selectFrom('catalog_snapshots')
    .select((eb) => ['platform_id', eb.fn.countAll().as('count'), eb.fn.max('generated_at').as('latest')])
    .groupBy('platform_id')
    .execute();
  for (const r of rows) {
    const s = at(r.platform_id);
    if (s === undefined) continue;
    s.catalogSnapshots = n(r.count);
    s.latestCatalogAt = r.latest;
  }
}

async function addManifests(db: Db, at: StatsOf): Promise<void> {
  const rows = await db
    .selectFrom('manifests')
    .select((eb) => ['platform_id', eb.fn.countAll().as('count')])
    .groupBy('platform_id')
    .execute();
  for (const r of rows) {
    const s = at(r.platform_id);
    if (s !== undefined) s.manifests = n(r.count);
  }
}

async function addTrackedPackages(db: Db, at: StatsOf): Promise<void> {
  const rows = await db
    .selectFrom('tracked_packages')
    .select((eb) => ['platform_id', eb.fn.count('name').distinct().as('count')])
    .groupBy('platform_id')
    .execute();
  for (const r of rows) {
    const s = at(r.platform_id);
    if (s !== undefined) s.trackedPackages = n(r.count);
  }
}

async function addJobs(db: Db, at: StatsOf): Promise<void> {
  const rows = await db
    .selectFrom('jobs')
    .select((eb) => [
      'platform_id',
      'state',
      eb.fn.countAll().as('count'),
      eb.fn.sum<number>(eb.case().when('attempts', '>', 0).then(1).else(0).end()).as('retried'),
    ])
    .groupBy(['platform_id', 'state'])
    .execute();
  for (const r of rows) {
    const s = at(r.platform_id);
    if (s === undefined) continue;
    s.jobs[r.state as JobState] = n(r.count);
    if (r.state === 'pending') s.jobs.retrying = n(r.retried);
  }
}

type CountedTable = 'manifests' | 'manifest_files' | 'contents' | 'paths' | 'conflicts';

async function countRows(db: Db, table: CountedTable): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('c'))
    .executeTakeFirst();
  return n(r?.c);
}

/** The store-wide figures: row counts, live tokens and keys, the oldest due job, the size. */
async function totals(ctx: StoreContext): Promise<Omit<StoreStats, 'platforms'>> {
  const { db } = ctx;
  const activeTokens = await db
    .selectFrom('tokens')
    .select((eb) => eb.fn.countAll().as('c'))
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  const trustedKeys = await db
    .selectFrom('trusted_keys')
    .select((eb) => eb.fn.countAll().as('c'))
    .where('removed_at', 'is', null)
    .executeTakeFirst();
  const due = await db
    .selectFrom('jobs')
    .select((eb) => eb.fn.min('next_run_at').as('since'))
    .where('state', '=', 'pending')
    .where('next_run_at', '<=', new Date(ctx.now()).toISOString())
    .executeTakeFirst();
  return {
    ...(typeof due?.since === 'string' ? { oldestDueJobSince: due.since } : {}),
    dialect: ctx.dialect,
    manifests: await countRows(db, 'manifests'),
    manifestFiles: await countRows(db, 'manifest_files'),
    contents: await countRows(db, 'contents'),
    paths: await countRows(db, 'paths'),
    conflicts: await countRows(db, 'conflicts'),
    activeTokens: n(activeTokens?.c),
    trustedKeys: n(trustedKeys?.c),
    databaseBytes: await databaseSize(ctx),
  };
}
