import { HOST_VERDICTS, type HostVerdict, type ReportVerdict } from '@sysattest/core';
import { reading } from '../context.js';
import { byText, count, type ReadContext } from './read-context.js';

/**
 * The dashboard's figures over the hosts table (hosts.ts has the lists): counts by verdict within
 * a platform, the platforms hosts report, and hosts per platform for the Fleet page. Each is one
 * grouped query over an index of `hosts` (platform, name) or (last_verdict, name).
 */

/** The time before which a latest report makes its host stale (read-model/hosts.ts's rule). */
export function staleBefore(read: ReadContext): string {
  return new Date(read.now().getTime() - read.hosts.staleAfterSeconds * 1000).toISOString();
}

/** Hosts per verdict now, on one platform or all (every verdict present, 0 included). */
export async function hostVerdictCounts(
  read: ReadContext,
  platform: string | undefined,
): Promise<Record<HostVerdict, number>> {
  const cutoff = staleBefore(read);
  const counts = Object.fromEntries(HOST_VERDICTS.map((v) => [v, 0])) as Record<HostVerdict, number>;
  const rows = await reading(() =>
    read.db
      .selectFrom('hosts')
      .select((eb) => [
        'last_verdict',
        eb.fn.countAll().as('n'),
        eb.fn.sum<number>(eb.case().when('last_report_at', '<', cutoff).then(1).else(0).end()).as('stale'),
      ])
      .$if(platform !== undefined, (q) => q.where('platform', '=', platform as string))
      .groupBy('last_verdict')
      .execute(),
  );
  for (const r of rows) {
    const stale = count(r.stale);
    counts[r.last_verdict as ReportVerdict] += count(r.n) - stale;
    counts.stale += stale;
  }
  return counts;
}

/** Hosts per platform their latest report names, by platform. */
export async function hostsPerPlatform(read: ReadContext): Promise<Map<string, number>> {
  const rows = await reading(() =>
    read.db
      .selectFrom('hosts')
      .select((eb) => ['platform', eb.fn.countAll().as('n')])
      .groupBy('platform')
      .execute(),
  );
  return new Map(rows.sort((a, b) => byText(a.platform, b.platform)).map((r) => [r.platform, count(r.n)]));
}
