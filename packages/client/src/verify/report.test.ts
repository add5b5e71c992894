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
      unverifiedByReason: {},
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
  it('ends by saying why packages are unverified, by reason, with what to do', () => {
    const r = report([], { unverified: 4, unverifiedByReason: { 'not-in-catalog': 3, 'foreign-origin': 1 } });
    r.packages = [
      { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64', status: 'unverified', reason: 'not-in-catalog' },
      { name: 'dpkg', version: '1.21.22', arch: 'amd64', status: 'unverified', reason: 'not-in-catalog' },
      {
        name: 'curl',
        version: '7.88.1-10+deb12u5',
        arch: 'amd64',
        status: 'unverified',
        reason: 'not-in-catalog',
      },
      {
        name: 'sdk',
        version: '1.0',
        arch: 'amd64',
        status: 'unverified',
        reason: 'foreign-origin',
        origin: 'Vendor',
      },
      { name: 'coreutils', version: '9.1-1', arch: 'amd64', status: 'verified' },
    ];
    const tail = renderText(r).trimEnd().split('\n').slice(-5);
    assert.equal(tail[0], 'Why 4 packages are unverified');
    assert.match(
      tail[1] ?? '',
      /^ {2}3 versions the server's catalog does not offer .*: bash 5\.2\.15-2\+b2, dpkg 1\.21\.22, curl/,
    );
    assert.match(tail[2] ?? '', /→ .*--sources FILE \(a "snapshot" source/);
    assert.match(
      tail[3] ?? '',
      /^ {2}1 package from repositories the server does not track \(Vendor\): sdk 1\.0$/,
    );
    assert.match(tail[4] ?? '', /"repository" source/);
    assert.doesNotMatch(renderText(report([])), /unverified$/m);
  });

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
