/**
 * The hosts' gauges for /metrics, kept apart from metrics.ts: `sysattest_hosts{verdict}`, every
 * verdict present (stale included, decided at the scrape by the store's staleAfter).
 */
import { HOST_VERDICTS, type HostVerdict } from '@sysattest/core';
import type { Gauge } from './metrics.js';

export function hostFamilies(counts: Readonly<Record<HostVerdict, number>>): Gauge[] {
  return [
    {
      name: 'sysattest_hosts',
      help: 'Hosts by the verdict of their latest report (their own claim); stale: no report for longer than staleAfter.',
      samples: HOST_VERDICTS.map((verdict) => ({ labels: { verdict }, value: counts[verdict] })),
    },
  ];
}
