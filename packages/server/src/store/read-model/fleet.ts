import type { FleetRow, HealthInfo, JobCounts } from '@sysattest/dashboard';
import { reading } from '../context.js';
import { byText, count, type ReadContext } from './read-context.js';

/** The whole queue: how many jobs are due now, and since when the oldest pending one waits. */
type QueueCounts = HealthInfo['queue'];

/** Names of the platforms some catalog snapshot was received for, sorted. */
export async function platformsWithCatalog(ctx: ReadContext): Promise<string[]> {
  const { db } = ctx;
  const rows = await reading(() =>
    db
      .selectFrom('platforms')
      .select('name')
      .where('id', 'in', db.selectFrom('catalog_snapshots').select('platform_id'))
      .execute(),
  );
  return rows.map((r) => r.name).sort();
}

/**
 * Every platform of the fleet with its figures, by name. Architecture-independent manifests live
 * on `…/all`: such a platform with no catalog and no job is not an image of the fleet.
 */
export async function fleet(ctx: ReadContext): Promise<FleetRow[]> {
  return reading(async () => {
    const platforms = await ctx.db.selectFrom('platforms').select(['id', 'name']).execute();
    const rows = new Map<number, FleetRow>();
    // Per platform, so that every query is a range of an index (no table scan over 60,000
    // catalog entries or every job ever queued).
    for (const p of platforms) rows.set(p.id, await platformOverview(ctx, p.id, p.name));
    for (const [platformId, covered] of await trackedCovered(ctx)) {
      const row = rows.get(platformId);
      if (row !== undefined) row.trackedCovered = covered;
    }
    return [...rows.values()]
      .filter(
        (r) =>
          r.snapshots > 0 ||
          r.jobs.pending + r.jobs.running + r.jobs.dead > 0 ||
          !r.platform.endsWith('/all'),
      )
      .sort((a, b) => byText(a.platform, b.platform));
  });
}

async function platformOverview(ctx: ReadContext, id: number, name: string): Promise<FleetRow> {
  const { db } = ctx;
  const snapshots = await db
    .selectFrom('catalog_snapshots')
    .select((eb) => [eb.fn.countAll().as('count'), eb.fn.min('generated_at').as('first')])
    .where('platform_id', '=', id)
    .executeTakeFirst();
  const latest = await db
    .selectFrom('catalog_snapshots')
    .select(['generated_at', 'package_count'])
    .where('platform_id', '=', id)
    .orderBy('generated_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  const { pending, running, done, dead, retrying } = await jobCounts(ctx, id, ctx.now().toISOString());
  return {
    platform: name,
    snapshots: count(snapshots?.count),
    ...(typeof snapshots?.first === 'string' ? { firstCatalogAt: snapshots.first } : {}),
    ...(latest === undefined ? {} : { latestCatalogAt: latest.generated_at }),
    packages: await countWhere(ctx, 'catalog_packages', id),
    // The versions the latest snapshot lists are exactly its packages.
    versions: latest?.package_count ?? 0,
    trackedPackages: await trackedNames(ctx, id),
    trackedCovered: 0,
    manifests: await countWhere(ctx, 'manifests', id),
    jobs: { pending, running, done, dead, retrying },
    ...(await backlogOf(ctx, id)),
  };
}

/** The platform's whole-catalog backlog (jobs below client priority, store/backlog.ts) by state. */
async function backlogOf(ctx: ReadContext, platformId: number): Promise<Pick<FleetRow, 'backlog'>> {
  const rows = await ctx.db
    .selectFrom('jobs')
    .select((eb) => ['state', eb.fn.countAll().as('count')])
    .where('platform_id', '=', platformId)
    .where('priority', '<', 0)
    .groupBy('state')
    .execute();
  if (rows.length === 0) return {};
  const by = new Map(rows.map((r) => [r.state, count(r.count)]));
  const left = (by.get('pending') ?? 0) + (by.get('running') ?? 0);
  return { backlog: { left, done: by.get('done') ?? 0, dead: by.get('dead') ?? 0 } };
}

async function countWhere(
  ctx: ReadContext,
  table: 'catalog_packages' | 'manifests',
  platformId: number,
): Promise<number> {
  const r = await ctx.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('count'))
    .where('platform_id', '=', platformId)
    .executeTakeFirst();
  return count(r?.count);
}

async function trackedNames(ctx: ReadContext, platformId: number): Promise<number> {
  const r = await ctx.db
    .selectFrom('tracked_packages')
    .select((eb) => eb.fn.count('name').distinct().as('count'))
    .where('platform_id', '=', platformId)
    .executeTakeFirst();
  return count(r?.count);
}

/** Per platform id: tracked packages whose newest version has a manifest (on its arch's platform). */
async function trackedCovered(ctx: ReadContext): Promise<Map<number, number>> {
  const rows = await ctx.db
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
  return new Map(rows.map((r) => [r.platform_id, count(r.count)]));
}

/**
 * Jobs built on one platform, by state, and the pending ones due by `nowIso`: ranges of
 * jobs_claim_idx (platform, state, next run).
 */
async function jobCounts(ctx: ReadContext, platformId: number, nowIso: string): Promise<QueueCounts> {
  const counts: QueueCounts = { pending: 0, running: 0, done: 0, dead: 0, retrying: 0, due: 0 };
  const byState = await ctx.db
    .selectFrom('jobs')
    .select((eb) => ['state', eb.fn.countAll().as('count')])
    .where('platform_id', '=', platformId)
    .groupBy('state')
    .execute();
  for (const r of byState) if (r.state in counts) counts[r.state as keyof JobCounts] = count(r.count);
  if (counts.pending === 0) return counts;
  const pending = await ctx.db
    .selectFrom('jobs')
    .select((eb) => [
      eb.fn.sum<number>(eb.case().when('attempts', '>', 0).then(1).else(0).end()).as('retried'),
      eb.fn.min('created_at').as('oldest'),
      eb.fn.sum<number>(eb.case().when('next_run_at', '<=', nowIso).then(1).else(0).end()).as('due'),
    ])
    .where('platform_id', '=', platformId)
    .where('state', '=', 'pending')
    .executeTakeFirst();
  counts.retrying = count(pending?.retried);
  counts.due = count(pending?.due);
  if (typeof pending?.oldest === 'string') counts.oldestPendingCreatedAt = pending.oldest;
  return counts;
}

/** The queue's figures over every platform, `due` by the store's clock. */
export async function queueCounts(ctx: ReadContext): Promise<QueueCounts> {
  return reading(async () => {
    const nowIso = ctx.now().toISOString();
    const q: QueueCounts = { pending: 0, running: 0, done: 0, dead: 0, retrying: 0, due: 0 };
    const platforms = await ctx.db.selectFrom('platforms').select('id').execute();
    for (const p of platforms) {
      const c = await jobCounts(ctx, p.id, nowIso);
      for (const k of ['pending', 'running', 'done', 'dead', 'retrying', 'due'] as const) q[k] += c[k];
      const oldest = c.oldestPendingCreatedAt;
      if (
        oldest !== undefined &&
        (q.oldestPendingCreatedAt === undefined || oldest < q.oldestPendingCreatedAt)
      )
        q.oldestPendingCreatedAt = oldest;
    }
    return q;
  });
}
