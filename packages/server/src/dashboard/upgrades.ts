import type { UpgradeEvent, UpgradesReport, UpgradeWindow } from '@sysattest/dashboard';
import type { Store } from '../store/index.js';

/** Length of each window and of the chart's buckets in it. */
export const WINDOWS: Record<UpgradeWindow, { seconds: number; bucketSeconds: number }> = {
  '24h': { seconds: 86_400, bucketSeconds: 3_600 },
  '7d': { seconds: 7 * 86_400, bucketSeconds: 6 * 3_600 },
  '30d': { seconds: 30 * 86_400, bucketSeconds: 86_400 },
};

/** An upgrades report with every event (the page shows a slice of them). */
export type FullUpgradesReport = Omit<UpgradesReport, 'events'> & { events: UpgradeEvent[] };

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

/**
 * The upgrades of a window, by platform or all. The events only change when a snapshot arrives
 * (or the window moves on): computed once per (window, platform, newest snapshot id, window end)
 * for the last dozen such keys, then paged from memory.
 */
export class UpgradesReports {
  readonly #reports = new Map<string, FullUpgradesReport>();
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  async report(window: UpgradeWindow, platform: string | undefined): Promise<FullUpgradesReport> {
    const { seconds, bucketSeconds } = WINDOWS[window];
    const now = this.#store.now();
    // Buckets end on a whole bucket so that the chart does not shift with every reload.
    const until = new Date(Math.ceil(now.getTime() / (bucketSeconds * 1000)) * bucketSeconds * 1000);
    const since = new Date(until.getTime() - seconds * 1000);
    const snapshot = await this.#store.newestSnapshotId();
    const key = `${window}\u0000${platform ?? ''}\u0000${snapshot}\u0000${until.toISOString()}`;
    let report = this.#reports.get(key);
    if (report === undefined) {
      const { platforms, upgrades } = await this.#store.packageUpgrades(platform, since);
      report = {
        since: since.toISOString(),
        until: until.toISOString(),
        bucketSeconds,
        platforms,
        buckets: bucketize(upgrades, platforms, since, until, bucketSeconds),
        events: upgrades,
      };
      this.#reports.set(key, report);
      if (this.#reports.size > 12) this.#reports.delete(this.#reports.keys().next().value as string);
    }
    return report;
  }
}
