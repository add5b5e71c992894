import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { reportInconsistency, verifyReportSchema } from '@sysattest/core';
import { HOSTILE_FINDING_PATH, simulatedReport, type FleetPackage } from '../testkit/simulated-fleet.js';
import { hostReportView } from './host-report.js';

const PLATFORM = 'debian/bookworm/amd64';
const packages: FleetPackage[] = Array.from({ length: 20 }, (_, i) => ({
  name: `pkg${String(i).padStart(2, '0')}`,
  arch: 'amd64',
  version: `1.${i}-1`,
  newestVersion: `1.${i}-1`,
  olderVersion: `1.${i}-0`,
}));
const stored = { reportId: '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10', receivedAt: '2026-12-06T09:00:00.000Z' };

describe('the host page view of a report', () => {
  it('simulated reports are reports the server accepts', () => {
    for (const verdict of ['clean', 'findings', 'incomplete', 'trust-failure'] as const) {
      const report = verifyReportSchema.parse(
        simulatedReport({ platform: PLATFORM, packages, verdict, behindEvery: 4 }),
      );
      assert.equal(reportInconsistency(report), undefined, verdict);
    }
  });

  it('groups findings by class in the client’s order and caps each class, keeping the totals', () => {
    const report = simulatedReport({
      platform: PLATFORM,
      packages,
      verdict: 'findings',
      modified: 7,
      hostile: true,
    });
    const view = hostReportView(stored, report, { findingsPerClass: 5, packages: 500, notes: 50 });
    assert.deepEqual(
      view.findings.map((g) => [g.class, g.total, g.items.length, g.failures]),
      [
        ['modified', 7, 5, 7],
        ['unowned', 1, 1, 1],
      ],
    );
    assert.ok(view.findings[0]?.items.some((f) => f.path === HOSTILE_FINDING_PATH));
    assert.equal(view.reportId, stored.reportId);
  });

  it('lists unverified and bad-signature packages with their reasons, not as finding groups', () => {
    const incomplete = hostReportView(
      stored,
      simulatedReport({ platform: PLATFORM, packages, verdict: 'incomplete' }),
    );
    assert.deepEqual(incomplete.findings, []);
    assert.deepEqual(incomplete.unverified, {
      total: 1,
      items: [
        {
          name: 'pkg19',
          version: '1.19-1',
          arch: 'amd64',
          status: 'unverified',
          reason: 'foreign-origin',
          origin: 'Docker',
          newestVersion: '1.19-1',
        },
      ],
    });
    const trust = hostReportView(
      stored,
      simulatedReport({ platform: PLATFORM, packages, verdict: 'trust-failure' }),
    );
    assert.equal(trust.unverified.items[0]?.status, 'bad-signature');
    assert.deepEqual(
      trust.findings.map((g) => g.class),
      ['bad-signature'],
    );
  });

  it('lists outdated packages as the store counts them: signed newest, or the server’s claim, marked', () => {
    const report = simulatedReport({ platform: PLATFORM, packages, verdict: 'clean', behindEvery: 10 });
    const claimed = report.packages[1];
    assert.ok(claimed !== undefined);
    delete claimed.newestVersion;
    claimed.newestVersionClaimed = '9.9-1';
    const view = hostReportView(stored, report, { findingsPerClass: 200, packages: 2, notes: 50 });
    assert.equal(view.outdated.total, 3, 'pkg00 and pkg10 behind, pkg01 by the claim');
    assert.deepEqual(
      view.outdated.items.map((p) => [p.name, p.version, p.newestVersion, p.newestClaimed === true]),
      [
        ['pkg00', '1.0-0', '1.0-1', false],
        ['pkg01', '1.1-1', '9.9-1', true],
      ],
    );
  });
});
