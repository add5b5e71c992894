import type { Transaction } from 'kysely';
import { manifestPlatformName } from './catalogs.js';
import { chunks, inTransaction, iso, reading, rowsPerStatement, type StoreContext } from './context.js';
import type { Database } from './database.js';
import { enqueueJobs } from './jobs.js';
import { ensurePlatformId, ensurePlatformIds, platformOf } from './platforms.js';
import { StoreError } from './store-error.js';

/**
 * Tracked packages: the server keeps a manifest of their newest version. `client-request`: a
 * client asked about the package (recorded by lookup); `config`: the operator's configuration
 * names it. When a catalog brings a new newest version of a tracked package, its job is queued.
 */
export type TrackingSource = 'client-request' | 'config';

export interface TrackedPackage {
  platform: string;
  name: string;
  source: TrackingSource;
  since: string;
}

const MAX_NAMES = 100_000;

function checkNames(names: unknown): string[] {
  if (!Array.isArray(names) || names.length > MAX_NAMES) {
    throw new StoreError('INVALID', `package names must be an array of at most ${MAX_NAMES}`);
  }
  for (const n of names) {
    if (typeof n !== 'string' || n.length === 0 || n.length > 256) {
      throw new StoreError('INVALID', 'a package name must be a string of 1 to 256 characters');
    }
  }
  return [...new Set(names as string[])].sort();
}

/**
 * Tracks packages on a platform, and queues their newest versions that have no manifest yet, in
 * one transaction. Returns how many jobs were queued.
 */
export async function trackPackages(
  ctx: StoreContext,
  platform: string,
  names: readonly string[],
  source: TrackingSource = 'config',
): Promise<{ jobsQueued: number }> {
  platformOf(platform);
  const wanted = checkNames(names);
  return inTransaction(ctx, async (trx) => {
    const now = ctx.now();
    const platformId = await ensurePlatformId(trx, platform, now);
    for (const batch of chunks(wanted, rowsPerStatement(4))) {
      await trx
        .insertInto('tracked_packages')
        .values(batch.map((name) => ({ platform_id: platformId, name, source, created_at: iso(now) })))
        .onConflict((oc) => oc.columns(['platform_id', 'name', 'source']).doNothing())
        .execute();
    }
    return { jobsQueued: await enqueueNewestWithoutManifest(trx, ctx, platformId, platform, wanted) };
  });
}

async function enqueueNewestWithoutManifest(
  trx: Transaction<Database>,
  ctx: StoreContext,
  platformId: number,
  platform: string,
  names: readonly string[],
): Promise<number> {
  const newest: { name: string; arch: string; version: string }[] = [];
  for (const batch of chunks(names, rowsPerStatement(1))) {
    const rows = await trx
      .selectFrom('catalog_packages')
      .select(['name', 'arch', 'newest_version'])
      .where('platform_id', '=', platformId)
      .where('name', 'in', batch)
      .where('newest_version', 'is not', null)
      .execute();
    for (const r of rows) newest.push({ name: r.name, arch: r.arch, version: r.newest_version as string });
  }
  if (newest.length === 0) return 0;
  const targets = await ensurePlatformIds(
    trx,
    newest.map((n) => manifestPlatformName(platform, n.arch)),
    ctx.now(),
  );
  const missing = [];
  for (const n of newest) {
    const targetPlatformId = targets.get(manifestPlatformName(platform, n.arch)) as number;
    const stored = await trx
      .selectFrom('manifests')
      .select('id')
      .where('platform_id', '=', targetPlatformId)
      .where('name', '=', n.name)
      .where('version', '=', n.version)
      .where('arch', '=', n.arch)
      .executeTakeFirst();
    if (stored === undefined) missing.push({ targetPlatformId, ...n });
  }
  return enqueueJobs(trx, ctx, platformId, missing, 'tracked');
}

/** Stops tracking (for one source); returns how many rows were removed. */
export async function untrackPackages(
  ctx: StoreContext,
  platform: string,
  names: readonly string[],
  source: TrackingSource = 'config',
): Promise<number> {
  platformOf(platform);
  const wanted = checkNames(names);
  return inTransaction(ctx, async (trx) => {
    let removed = 0;
    for (const batch of chunks(wanted, rowsPerStatement(1))) {
      const r = await trx
        .deleteFrom('tracked_packages')
        .where('platform_id', 'in', trx.selectFrom('platforms').select('id').where('name', '=', platform))
        .where('source', '=', source)
        .where('name', 'in', batch)
        .executeTakeFirst();
      removed += Number(r.numDeletedRows);
    }
    return removed;
  });
}

export async function listTrackedPackages(ctx: StoreContext, platform?: string): Promise<TrackedPackage[]> {
  if (platform !== undefined) platformOf(platform);
  return reading(async () => {
    const rows = await ctx.db
      .selectFrom('tracked_packages as t')
      .innerJoin('platforms as p', 'p.id', 't.platform_id')
      .select(['p.name as platform', 't.name', 't.source', 't.created_at'])
      .$if(platform !== undefined, (q) => q.where('p.name', '=', platform as string))
      .execute();
    // Sorted here: text order in SQL depends on the PostgreSQL collation.
    const key = (r: (typeof rows)[number]): string => `${r.platform}\u0000${r.name}\u0000${r.source}`;
    return rows
      .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
      .map((r) => ({
        platform: r.platform,
        name: r.name,
        source: r.source as TrackingSource,
        since: r.created_at,
      }));
  });
}
