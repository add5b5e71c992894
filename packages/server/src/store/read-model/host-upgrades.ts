import type { HostBehind, PackageVersionRef, Page, PageRequest } from '@sysattest/dashboard';
import { chunks, reading } from '../context.js';
import { staleBefore } from './host-counts.js';
import { byText, count, versionOrderFor, type ReadContext } from './read-context.js';

/** An upgrade of a package's newest version on a platform (read-model/upgrades.ts's events). */
export interface UpgradeRef {
  platform: string;
  name: string;
  arch: string;
  /** The new version: hosts running anything older are behind. */
  to: string;
}

const key = (platform: string, name: string, arch: string): string => `${platform}\u0000${name}\u0000${arch}`;

/**
 * For each upgrade (in the same order), how many hosts on its platform have the package, by their
 * latest report, at a version older than `to` by the distribution's ordering. One grouped query
 * per 500 package names over host_packages_version_idx (name, version, host): a few rows per
 * version actually installed, compared here, since SQL cannot order dpkg or rpm versions.
 */
export async function hostsBehindCounts(
  ctx: ReadContext,
  upgrades: readonly UpgradeRef[],
): Promise<number[]> {
  if (upgrades.length === 0) return [];
  const platforms = [...new Set(upgrades.map((u) => u.platform))];
  const installed = new Map<string, { version: string; hosts: number }[]>();
  await reading(async () => {
    for (const names of chunks([...new Set(upgrades.map((u) => u.name))], 500)) {
      const rows = await ctx.db
        .selectFrom('host_packages as hp')
        .innerJoin('hosts as h', 'h.id', 'hp.host_id')
        .select((eb) => ['h.platform', 'hp.name', 'hp.arch', 'hp.version', eb.fn.countAll().as('hosts')])
        .where('hp.name', 'in', names)
        .where('h.platform', 'in', platforms)
        .groupBy(['h.platform', 'hp.name', 'hp.arch', 'hp.version'])
        .execute();
      for (const r of rows) {
        const k = key(r.platform, r.name, r.arch);
        const list = installed.get(k) ?? [];
        list.push({ version: r.version, hosts: count(r.hosts) });
        installed.set(k, list);
      }
    }
  });
  return upgrades.map((u) => {
    const compare = versionOrderFor(u.platform);
    return (installed.get(key(u.platform, u.name, u.arch)) ?? [])
      .filter((v) => compare(v.version, u.to) < 0)
      .reduce((s, v) => s + v.hosts, 0);
  });
}

/**
 * The hosts on `ref.platform` whose latest report has `ref.name` (`ref.arch`) older than
 * `ref.version`, by host name, with its verdict now (`stale` decided as read-model/hosts.ts does).
 * Reads one row per host that has the package (host_packages_version_idx), so a page costs what
 * the fleet's size does, not what its packages do.
 */
export async function hostsBehind(
  ctx: ReadContext,
  ref: PackageVersionRef,
  page: PageRequest,
): Promise<Page<HostBehind>> {
  const cutoff = staleBefore(ctx);
  const rows = await reading(() =>
    ctx.db
      .selectFrom('host_packages as hp')
      .innerJoin('hosts as h', 'h.id', 'hp.host_id')
      .select(['h.name', 'hp.version', 'h.last_verdict', 'h.last_report_at'])
      .where('hp.name', '=', ref.name)
      .where('hp.arch', '=', ref.arch)
      .where('h.platform', '=', ref.platform)
      .execute(),
  );
  const compare = versionOrderFor(ref.platform);
  const behind = rows
    .filter((r) => compare(r.version, ref.version) < 0)
    .sort((a, b) => byText(a.name, b.name) || byText(a.version, b.version));
  return {
    items: behind.slice(page.offset, page.offset + page.limit).map((r) => ({
      host: r.name,
      version: r.version,
      verdict: r.last_report_at < cutoff ? 'stale' : (r.last_verdict as HostBehind['verdict']),
      lastReportAt: r.last_report_at,
    })),
    offset: page.offset,
    limit: page.limit,
    total: behind.length,
    hasMore: page.offset + page.limit < behind.length,
  };
}
