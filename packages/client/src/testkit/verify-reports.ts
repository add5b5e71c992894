/**
 * Test support (not part of the client's API): small verify reports that meet the protocol's
 * schema and whose summary agrees with their lists, as `sysattest verify` writes them, and their
 * upload bodies.
 */
import { randomUUID } from 'node:crypto';
import type { ReportUpload } from '@sysattest/core';
import { countByClass, type VerifyReport } from '../verify/report.js';

/** A clean report of `packages` verified packages (`filler`: characters of notes, to make it big). */
export function cleanReport(packages = 3, filler = 0): VerifyReport {
  return {
    schema: 'sysattest.verify-report',
    schemaVersion: 1,
    root: '/',
    platform: 'debian/bookworm/amd64',
    summary: {
      packages,
      verified: packages,
      unverified: 0,
      unverifiedByReason: {},
      badSignature: 0,
      filesChecked: packages * 10,
      failures: 0,
      findingsByClass: countByClass([]),
      durationMs: 12,
    },
    findings: [],
    packages: Array.from({ length: packages }, (_, i) => ({
      name: `pkg${i}`,
      version: '1.0-1',
      arch: 'amd64',
      status: 'verified' as const,
    })),
    catalogs: [],
    notes: filler > 0 ? Array.from({ length: Math.ceil(filler / 8000) }, () => 'x'.repeat(8000)) : [],
  };
}

/** Its upload body, with a fresh reportId. */
export function uploadOf(report: VerifyReport = cleanReport()): ReportUpload {
  return { reportId: randomUUID(), hostname: 'test-host', report };
}
