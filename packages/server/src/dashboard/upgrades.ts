import type { UpgradeEvent, UpgradeWindow } from '@sysattest/dashboard';

/** Length of each window and of the chart's buckets in it. */
export const WINDOWS: Record<UpgradeWindow, { seconds: number; bucketSeconds: number }> = {
  '24h': { seconds: 86_400, bucketSeconds: 3_600 },
  '7d': { seconds: 7 * 86_400, bucketSeconds: 6 * 3_600 },
  '30d': { seconds: 30 * 86_400, bucketSeconds: 86_400 },
};

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

/** Counts of events per bucket and platform, buckets aligned on `since`. */
export function bucketize(
  events: readonly UpgradeEvent[],
  platforms: readonly string[],
  since: Date,
  until: Date,
  bucketSeconds: number,
): { start: string; counts: Record<string, number> }[] {
  const n = Math.max(1, Math.ceil((until.getTime() - since.getTime()) / (bucketSeconds * 1000)));
  const buckets = Array.from({ length: n }, (_, i) => ({
    start: new Date(since.getTime() + i * bucketSeconds * 1000).toISOString(),
    counts: Object.fromEntries(platforms.map((p) => [p, 0])) as Record<string, number>,
  }));
  for (const e of events) {
    const i = Math.floor((Date.parse(e.at) - since.getTime()) / (bucketSeconds * 1000));
    const b = buckets[Math.min(n - 1, Math.max(0, i))];
    if (b !== undefined && e.platform in b.counts) b.counts[e.platform] = (b.counts[e.platform] ?? 0) + 1;
  }
  return buckets;
}
