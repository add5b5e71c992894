import type { Transaction } from 'kysely';
import { inTransaction, type StoreContext } from './context.js';
import type { Database } from './database.js';
import { manifestPlatformName } from './catalogs.js';
import { enqueueJobs } from './jobs.js';
import { ensurePlatformIds, findPlatformIds } from './platforms.js';

/**
 * The long-term memory of a platform that tracks its whole catalog (server configuration
 * `track: {"debian/bookworm/amd64": "all"}`): every version its latest catalog carries that has
 * no manifest gets a generation job, so the server keeps a manifest of each version while the
 * archive still offers it. Backlog jobs have BACKLOG_PRIORITY: a worker claims them only when no
 * job a client or an operator asked for is due. Queued again whenever a newer catalog arrives
 * (in its transaction, catalogs.ts) and when the server starts; a version that has a job or a
 * manifest is never queued twice.
 */
export const BACKLOG_PRIORITY = -1;

/** Queues the platform's backlog; the number of jobs queued. */
export function queueBacklog(ctx: StoreContext, platformName: string): Promise<number> {
  return inTransaction(ctx, async (trx) => {
    const platformId = (await findPlatformIds(trx, [platformName])).get(platformName);
    return platformId === undefined ? 0 : queueBacklogIn(trx, ctx, platformId, platformName);
  });
}

/** The same, inside the caller's transaction. */
export async function queueBacklogIn(
  trx: Transaction<Database>,
  ctx: StoreContext,
  platformId: number,
  platformName: string,
): Promise<number> {
  const carried = await trx
    .selectFrom('catalog_entries as e')
    .innerJoin('catalog_packages as p', 'p.id', 'e.package_id')
    .select(['p.name', 'p.arch', 'e.version'])
    .where('p.platform_id', '=', platformId)
    .where('e.withdrawn_at', 'is', null)
    .execute();
  if (carried.length === 0) return 0;
  const targetNames = [...new Set(carried.map((e) => manifestPlatformName(platformName, e.arch)))];
  const targets = await ensurePlatformIds(trx, targetNames, ctx.now());
  const made = await manifestKeys(trx, [...targets.values()]);
  const items = carried
    .map((e) => ({
      targetPlatformId: targets.get(manifestPlatformName(platformName, e.arch)) as number,
      name: e.name,
      version: e.version,
      arch: e.arch,
    }))
    .filter((t) => !made.has(key(t.targetPlatformId, t.name, t.version, t.arch)));
  return enqueueJobs(trx, ctx, platformId, items, 'tracked', BACKLOG_PRIORITY);
}

function key(platformId: number, name: string, version: string, arch: string): string {
  return `${platformId}\0${name}\0${version}\0${arch}`;
}

async function manifestKeys(
  trx: Transaction<Database>,
  platformIds: readonly number[],
): Promise<Set<string>> {
  const rows = await trx
    .selectFrom('manifests')
    .select(['platform_id', 'name', 'version', 'arch'])
    .where('platform_id', 'in', [...platformIds])
    .execute();
  return new Set(rows.map((r) => key(r.platform_id, r.name, r.version, r.arch)));
}
