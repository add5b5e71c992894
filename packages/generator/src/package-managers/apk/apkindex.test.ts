/**
 * The APKINDEX reader on index files made here in the real format: an `APKINDEX` text with every
 * field an Alpine index carries (C, P, V, A, S, I, T, U, L, o, m, t, c, D, p, k, i), packed with
 * Debian's GNU `tar` and gzip as a repository's `APKINDEX.tar.gz` is — with and without the
 * leading signature segment (a tar without end-of-archive blocks, gzipped on its own, then the
 * index's gzip stream, as abuild-sign writes it) — and cached under /var/cache/apk of a root as
 * `apk update` leaves them. Damaged and hostile inputs are refused with errors that say where.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, describe, it } from 'node:test';
import { RootDir } from '@sysattest/core';
import {
  APKINDEX_LIMITS,
  ApkIndexError,
  parseApkIndexArchive,
  parseApkIndexText,
  readApkCatalog,
  readTar,
} from './apkindex.js';

const work = fs.mkdtempSync(join(tmpdir(), 'sysattest-apkindex-'));
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** An apk `Q1` checksum of some bytes (the real one is of the package's control segment). */
const q1 = (s: string): string => `Q1${createHash('sha1').update(s).digest('base64')}`;

function record(f: Record<string, string>): string {
  return `${Object.entries(f)
    .map(([k, v]) => `${k}:${v}`)
    .join('\n')}\n`;
}

const MUSL = {
  C: q1('musl control'),
  P: 'musl',
  V: '1.2.5-r0',
  A: 'x86_64',
  S: '411323',
  I: '655360',
  T: 'the musl c library (libc) implementation',
  U: 'https://example.org/musl/',
  L: 'MIT',
  o: 'musl',
  m: 'Jane Maintainer <jane@example.org>',
  t: '1712232035',
  c: 'b1ccde7fd0e1a3cfb57ec1a1ae1ef0e5ddd3ffb3',
  p: 'so:libc.musl-x86_64.so.1=1',
};
const MUSL_UTILS = {
  C: q1('musl-utils control'),
  P: 'musl-utils',
  V: '1.2.5-r0',
  A: 'x86_64',
  S: '36588',
  I: '126976',
  T: 'the musl c library (libc) implementation',
  U: 'https://example.org/musl/',
  L: 'MIT AND BSD-2-Clause AND GPL-2.0-or-later',
  o: 'musl',
  m: 'Jane Maintainer <jane@example.org>',
  t: '1712232035',
  c: 'b1ccde7fd0e1a3cfb57ec1a1ae1ef0e5ddd3ffb3',
  D: 'scanelf so:libc.musl-x86_64.so.1',
  p: 'libc-utils=0.7.2-r5 cmd:getconf=1.2.5-r0 cmd:getent=1.2.5-r0 cmd:iconv=1.2.5-r0 cmd:ldd=1.2.5-r0',
  i: 'musl=1.2.5-r0',
};
const BUSYBOX = {
  C: q1('busybox control'),
  P: 'busybox',
  V: '1.36.1-r29',
  A: 'x86_64',
  S: '509940',
  I: '946176',
  T: 'Size optimized toolbox of many common UNIX utilities',
  U: 'https://example.org/busybox/',
  L: 'GPL-2.0-only',
  o: 'busybox',
  m: 'John Maintainer <john@example.org>',
  t: '1717070480',
  c: '3d0d5a8f7b1d8d0c7e2d84c1f2c0b5d1d1d0e3a7',
  D: 'so:libc.musl-x86_64.so.1',
  p: 'cmd:busybox=1.36.1-r29 cmd:sh=1.36.1-r29',
  k: '100',
};
const TZDATA = {
  C: q1('tzdata control'),
  P: 'tzdata',
  V: '2024a-r1',
  A: 'noarch',
  S: '456789',
  I: '3354624',
  T: 'Timezone data',
  U: 'https://example.org/tz/',
  L: 'Public-Domain',
  o: 'tzdata',
  m: 'Jane Maintainer <jane@example.org>',
  t: '1714000000',
  c: '0123456789abcdef0123456789abcdef01234567',
};
const AARCH64 = { ...BUSYBOX, A: 'aarch64', C: q1('busybox aarch64 control') };

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Buffer {
  const r = spawnSync(cmd, args, { ...opts, env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr?.toString()}`);
  return r.stdout;
}

/** A tar of `files` made by GNU tar (mtime fixed), as bytes. */
function gnuTar(
  files: Record<string, string | Buffer>,
  mtime: string,
  extra: string[] = [],
  order = Object.keys(files),
): Buffer {
  const dir = fs.mkdtempSync(join(work, 'tar-'));
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(join(dir, name), data);
  return run(
    'tar',
    [
      '-c',
      '-f',
      '-',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--mtime=${mtime}`,
      ...extra,
      '-C',
      dir,
      ...order,
    ],
    {},
  );
}

/** APKINDEX.tar.gz as a repository serves it: [signature gzip stream +] index gzip stream. */
function apkIndexArchive(text: string, opts: { signed?: boolean; description?: string } = {}): Buffer {
  const index = gzipSync(
    gnuTar(
      { DESCRIPTION: opts.description ?? 'v3.20.3-140-g0123456789a', APKINDEX: text },
      '2024-09-06 10:00:00 UTC',
    ),
  );
  if (!opts.signed) return index;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signature = sign('sha1', index, privateKey);
  // The signature tar has no end-of-archive blocks (abuild-tar --cut): 512-byte records, the
  // last two zero blocks cut off.
  const sigTar = gnuTar({ '.SIGN.RSA.builder-5e69ca50.rsa.pub': signature }, '2024-09-06 10:00:00 UTC', [
    '--blocking-factor=1',
  ]);
  assert.ok(sigTar.subarray(-1024).every((b) => b === 0));
  return Buffer.concat([gzipSync(sigTar.subarray(0, sigTar.length - 1024)), index]);
}

const MAIN = [MUSL, MUSL_UTILS, BUSYBOX, TZDATA].map(record).join('\n');

describe('APKINDEX text', () => {
  it('reads every field of a real record', () => {
    const { packages, warnings } = parseApkIndexText(Buffer.from(MAIN), 'APKINDEX');
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      packages.map((p) => `${p.name} ${p.version} ${p.arch}`),
      [
        'musl 1.2.5-r0 x86_64',
        'musl-utils 1.2.5-r0 x86_64',
        'busybox 1.36.1-r29 x86_64',
        'tzdata 2024a-r1 noarch',
      ],
    );
    assert.deepEqual(packages[1], {
      name: 'musl-utils',
      version: '1.2.5-r0',
      arch: 'x86_64',
      checksum: MUSL_UTILS.C,
      size: 36588,
      installedSize: 126976,
      origin: 'musl',
      description: 'the musl c library (libc) implementation',
      url: 'https://example.org/musl/',
      license: 'MIT AND BSD-2-Clause AND GPL-2.0-or-later',
      maintainer: 'Jane Maintainer <jane@example.org>',
      buildTime: 1712232035,
      commit: 'b1ccde7fd0e1a3cfb57ec1a1ae1ef0e5ddd3ffb3',
      depends: ['scanelf', 'so:libc.musl-x86_64.so.1'],
      provides: [
        'libc-utils=0.7.2-r5',
        'cmd:getconf=1.2.5-r0',
        'cmd:getent=1.2.5-r0',
        'cmd:iconv=1.2.5-r0',
        'cmd:ldd=1.2.5-r0',
      ],
    });
  });

  it('leaves out an invalid record with a warning naming it and its line', () => {
    const text = [
      record(MUSL),
      record({ ...BUSYBOX, V: '1.36.1-r29-x' }),
      record({ ...TZDATA, C: 'deadbeef' }),
      record({ ...MUSL_UTILS, S: '-1' }),
      record({ ...MUSL, P: '-rf' }),
      `${record(BUSYBOX)}V:1.36.1-r30\n`,
      record({ ...TZDATA, t: 'yesterday' }),
    ].join('\n');
    const { packages, warnings } = parseApkIndexText(Buffer.from(text), 'x/APKINDEX');
    assert.deepEqual(
      packages.map((p) => p.name),
      ['musl'],
    );
    assert.equal(warnings.length, 6);
    assert.match(
      warnings[0] as string,
      /^x\/APKINDEX: record at line 16: "busybox": invalid version "1\.36\.1-r29-x", left out$/,
    );
    assert.match(warnings[1] as string, /"tzdata": invalid C: checksum "deadbeef"/);
    assert.match(warnings[2] as string, /"musl-utils": invalid S: size "-1"/);
    assert.match(warnings[3] as string, /invalid package name "-rf"/);
    assert.match(warnings[4] as string, /"busybox": field V: given twice/);
    assert.match(warnings[5] as string, /"tzdata": invalid t: build time/);
  });

  it('refuses a line that is not FIELD:value, text that is not UTF-8, and an over-long line', () => {
    assert.throws(
      () => parseApkIndexText(Buffer.from(`${record(MUSL)}garbage line\n`), 'APKINDEX'),
      (e: unknown) =>
        e instanceof ApkIndexError && /line 15 is not a FIELD:value line: "garbage line"/.test(e.message),
    );
    assert.throws(
      () => parseApkIndexText(Buffer.from([0x50, 0x3a, 0xff, 0x0a]), 'APKINDEX'),
      /APKINDEX is not UTF-8 text/,
    );
    assert.throws(
      () => parseApkIndexText(Buffer.from(`P:x\nT:${'a'.repeat(APKINDEX_LIMITS.lineBytes)}\n`), 'APKINDEX'),
      /line 2 is longer than 262144 characters/,
    );
  });
});

describe('APKINDEX.tar.gz', () => {
  it('reads an index packed by GNU tar + gzip: DESCRIPTION, the index date, the records', () => {
    const file = join(work, 'APKINDEX.tar.gz');
    fs.writeFileSync(file, apkIndexArchive(MAIN));
    // Debian's tar lists what a repository index holds.
    assert.equal(run('tar', ['-tzf', file]).toString(), 'DESCRIPTION\nAPKINDEX\n');
    const parsed = parseApkIndexArchive(fs.readFileSync(file), 'APKINDEX.tar.gz');
    assert.equal(parsed.description, 'v3.20.3-140-g0123456789a');
    assert.equal(parsed.date, '2024-09-06T10:00:00Z');
    assert.deepEqual(parsed.signatures, []);
    assert.equal(parsed.packages.length, 4);
  });

  it('reads a signed index: the signature segment and the index as two gzip streams', () => {
    const bytes = apkIndexArchive(MAIN, { signed: true });
    const file = join(work, 'APKINDEX-signed.tar.gz');
    fs.writeFileSync(file, bytes);
    // GNU tar reads the concatenation as one archive too.
    assert.equal(
      run('tar', ['-tzf', file]).toString(),
      '.SIGN.RSA.builder-5e69ca50.rsa.pub\nDESCRIPTION\nAPKINDEX\n',
    );
    const parsed = parseApkIndexArchive(bytes, 'APKINDEX.tar.gz');
    assert.deepEqual(parsed.signatures, ['.SIGN.RSA.builder-5e69ca50.rsa.pub']);
    assert.deepEqual(
      parsed.packages.map((p) => p.name),
      ['musl', 'musl-utils', 'busybox', 'tzdata'],
    );
  });

  it('keeps a long or binary DESCRIPTION short and printable (it names a catalog source)', () => {
    const parsed = parseApkIndexArchive(
      apkIndexArchive(MAIN, { description: `v3.20\u0007${'x'.repeat(3000)}` }),
      'a',
    );
    assert.equal(parsed.description, `v3.20?${'x'.repeat(194)}`);
  });

  it('reads a pax-format tar (tar --format=posix)', () => {
    const tar = gnuTar({ DESCRIPTION: 'v3.21.0', APKINDEX: MAIN }, '2024-12-01 00:00:00 UTC', [
      '--format=posix',
    ]);
    const parsed = parseApkIndexArchive(gzipSync(tar), 'pax.tar.gz');
    assert.equal(parsed.description, 'v3.21.0');
    assert.equal(parsed.packages.length, 4);
  });

  it('refuses damaged and hostile archives, saying what is wrong', () => {
    const good = apkIndexArchive(MAIN);
    assert.throws(
      () => parseApkIndexArchive(Buffer.from('not gzip'), 'a.tar.gz'),
      /a\.tar\.gz: not a gzip file/,
    );
    assert.throws(
      () => parseApkIndexArchive(good.subarray(0, good.length - 30), 'a.tar.gz'),
      /a\.tar\.gz: not a gzip file|truncated/,
    );
    // A header whose checksum does not add up.
    const tar = gnuTar({ DESCRIPTION: 'x', APKINDEX: MAIN }, '2024-01-01 00:00:00 UTC');
    tar[0] = 0x58;
    assert.throws(
      () => parseApkIndexArchive(gzipSync(tar), 'b.tar.gz'),
      /b\.tar\.gz: tar header at byte 0 has a bad checksum/,
    );
    // A member cut short.
    const whole = gnuTar({ APKINDEX: MAIN }, '2024-01-01 00:00:00 UTC');
    assert.throws(
      () => readTar(whole.subarray(0, 700), 'c.tar'),
      /c\.tar: tar member at byte 0 is truncated/,
    );
    // No APKINDEX member, or two.
    assert.throws(
      () =>
        parseApkIndexArchive(gzipSync(gnuTar({ DESCRIPTION: 'x' }, '2024-01-01 00:00:00 UTC')), 'd.tar.gz'),
      /d\.tar\.gz: no APKINDEX member \(members: DESCRIPTION\)/,
    );
    // A symlink where the index should be.
    const dir = fs.mkdtempSync(join(work, 'link-'));
    fs.symlinkSync('/etc/shadow', join(dir, 'APKINDEX'));
    const linkTar = run('tar', ['-c', '-f', '-', '-C', dir, 'APKINDEX']);
    assert.throws(
      () => parseApkIndexArchive(gzipSync(linkTar), 'e.tar.gz'),
      /e\.tar\.gz: unexpected tar entry type "2" for "APKINDEX"/,
    );
    // A gzip bomb: more than the uncompressed limit.
    const bomb = gzipSync(Buffer.alloc(APKINDEX_LIMITS.tarBytes + 1024), { level: 1 });
    assert.ok(bomb.length < 2 * 1024 * 1024);
    assert.throws(
      () => parseApkIndexArchive(bomb, 'f.tar.gz'),
      /f\.tar\.gz: not a gzip file, or larger than 268435456 bytes/,
    );
  });
});

describe('the catalog of a root from its cached indexes', () => {
  const root = join(work, 'root');

  it('merges main and community for the platform architecture and noarch, with C: checksums', () => {
    fs.mkdirSync(join(root, 'var/cache/apk'), { recursive: true });
    fs.mkdirSync(join(root, 'etc/apk'), { recursive: true });
    // /etc/apk/cache -> the same directory, as setup-apkcache makes it: read once.
    fs.symlinkSync('/var/cache/apk', join(root, 'etc/apk/cache'));
    fs.writeFileSync(
      join(root, 'var/cache/apk/APKINDEX.2c4ac24e.tar.gz'),
      apkIndexArchive(MAIN, { signed: true }),
    );
    const community = [record(TZDATA), record(AARCH64), record({ ...MUSL, C: q1('other musl') })].join('\n');
    fs.writeFileSync(
      join(root, 'var/cache/apk/APKINDEX.40a3604f.tar.gz'),
      apkIndexArchive(community, { signed: true, description: 'v3.20.3-141-gabcdef' }),
    );
    const c = readApkCatalog(RootDir.open(root), 'x86_64');
    assert.deepEqual(
      c.packages.map((p) => `${p.name} ${p.version} ${p.architecture} ${p.apkChecksum}`),
      [MUSL, MUSL_UTILS, BUSYBOX, TZDATA].map((r) => `${r.P} ${r.V} ${r.A} ${r.C}`),
    );
    assert.deepEqual(c.packages[1], {
      name: 'musl-utils',
      version: '1.2.5-r0',
      architecture: 'x86_64',
      source: { name: 'musl', version: '1.2.5-r0' },
      size: 36588,
      apkChecksum: MUSL_UTILS.C,
    });
    assert.equal(c.packages[0]?.sha256, undefined);
    assert.deepEqual(c.sources, [
      { name: 'APKINDEX.2c4ac24e.tar.gz v3.20.3-140-g0123456789a', date: '2024-09-06T10:00:00Z' },
      { name: 'APKINDEX.40a3604f.tar.gz v3.20.3-141-gabcdef', date: '2024-09-06T10:00:00Z' },
    ]);
    assert.deepEqual(c.warnings, [
      `/var/cache/apk/APKINDEX.40a3604f.tar.gz: musl 1.2.5-r0 has checksum ${q1('other musl')}, another index ${MUSL.C}; the first kept`,
      '/var/cache/apk/APKINDEX.40a3604f.tar.gz: 1 package(s) for other architectures left out',
    ]);
  });

  it('says so when no index is cached, and names the file that is damaged', () => {
    const empty = join(work, 'empty-root');
    fs.mkdirSync(join(empty, 'var/cache/apk'), { recursive: true });
    assert.throws(
      () => readApkCatalog(RootDir.open(empty), 'x86_64'),
      /no APKINDEX cached in \/var\/cache\/apk, \/etc\/apk\/cache, \/lib\/apk\/db \(refresh the image's indexes: apk update\)/,
    );
    fs.writeFileSync(join(empty, 'var/cache/apk/APKINDEX.00000000.tar.gz'), 'junk');
    assert.throws(
      () => readApkCatalog(RootDir.open(empty), 'x86_64'),
      /\/var\/cache\/apk\/APKINDEX\.00000000\.tar\.gz: not a gzip file/,
    );
  });
});
