/**
 * The dnf and apk adapters' commands and parsers, on recorded outputs: the catalog parser reads
 * the output of the same query format run by the real `rpm` on the CBL-Mariner fixture database
 * (dnf's repoquery prints the same fields), and the APKINDEX parser reads an Alpine database of
 * the same record format. No registry is reachable here, so nothing is pulled or installed.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

import { apkAddArgv, parseApkIndex } from './apk/commands.js';
import { DNF_CATALOG_QF, dnfInstallArgv, parseDnfCatalog } from './dnf/commands.js';
import { parsePrimary, parseRepomd } from './dnf/repodata.js';
import { NotInstalledError, ownedFiles } from './owned.js';

/** The repository's real-world fixtures (test-fixtures/README.md), or SYSATTEST_FIXTURES. */
const FIXTURES =
  process.env['SYSATTEST_FIXTURES'] || fileURLToPath(new URL('../../../../test-fixtures', import.meta.url));

describe('dnf adapter', () => {
  it('installs exact NEVRAs, refusing anything that could be an option or a second argument', () => {
    assert.deepEqual(dnfInstallArgv([{ name: 'glibc', version: '2.34-2.cm2', arch: 'x86_64' }]).slice(-2), [
      '--',
      'glibc-2.34-2.cm2.x86_64',
    ]);
    assert.equal(
      dnfInstallArgv([{ name: 'kernel', version: '1:6.1-2.fc41', arch: 'x86_64' }]).at(-1),
      'kernel-1:6.1-2.fc41.x86_64',
    );
    for (const bad of [
      { name: '-y', version: '1-1', arch: 'x86_64' },
      { name: 'a b', version: '1-1', arch: 'x86_64' },
      { name: 'a', version: '1', arch: 'x86_64' },
      { name: 'a', version: '1-1', arch: 'x86 64' },
    ]) {
      assert.throws(() => dnfInstallArgv([bad]));
    }
  });

  it('parses the catalog query output recorded from rpm on the fixture database', () => {
    const dir = fs.mkdtempSync(join(tmpdir(), 'sysattest-dnf-'));
    try {
      fs.copyFileSync(join(FIXTURES, 'rpm/cbl-mariner-2.0/rpmdb.sqlite'), join(dir, 'rpmdb.sqlite'));
      const r = spawnSync('rpm', ['--dbpath', dir, '-qa', '--qf', DNF_CATALOG_QF], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const entries = parseDnfCatalog(r.stdout);
      assert.equal(entries.length, 129);
      assert.deepEqual(
        entries.find((e) => e.name === 'glibc'),
        { name: 'glibc', version: '2.34-2.cm2', arch: 'x86_64', source: 'glibc-2.34-2.cm2.src.rpm' },
      );
      assert.equal(parseDnfCatalog('a\t0\t1\t2\tnoarch\t(none)\n')[0]?.version, '1-2');
      assert.equal(parseDnfCatalog('a\t3\t1\t2\tnoarch\ta-1-2.src.rpm\n')[0]?.version, '3:1-2');
      assert.throws(() => parseDnfCatalog('a\t0\t1\n'), /line 1: expected 6/);
      assert.throws(() => parseDnfCatalog('\n-a\t0\t1\t2\tx86_64\t(none)\n'), /line 2: invalid package/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('apk adapter', () => {
  it('installs exact versions as name=version after --', () => {
    assert.deepEqual(apkAddArgv([{ name: 'musl', version: '1.2.5-r0' }]), [
      'apk',
      'add',
      '--no-cache',
      '--',
      'musl=1.2.5-r0',
    ]);
    assert.throws(() => apkAddArgv([{ name: '--allow-untrusted', version: '1-r0' }]));
    assert.throws(() => apkAddArgv([{ name: 'musl', version: '1.2.5-1' }]), /invalid apk version/);
  });

  it('parses index records (recorded Alpine database of the same format)', () => {
    const file = join(FIXTURES, 'apk/installed-14-packages');
    const entries = parseApkIndex(fs.readFileSync(file, 'utf8'), file);
    assert.equal(entries.length, 14);
    assert.deepEqual(entries[0], {
      name: 'alpine-baselayout-data',
      version: '3.2.0-r22',
      arch: 'x86_64',
      origin: 'alpine-baselayout',
    });
  });
});

describe('owned files after an install (read through the mounted root)', () => {
  const rootWith = (rel: string, inRoot: string): string => {
    const root = fs.mkdtempSync(join(tmpdir(), 'sysattest-owned-'));
    fs.mkdirSync(join(root, inRoot, '..'), { recursive: true });
    fs.copyFileSync(join(FIXTURES, rel), join(root, inRoot));
    return root;
  };

  it('rpm: the requested NEVRA with rpm digests, or a clear error', async () => {
    const root = rootWith('rpm/cbl-mariner-2.0/rpmdb.sqlite', 'var/lib/rpm/rpmdb.sqlite');
    try {
      const [glibc] = await ownedFiles(root, 'rpm', [
        { name: 'glibc', version: '2.34-2.cm2', arch: 'x86_64' },
      ]);
      assert.equal(glibc?.name, 'glibc');
      const ldso = glibc?.files.find((f) => f.digest !== undefined);
      assert.equal(ldso?.digest?.algorithm, 'sha256');
      await assert.rejects(
        ownedFiles(root, 'rpm', [{ name: 'glibc', version: '2.35-1.cm2', arch: 'x86_64' }]),
        (e: unknown) =>
          e instanceof NotInstalledError &&
          /glibc 2\.35-1\.cm2\.x86_64 is not installed .*installed: 2\.34-2\.cm2\.x86_64/.test(e.message),
      );
      await assert.rejects(
        ownedFiles(root, 'rpm', [{ name: 'nosuch', version: '1-1' }]),
        /no version of it is/,
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('apk: the requested version with Z: checksums', async () => {
    const root = rootWith('apk/installed-14-packages', 'lib/apk/db/installed');
    try {
      const [base] = await ownedFiles(root, 'apk', [
        { name: 'alpine-baselayout-data', version: '3.2.0-r22' },
      ]);
      assert.equal(base?.files.find((f) => f.path === '/etc/fstab')?.digest?.algorithm, 'sha1');
      await assert.rejects(
        ownedFiles(root, 'apk', [{ name: 'alpine-baselayout-data', version: '3.2.0-r23' }]),
        NotInstalledError,
      );
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('dnf repodata parsing (hostile and old metadata)', () => {
  const pkg = (fields: string): string => `<package type="rpm">${fields}</package>`;
  const good =
    '<name>a&amp;b</name><arch>x86_64</arch><version epoch="0" ver="1.0" rel="1"/>' +
    `<checksum type="sha256" pkgid="YES">${'a'.repeat(64)}</checksum><size package="42" installed="1"/>` +
    '<location href="Packages/a/a-1.0-1.x86_64.rpm"/><format><rpm:sourcerpm>a-1.0-1.src.rpm</rpm:sourcerpm></format>';

  it('keeps the platform architecture and noarch, and leaves out what it cannot vouch for', () => {
    const xml = [
      pkg(good.replace('a&amp;b', 'ab')),
      pkg(good.replace('x86_64</arch>', 'i686</arch>')),
      pkg(
        good
          .replace('a&amp;b', 'c')
          .replace('type="sha256" pkgid="YES">' + 'a'.repeat(64), 'type="sha" pkgid="YES">' + 'b'.repeat(40)),
      ),
      pkg(good), // `a&b` is not a package name
    ].join('\n');
    const { packages, warnings } = parsePrimary(xml, 'x86_64');
    assert.deepEqual(packages, [
      {
        name: 'ab',
        version: '1.0-1',
        architecture: 'x86_64',
        source: { name: 'a', version: '1.0-1' },
        size: 42,
        sha256: 'a'.repeat(64),
        filename: 'Packages/a/a-1.0-1.x86_64.rpm',
      },
    ]);
    assert.equal(warnings.length, 2);
    assert.match(warnings[0] ?? '', /package 3 .*no SHA-256 checksum \(sha\)/);
    assert.match(warnings[1] ?? '', /package 4 .*invalid name or version/);
  });

  it('refuses a repomd.xml without primary data or pointing outside repodata/', () => {
    assert.throws(() => parseRepomd('<repomd></repomd>'), /no primary data/);
    assert.throws(
      () =>
        parseRepomd(
          '<data type="primary"><checksum type="sha256">ab</checksum><location href="../../etc/shadow"/></data>',
        ),
      /unexpected primary location/,
    );
  });
});
