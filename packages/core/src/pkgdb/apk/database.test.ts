/**
 * The apk reader on real installed databases (Alpine systems, from the shared fixtures), checked
 * against what awk counts in the same files, and on damaged ones.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { PackageDatabaseError } from '../../errors.js';
import { createRng, testSeed } from '../../testkit/versions.js';
import { fixturePath, rootWithFixture } from '../../testkit/pkgdb.js';
import { decodeApkChecksum, parseApkInstalled, readApkDatabase } from './index.js';

/** Per package, from awk over the raw file: name, version, arch, origin, dirs, files, checksums. */
function awkSummary(file: string): string[] {
  const script = `
    /^P:/ { p = substr($0, 3) } /^V:/ { v = substr($0, 3) } /^A:/ { a = substr($0, 3) } /^o:/ { o = substr($0, 3) }
    /^F:/ { f++ } /^R:/ { r++ } /^Z:/ { z++ }
    /^$/ { if (p != "") print p "|" v "|" a "|" o "|" f "|" r "|" z; p = ""; v = ""; a = ""; o = ""; f = 0; r = 0; z = 0 }
    END { if (p != "") print p "|" v "|" a "|" o "|" f "|" r "|" z }`;
  const out = spawnSync('awk', [script, file], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.split('\n').filter((l) => l !== '');
}

describe('apk installed database reader', () => {
  for (const [rel, count] of [
    ['apk/installed-14-packages', 14],
    ['apk/installed-baselayout', 1],
  ] as const) {
    it(`${rel}: every package, directory, file and checksum`, async (t) => {
      const { root, cleanup } = rootWithFixture(rel, '/lib/apk/db/installed');
      try {
        const started = performance.now();
        const db = await readApkDatabase(root);
        t.diagnostic(
          `${db.packages.length} packages, ${db.packages.reduce((n, p) => n + p.files.length, 0)} paths in ${(performance.now() - started).toFixed(1)} ms`,
        );
        assert.equal(db.packages.length, count);
        const expected = awkSummary(fixturePath(rel));
        const summary = db.packages.map((p) => {
          const dirCount = p.files.filter((f) => isDirEntry(f.path, rel)).length;
          const sums = p.files.filter((f) => f.digest).length;
          return `${p.name}|${p.version}|${p.architecture}|${p.origin ?? ''}|${dirCount}|${p.files.length - dirCount}|${sums}`;
        });
        assert.deepEqual(summary, expected);
        for (const p of db.packages) {
          assert.equal(p.source.name, p.origin ?? p.name);
          assert.equal(p.source.version, p.version);
          for (const f of p.files) {
            assert.ok(f.path.startsWith('/') && !f.path.includes('//'), f.path);
            if (f.digest) {
              assert.equal(f.digest.algorithm, 'sha1');
              assert.match(f.digest.hex, /^[0-9a-f]{40}$/);
            }
          }
        }
      } finally {
        cleanup();
      }
    });
  }

  it('decodes owners, modes and checksums as recorded (a:, M:, Z:)', async () => {
    const { root, cleanup } = rootWithFixture('apk/installed-14-packages', '/lib/apk/db/installed');
    try {
      fs.mkdirSync(join(root, 'etc/apk'), { recursive: true });
      fs.writeFileSync(join(root, 'etc/apk/arch'), 'x86_64\n');
      const db = await readApkDatabase(root);
      assert.equal(db.nativeArch(), 'x86_64');
      const base = db.find('alpine-baselayout-data');
      assert.equal(base?.version, '3.2.0-r22');
      assert.equal(base?.origin, 'alpine-baselayout');
      const shadow = base?.files.find((f) => f.path === '/etc/shadow');
      // a:0:42:640 then Z:Q1ltrPIAW2zHeDiajsex2Bdmq3uqA=
      assert.deepEqual(
        { owner: shadow?.owner, group: shadow?.group, mode: shadow?.mode },
        { owner: '0', group: '42', mode: 0o640 },
      );
      assert.equal(
        Buffer.from(shadow?.digest?.hex ?? '', 'hex').toString('base64'),
        'ltrPIAW2zHeDiajsex2Bdmq3uqA=',
      );
      const fstab = base?.files.find((f) => f.path === '/etc/fstab');
      assert.equal(fstab?.mode, undefined, 'no a: line: apk defaults, nothing recorded');
      const withM = db.packages
        .flatMap((p) => p.files)
        .filter((f) => f.mode !== undefined && f.digest === undefined);
      assert.ok(withM.length > 0, 'some directories have M: lines');
      assert.ok(db.owners('/etc').length >= 1);
    } finally {
      cleanup();
    }
  });

  it('the corrupt fixture is refused as a whole, naming the line (no package is silently dropped)', async () => {
    const { root, cleanup } = rootWithFixture('apk/installed-corrupt', '/lib/apk/db/installed');
    try {
      await assert.rejects(readApkDatabase(root), (e: unknown) => {
        assert.ok(e instanceof PackageDatabaseError);
        assert.equal(e.code, 'DATABASE_CORRUPT');
        assert.equal(e.line, 1);
        assert.match(e.message, /not a "X:value" line: "this is a corrupt db" \(.*installed:1\)$/);
        return true;
      });
    } finally {
      cleanup();
    }
  });

  it('refuses misplaced and malformed fields with their line', () => {
    const cases: [string, RegExp, number][] = [
      ['P:a\nV:1.0-r0\nZ:Q1ltrPIAW2zHeDiajsex2Bdmq3uqA=\n', /Z: \(file checksum\) before any R:/, 3],
      ['P:a\nV:1.0-r0\nR:x\n', /R: \(file\) before any F:/, 3],
      ['P:a\nV:1.0-r0\nF:etc\nR:x\nZ:Q1short\n', /invalid file checksum/, 5],
      ['P:a\nV:1.0-r0\nF:etc\nR:x\na:0:0:999\n', /invalid file owner\/mode/, 5],
      ['P:a\nV:1.0-1\n', /invalid version "1.0-1"/, 1],
      ['V:1.0-r0\nA:x86_64\n', /no P: \(name\)/, 1],
      ['P:a\n', /has no V:/, 1],
      ['P:a\nV:1.0-r0\nF:../etc\n', /invalid directory/, 3],
      ['P:a\nV:1.0-r0\nF:/etc\n', /invalid directory/, 3],
      ['P:a\nV:1.0-r0\nF:etc\nR:../passwd\n', /invalid file name/, 4],
      ['P:a\nV:1.0-r0\n\nP:b\nV:2\nxyz\n', /not a "X:value" line: "xyz"/, 6],
    ];
    for (const [text, message, line] of cases) {
      assert.throws(
        () => parseApkInstalled(text, '/r/lib/apk/db/installed'),
        (e: unknown) => {
          assert.ok(e instanceof PackageDatabaseError, String(e));
          assert.equal(e.code, 'DATABASE_CORRUPT');
          assert.match(e.message, message);
          assert.equal(e.line, line, text);
          return true;
        },
      );
    }
    assert.throws(() => parseApkInstalled('P:a\nV:1\nT:' + 'x'.repeat(70_000) + '\n', 'f'), /longer than/);
  });

  it('random damage: every mutated database either parses or is a PackageDatabaseError', () => {
    const text = fs.readFileSync(fixturePath('apk/installed-14-packages'), 'utf8');
    const rng = createRng(testSeed());
    const alphabet = 'PVAoFRaMZ:\n/.0123456789-_=Q+ \u0000é';
    let refused = 0;
    for (let k = 0; k < 500; k++) {
      const chars = [...text];
      for (let n = 1 + rng.int(5); n > 0; n--) {
        const at = rng.int(chars.length);
        const r = rng.next();
        if (r < 0.4) chars[at] = rng.pick([...alphabet]);
        else if (r < 0.7) chars.splice(at, 1 + rng.int(20));
        else chars.splice(at, 0, rng.pick([...alphabet]));
      }
      try {
        const pkgs = parseApkInstalled(chars.join(''), 'installed');
        for (const p of pkgs)
          for (const f of p.files) assert.ok(f.path.startsWith('/') && !f.path.includes('/../'));
      } catch (e) {
        assert.ok(e instanceof PackageDatabaseError, String(e));
        assert.equal(typeof e.line, 'number');
        refused++;
      }
    }
    assert.ok(refused > 0);
  });

  it('no database is DATABASE_NOT_FOUND; a directory in its place is DATABASE_CORRUPT', async () => {
    const { root, cleanup } = rootWithFixture('apk/installed-baselayout', '/srv/x');
    try {
      await assert.rejects(readApkDatabase(root), { code: 'DATABASE_NOT_FOUND' });
      fs.mkdirSync(join(root, 'lib/apk/db/installed'), { recursive: true });
      await assert.rejects(readApkDatabase(root), { code: 'DATABASE_CORRUPT' });
    } finally {
      cleanup();
    }
  });

  it('checksum forms: Q1 (SHA-1), Q2 (SHA-256), 32 hex digits (MD5); anything else is refused', () => {
    const sha1 = Buffer.alloc(20, 0xab);
    const sha256 = Buffer.alloc(32, 0xcd);
    assert.deepEqual(decodeApkChecksum(`Q1${sha1.toString('base64')}`), {
      algorithm: 'sha1',
      hex: sha1.toString('hex'),
    });
    assert.deepEqual(decodeApkChecksum(`Q2${sha256.toString('base64')}`), {
      algorithm: 'sha256',
      hex: sha256.toString('hex'),
    });
    assert.deepEqual(decodeApkChecksum('D41D8CD98F00B204E9800998ECF8427E'), {
      algorithm: 'md5',
      hex: 'd41d8cd98f00b204e9800998ecf8427e',
    });
    for (const bad of [
      '',
      'Q1',
      'Q3AAAA',
      `Q1${sha256.toString('base64')}`,
      'Q1!!!!!!!!!!!!!!!!!!!!!!!!!!!',
      'abc',
    ]) {
      assert.equal(decodeApkChecksum(bad), undefined, bad);
    }
  });
});

/** A path that awk counted as an F: line: one that the raw file names in an F: line. */
const fLines = new Map<string, Set<string>>();
function isDirEntry(p: string, rel: string): boolean {
  let set = fLines.get(rel);
  if (set === undefined) {
    set = new Set(
      fs
        .readFileSync(fixturePath(rel), 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('F:'))
        .map((l) => `/${l.slice(2)}`),
    );
    fLines.set(rel, set);
  }
  return set.has(p);
}
