import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Finding } from './compare.js';
import { countByClass, exitCodeOf, renderText, sortFindings, type VerifyReport } from './report.js';

function finding(over: Partial<Finding>): Finding {
  return { class: 'modified', package: 'p', arch: 'amd64', path: '/x', detail: 'd', failure: true, ...over };
}

function report(findings: Finding[], over: Partial<VerifyReport['summary']> = {}): VerifyReport {
  const sorted = sortFindings(findings);
  return {
    schema: 'sysattest.verify-report',
    schemaVersion: 1,
    root: '/',
    platform: 'debian/bookworm/amd64',
    summary: {
      packages: 3,
      verified: 3,
      unverified: 0,
      badSignature: 0,
      filesChecked: 10,
      failures: sorted.filter((f) => f.failure).length,
      findingsByClass: countByClass(sorted),
      durationMs: 1234,
      ...over,
    },
    findings: sorted,
    packages: [],
    catalogs: [],
    notes: [],
  };
}

describe('report', () => {
  it('sorts findings by class order, then package and path', () => {
    const sorted = sortFindings([
      finding({ class: 'config-modified', path: '/etc/a', failure: false }),
      finding({ class: 'modified', path: '/b' }),
      finding({ class: 'modified', path: '/a' }),
      finding({ class: 'bad-signature', path: undefined }),
    ]);
    assert.deepEqual(
      sorted.map((f) => `${f.class} ${f.path ?? ''}`),
      ['bad-signature ', 'modified /a', 'modified /b', 'config-modified /etc/a'],
    );
  });

  it('counts every class, zeros included', () => {
    const c = countByClass([finding({}), finding({ class: 'missing' })]);
    assert.equal(c.modified, 1);
    assert.equal(c.missing, 1);
    assert.equal(c['bad-signature'], 0);
  });

  it('exit codes: 0 clean, bit 1 integrity, bit 2 coverage, bit 4 trust', () => {
    assert.equal(exitCodeOf(report([])), 0);
    assert.equal(exitCodeOf(report([finding({ class: 'config-modified', failure: false })])), 0);
    assert.equal(exitCodeOf(report([finding({ class: 'config-modified', failure: true })])), 1);
    assert.equal(exitCodeOf(report([finding({})])), 1);
    assert.equal(exitCodeOf(report([], { unverified: 1 })), 2);
    assert.equal(exitCodeOf(report([], { badSignature: 1 })), 4);
  });

  it('text: summary first, then findings grouped by class; no colour unless asked', () => {
    const text = renderText(
      report([
        finding({ detail: '/x content differs' }),
        finding({ class: 'missing', detail: '/y is missing' }),
      ]),
    );
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^sysattest verify: \/ \(debian\/bookworm\/amd64\)/);
    assert.match(text, /findings: modified 1, missing 1 \(2 failures\)/);
    assert.ok(text.indexOf('Modified content (1)') < text.indexOf('/x content differs'));
    assert.ok(text.indexOf('/x content differs') < text.indexOf('Missing (1)'));
    assert.ok(!text.includes('\u001b'));
    assert.ok(renderText(report([finding({})]), { colour: true }).includes('\u001b['));
  });
});
