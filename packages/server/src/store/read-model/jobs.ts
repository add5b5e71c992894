import type { JobView, Page, PageRequest, WorkerInfo } from '@sysattest/dashboard';
import { reading } from '../context.js';
import { toJob, type GenerationJob, type StoredJobRow } from '../jobs.js';
import { pageOf, type ReadContext } from './read-context.js';

export async function jobsPage(
  ctx: ReadContext,
  list: JobView,
  p: PageRequest,
): Promise<Page<GenerationJob>> {
  return reading(async () => {
    const ids = list === 'failures' ? await failedJobIds(ctx, p) : await jobIds(ctx, list, p);
    return pageOf(await jobsByIds(ctx, ids), p);
  });
}

/** Jobs by id, in the order given. */
async function jobsByIds(ctx: ReadContext, ids: readonly number[]): Promise<GenerationJob[]> {
  if (ids.length === 0) return [];
  const rows = await ctx.db
    .selectFrom('jobs as j')
    .innerJoin('platforms as p', 'p.id', 'j.platform_id')
    .innerJoin('platforms as t', 't.id', 'j.target_platform_id')
    .selectAll('j')
    .select(['p.name as platform', 't.name as target_platform'])
    .where('j.id', 'in', [...ids])
    .execute();
  const byId = new Map(rows.map((r) => [r.id, toJob(r as StoredJobRow)]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

async function jobIds(ctx: ReadContext, list: 'queue' | 'history', p: PageRequest): Promise<number[]> {
  const rows = await ctx.db
    .selectFrom('jobs')
    .select('id')
    .$if(list === 'queue', (q) => q.where('state', 'in', ['pending', 'running']).orderBy('id'))
    .$if(list === 'history', (q) => q.where('state', '=', 'done').orderBy('id', 'desc'))
    .limit(p.limit + 1)
    .offset(p.offset)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Dead jobs and retrying ones (pending after a failed attempt; a requeued job starts again at 0
 * attempts and is not listed), newest failure first: two ranges of jobs_claim_idx.
 */
async function failedJobIds(ctx: ReadContext, p: PageRequest): Promise<number[]> {
  const platformIds = (await ctx.db.selectFrom('platforms').select('id').execute()).map((r) => r.id);
  if (platformIds.length === 0) return [];
  const failed = await ctx.db
    .selectFrom('jobs')
    .select(['id', 'updated_at'])
    .where('platform_id', 'in', platformIds)
    .where((eb) =>
      eb.or([eb('state', '=', 'dead'), eb.and([eb('state', '=', 'pending'), eb('attempts', '>', 0)])]),
    )
    .execute();
  return failed
    .sort((a, b) => (a.updated_at !== b.updated_at ? (a.updated_at < b.updated_at ? 1 : -1) : b.id - a.id))
    .slice(p.offset, p.offset + p.limit + 1)
    .map((r) => r.id);
}

/** The workers holding running jobs, most recent heartbeat first. */
export async function workers(ctx: ReadContext): Promise<WorkerInfo[]> {
  const running = await reading(async () => {
    const platformIds = (await ctx.db.selectFrom('platforms').select('id').execute()).map((r) => r.id);
    return (
      ctx.db
        .selectFrom('jobs as j')
        .innerJoin('platforms as p', 'p.id', 'j.platform_id')
        .select(['j.id', 'j.lease_owner', 'j.updated_at', 'j.lease_expires_at'])
        .select(['j.name', 'j.version', 'j.arch', 'p.name as platform'])
        // A range of jobs_claim_idx per platform, not a scan of every job ever queued.
        .where('j.platform_id', 'in', platformIds.length === 0 ? [0] : platformIds)
        .where('j.state', '=', 'running')
        .orderBy('j.id')
        .limit(10_000)
        .execute()
    );
  });
  const byWorker = new Map<string, WorkerInfo>();
  for (const r of running) {
    const id = r.lease_owner ?? '(unknown)';
    const expires = r.lease_expires_at ?? r.updated_at;
    const w = byWorker.get(id) ?? { id, lastHeartbeatAt: r.updated_at, leaseExpiresAt: expires, jobs: [] };
    if (r.updated_at > w.lastHeartbeatAt) w.lastHeartbeatAt = r.updated_at;
    if ((r.lease_expires_at ?? '') > w.leaseExpiresAt) w.leaseExpiresAt = r.lease_expires_at as string;
    w.jobs.push({ id: r.id, platform: r.platform, name: r.name, version: r.version, arch: r.arch });
    byWorker.set(id, w);
  }
  return [...byWorker.values()].sort((a, b) => (a.lastHeartbeatAt < b.lastHeartbeatAt ? 1 : -1));
}
