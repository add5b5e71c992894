import type { UpgradeEvent } from '@sysattest/dashboard';
import { chunks, reading } from '../context.js';
import { byText, count, versionOrderFor, type ReadContext } from './read-context.js';

/** One version of one package as the catalogs saw it. */
export interface SeenVersion {
  version: string;
  firstSeen: string;
  /** Time of the first snapshot that no longer listed it. */
  withdrawnAt: string | null;
}

/** Versions listed by the snapshot taken at `t` (first seen by then, not yet withdrawn). */
function listedAt(versions: readonly SeenVersion[], t: string): SeenVersion[] {
  return versions.filter((v) => v.firstSeen <= t && (v.withdrawnAt === null || v.withdrawnAt > t));
}

/** Versions listed just before `t` (withdrawn at `t` counts: the snapshot at `t` replaced them). */
function listedBefore(versions: readonly SeenVersion[], t: string): SeenVersion[] {
  return versions.filter((v) => v.firstSeen < t && (v.withdrawnAt === null || v.withdrawnAt >= t));
}

function newest(
  versions: readonly SeenVersion[],
  compare: (a: string, b: string) => number,
): string | undefined {
  let best: string | undefined;
  for (const v of versions) if (best === undefined || compare(v.version, best) > 0) best = v.version;
  return best;
}

/**
 * The times in `times` (snapshot times at which new versions of this package appeared) when its
 * newest version changed, with the newest before and after, by the distribution's ordering.
 * A version that appeared but is older than what was already there (a late backport) is no upgrade.
 */
export function newestChanges(
  versions: readonly SeenVersion[],
  times: readonly string[],
  compare: (a: string, b: string) => number,
): { at: string; from?: string; to: string }[] {
  const out: { at: string; from?: string; to: string }[] = [];
  for (const t of [...new Set(times)].sort()) {
    const to = newest(listedAt(versions, t), compare);
    const from = newest(listedBefore(versions, t), compare);
    if (to === undefined || (from !== undefined && compare(to, from) <= 0)) continue;
    out.push({ at: t, ...(from === undefined ? {} : { from }), to });
  }
  return out;
}

/** The id of the newest catalog snapshot (0 when there is none): upgrades change only with it. */
export async function newestSnapshotId(ctx: ReadContext): Promise<number> {
  const r = await reading(() =>
    ctx.db
      .selectFrom('catalog_snapshots')
      .select((eb) => eb.fn.max('id').as('id'))
      .executeTakeFirst(),
  );
  return count(r?.id);
}

/**
 * Newest-version changes since `since` on one platform or on all, newest first (then by name),
 * with the platforms that have catalogs. A platform's first snapshot is its initial load, not a
 * change.
 */
export async function packageUpgrades(
  ctx: ReadContext,
  platform: string | undefined,
  since: Date,
): Promise<{ platforms: string[]; upgrades: UpgradeEvent[] }> {
  return reading(async () => {
    const platforms = await ctx.db
      .selectFrom('catalog_snapshots as s')
      .innerJoin('platforms as pl', 'pl.id', 's.platform_id')
      .select((eb) => ['pl.id', 'pl.name', eb.fn.min('s.generated_at').as('first')])
      .$if(platform !== undefined, (q) => q.where('pl.name', '=', platform as string))
      .groupBy(['pl.id', 'pl.name'])
      .execute();
    const upgrades: UpgradeEvent[] = [];
    for (const p of platforms) upgrades.push(...(await upgradesOn(ctx, p, since.toISOString())));
    upgrades.sort((a, b) => (a.at !== b.at ? (a.at < b.at ? 1 : -1) : byText(a.name, b.name)));
    return { platforms: platforms.map((r) => r.name).sort(), upgrades };
  });
}

/** Per catalog package: its name, arch and the times new versions of it were first seen. */
type Appearances = Map<number, { name: string; arch: string; times: string[] }>;

async function upgradesOn(
  ctx: ReadContext,
  platform: { id: number; name: string; first: string },
  sinceIso: string,
): Promise<UpgradeEvent[]> {
  const appeared = await appearedSince(ctx, platform, sinceIso);
  const compare = versionOrderFor(platform.name);
  const out: UpgradeEvent[] = [];
  for (const batch of chunks([...appeared.keys()], 500)) {
    const versions = await seenVersions(ctx, batch);
    for (const id of batch) {
      const a = appeared.get(id);
      if (a === undefined) continue;
      for (const change of newestChanges(versions.get(id) ?? [], a.times, compare))
        out.push({ platform: platform.name, name: a.name, arch: a.arch, ...change });
    }
  }
  return out;
}

/**
 * Versions first listed in the window, except by the platform's first snapshot. Driven by
 * catalog_entries_first_seen_idx (a cross join keeps SQLite's planner on the window's range
 * instead of seeking every package of the platform).
 */
async function appearedSince(
  ctx: ReadContext,
  platform: { id: number; first: string },
  sinceIso: string,
): Promise<Appearances> {
  const rows = await ctx.db
    .selectFrom('catalog_entries as e')
    .crossJoin('catalog_packages as c')
    .select(['c.id as package_id', 'c.name', 'c.arch', 'e.first_seen'])
    .whereRef('c.id', '=', 'e.package_id')
    .where('c.platform_id', '=', platform.id)
    .where('e.first_seen', '>=', sinceIso)
    .where('e.first_seen', '>', platform.first)
    .execute();
  const appeared: Appearances = new Map();
  for (const r of rows) {
    const a = appeared.get(r.package_id) ?? { name: r.name, arch: r.arch, times: [] };
    a.times.push(r.first_seen);
    appeared.set(r.package_id, a);
  }
  return appeared;
}

async function seenVersions(ctx: ReadContext, packageIds: number[]): Promise<Map<number, SeenVersion[]>> {
  const rows = await ctx.db
    .selectFrom('catalog_entries')
    .select(['package_id', 'version', 'first_seen', 'withdrawn_at'])
    .where('package_id', 'in', packageIds)
    .execute();
  const byPackage = new Map<number, SeenVersion[]>();
  for (const v of rows) {
    const list = byPackage.get(v.package_id) ?? [];
    list.push({ version: v.version, firstSeen: v.first_seen, withdrawnAt: v.withdrawn_at });
    byPackage.set(v.package_id, list);
  }
  return byPackage;
}
