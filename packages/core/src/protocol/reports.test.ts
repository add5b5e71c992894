import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  FINDING_CLASSES,
  REPORT_LIMITS,
  exitCodeOf,
  hostListQuerySchema,
  hostNameField,
  protocolJsonSchema,
  reportInconsistency,
  reportUploadSchema,
  verdictOfExitCode,
  verdictOfReport,
  verifyReportSchema,
  type Finding,
  type VerifyReport,
} from './index.js';

function finding(over: Partial<Finding> = {}): Finding {
  return { class: 'modified', package: 'p', arch: 'amd64', path: '/x', detail: 'd', failure: true, ...over };
}

/** A consistent report: its summary counted from its lists. */
function report(findings: Finding[] = [], over: Partial<VerifyReport> = {}): VerifyReport {
  const packages = over.packages ?? [{ name: 'p', version: '1', arch: 'amd64', status: 'verified' as const }];
  const byClass = Object.fromEntries(FINDING_CLASSES.map((c) => [c, 0])) as Record<string, number>;
  for (const f of findings) byClass[f.class] = (byClass[f.class] ?? 0) + 1;
  return {
    schema: 'sysattest.verify-report',
    schemaVersion: 1,
    root: '/',
    platform: 'debian/bookworm/amd64',
    summary: {
      packages: packages.length,
      verified: packages.filter((p) => p.status === 'verified').length,
      unverified: packages.filter((p) => p.status === 'unverified').length,
      unverifiedByReason: {},
      badSignature: packages.filter((p) => p.status === 'bad-signature').length,
      filesChecked: 3,
      failures: findings.filter((f) => f.failure).length,
      findingsByClass: byClass as VerifyReport['summary']['findingsByClass'],
      durationMs: 12,
    },
    findings,
    packages,
    catalogs: [],
    notes: [],
    ...over,
  };
}

describe('verify report protocol', () => {
  it('a verdict is the worst exit bit: trust over findings over incomplete', () => {
    assert.equal(verdictOfReport(report()), 'clean');
    assert.equal(verdictOfReport(report([finding({ class: 'config-modified', failure: false })])), 'clean');
    assert.equal(verdictOfReport(report([finding()])), 'findings');
    const unverified = report([], {
      packages: [{ name: 'p', version: '1', arch: 'amd64', status: 'unverified', reason: 'not-in-catalog' }],
    });
    assert.equal(verdictOfReport(unverified), 'incomplete');
    assert.equal(
      verdictOfReport(report([finding(), finding({ class: 'bad-signature', path: undefined })])),
      'trust-failure',
    );
    const refused = report([], {
      catalogs: [
        { platform: 'debian/bookworm/amd64', digest: 'a'.repeat(64), status: 'refused', reason: 'x' },
      ],
    });
    assert.equal(exitCodeOf(refused), 4);
    assert.equal(verdictOfExitCode(1 | 2), 'findings');
    assert.equal(verdictOfExitCode(2), 'incomplete');
  });

  it('refuses what is out of bounds or not a report', () => {
    assert.ok(verifyReportSchema.safeParse(report([finding()])).success);
    const tooLong = report([finding({ detail: 'x'.repeat(REPORT_LIMITS.textLength + 1) })]);
    assert.ok(!verifyReportSchema.safeParse(tooLong).success);
    assert.ok(!verifyReportSchema.safeParse({ ...report(), schemaVersion: 2 }).success);
    assert.ok(!verifyReportSchema.safeParse({ ...report(), schema: 'other' }).success);
    const unknownClass = report([{ ...finding(), class: 'fine' as Finding['class'] }]);
    assert.ok(!verifyReportSchema.safeParse(unknownClass).success);
    const missingClassCount = report();
    delete (missingClassCount.summary.findingsByClass as Partial<Record<string, number>>).modified;
    assert.ok(!verifyReportSchema.safeParse(missingClassCount).success);
  });

  it('the JSON Schema the server validates with keeps the bounds and the exhaustive counts', () => {
    const upload = protocolJsonSchema(reportUploadSchema) as {
      additionalProperties: boolean;
      required: string[];
      properties: {
        report: {
          properties: {
            findings: { maxItems: number };
            packages: { maxItems: number };
            summary: { properties: { findingsByClass: { required: string[] } } };
          };
        };
      };
    };
    assert.equal(upload.additionalProperties, false);
    assert.deepEqual(upload.required, ['reportId', 'hostname', 'report']);
    assert.equal(upload.properties.report.properties.findings.maxItems, 250_000);
    assert.equal(upload.properties.report.properties.packages.maxItems, 100_000);
    assert.deepEqual(upload.properties.report.properties.summary.properties.findingsByClass.required, [
      ...FINDING_CLASSES,
    ]);
  });

  it('names a summary that disagrees with its own lists', () => {
    assert.equal(reportInconsistency(report([finding()])), undefined);
    const r = report([finding()]);
    r.summary.failures = 0;
    assert.match(reportInconsistency(r) ?? '', /failures/);
    const hidden = report([finding()]);
    hidden.summary.findingsByClass.modified = 0;
    hidden.summary.findingsByClass.missing = 1;
    assert.match(reportInconsistency(hidden) ?? '', /findingsByClass\.modified is 0 but 1/);
    const counted = report();
    counted.summary.packages = 5;
    assert.match(reportInconsistency(counted) ?? '', /summary\.packages/);
  });

  it('a host name is a DNS name, never a path', () => {
    for (const ok of ['web-01', 'db.example.org', 'A1']) assert.ok(hostNameField().safeParse(ok).success, ok);
    for (const bad of ['', '../x', 'a/b', '-x', '.x', 'a b', 'x'.repeat(254)]) {
      assert.ok(!hostNameField().safeParse(bad).success, bad);
    }
    assert.ok(!hostListQuerySchema.safeParse({ verdict: 'dirty' }).success);
    assert.ok(hostListQuerySchema.safeParse({ verdict: 'stale', limit: '50' }).success);
  });
});
