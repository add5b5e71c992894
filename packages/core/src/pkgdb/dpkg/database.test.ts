import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { PackageDatabaseError } from '../../errors.js';
import { filesWithDigests } from './database.js';
import { readDpkgArchitectures, readDpkgDatabase } from './index.js';

const tmpRoots: string[] = [];
after(() => {
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

const MD5_A = '0123456789abcdef0123456789abcdef';
const MD5_B = 'fedcba9876543210fedcba9876543210';
const MD5_C = '11111111111111111111111111111111';

const para = (...lines: string[]): string => lines.join('\n') + '\n\n';

/** A small but complete dpkg database: what `files` adds to or replaces. */
function baseFiles(): Record<string, string> {
  return {
    'var/lib/dpkg/status':
      para('Package: dpkg', 'Status: install ok installed', 'Architecture: amd64', 'Version: 1.21.22') +
      para(
        'Package: libc6',
        'Status: install ok installed',
        'Architecture: amd64',
        'Multi-Arch: same',
        'Source: glibc',
        'Version: 2.36-9',
        'Conffiles:',
        ` /etc/ld.so.conf.d/x86_64-linux-gnu.conf ${MD5_C}`,
      ) +
      para(
        'Package: libc6',
        'Status: install ok installed',
        'Architecture: i386',
        'Multi-Arch: same',
        'Version: 2.36-9',
      ) +
      para(
        'Package: foo',
        'Status: hold ok installed',
        'Architecture: all',
        'Source: foo-src (1:2.0-1)',
        'Version: 1:2.0-1+b1',
        'Conffiles:',
        ` /etc/foo.conf ${MD5_B}`,
        ` /etc/foo-old.conf ${MD5_B} obsolete`,
        ` /etc/foo-md5sums.conf ${MD5_B}`,
      ) +
      para('Package: dash', 'Status: install ok installed', 'Architecture: amd64', 'Version: 0.5.12-2') +
      para('Package: nolist', 'Status: install ok installed', 'Architecture: all', 'Version: 1') +
      para('Package: halfway', 'Status: install ok unpacked', 'Architecture: amd64', 'Version: 3') +
      para('Package: removed', 'Status: deinstall ok config-files', 'Architecture: amd64', 'Version: 1'),
    'var/lib/dpkg/arch': 'amd64\ni386\n',
    'var/lib/dpkg/diversions': '/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/foo\n/usr/bin/foo.local\n:\n',
    'var/lib/dpkg/info/format': '1\n',
    'var/lib/dpkg/info/dpkg.list': '/.\n/usr\n/usr/bin\n/usr/bin/dpkg\n',
    'var/lib/dpkg/info/dpkg.md5sums': `${MD5_A}  usr/bin/dpkg\n`,
    'var/lib/dpkg/info/libc6:amd64.list':
      '/.\n/etc\n/etc/ld.so.conf.d\n/etc/ld.so.conf.d/x86_64-linux-gnu.conf\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libc.so.6\n',
    'var/lib/dpkg/info/libc6:amd64.md5sums': `${MD5_A}  usr/lib/x86_64-linux-gnu/libc.so.6\n`,
    'var/lib/dpkg/info/libc6:i386.list':
      '/.\n/usr\n/usr/lib\n/usr/lib/i386-linux-gnu\n/usr/lib/i386-linux-gnu/libc.so.6\n',
    'var/lib/dpkg/info/libc6:i386.md5sums': `${MD5_B}  usr/lib/i386-linux-gnu/libc.so.6\n`,
    'var/lib/dpkg/info/foo.list':
      '/.\n/etc\n/etc/foo.conf\n/etc/foo-md5sums.conf\n/usr\n/usr/bin\n/usr/bin/foo\n',
    'var/lib/dpkg/info/foo.md5sums': `${MD5_A}  usr/bin/foo\n${MD5_C}  etc/foo-md5sums.conf\n${MD5_C}  usr/bin/not-listed\n`,
    'var/lib/dpkg/info/dash.list': '/.\n/bin\n/bin/sh\n/bin/dash\n',
    'var/lib/dpkg/info/halfway.list': '/.\n/opt\n/opt/halfway\n',
  };
}

function makeRoot(files: Record<string, string | Buffer>, symlinks: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-dpkg-'));
  tmpRoots.push(root);
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
  }
  for (const [p, target] of Object.entries(symlinks)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.symlinkSync(target, path.join(root, p));
  }
  return root;
}

/** Checks a PackageDatabaseError's code, host file and line (line `undefined` when none is expected). */
function dbError(
  code: PackageDatabaseError['code'],
  file: string,
  line: number | undefined,
  pattern: RegExp,
) {
  return (e: unknown) => {
    assert.ok(e instanceof PackageDatabaseError, `not a PackageDatabaseError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.file, file, e.message);
    assert.equal(e.line, line, e.message);
    assert.match(e.message, pattern);
    assert.ok(e.message.includes(file), e.message);
    return true;
  };
}

describe('readDpkgDatabase on a built root', () => {
  it('reads packages, files, digests, conffiles, diversions and architectures', async () => {
    const root = makeRoot(baseFiles());
    const db = await readDpkgDatabase(root);
    assert.equal(db.nativeArch, 'amd64');
    assert.deepEqual(db.foreignArchs, ['i386']);
    assert.deepEqual(
      db.packages.map((p) => `${p.name}:${p.architecture}=${p.version}`),
      [
        'dpkg:amd64=1.21.22',
        'libc6:amd64=2.36-9',
        'libc6:i386=2.36-9',
        'foo:all=1:2.0-1+b1',
        'dash:amd64=0.5.12-2',
        'nolist:all=1',
      ],
    );
    assert.deepEqual(
      db.partiallyInstalled.map((p) => `${p.name} ${p.state} ${p.files.map((f) => f.path).join(',')}`),
      ['halfway unpacked /opt,/opt/halfway'],
    );

    const libc = db.find('libc6:amd64');
    assert.ok(libc);
    assert.deepEqual(libc.source, { name: 'glibc', version: '2.36-9' });
    assert.equal(libc.listFile, path.join(root, 'var/lib/dpkg/info/libc6:amd64.list'));
    assert.deepEqual(libc.files, [
      { path: '/etc' },
      { path: '/etc/ld.so.conf.d' },
      // a conffile: not in md5sums, so the status file's hash is its digest
      {
        path: '/etc/ld.so.conf.d/x86_64-linux-gnu.conf',
        conffile: true,
        digest: { algorithm: 'md5', hex: MD5_C },
      },
      { path: '/usr' },
      { path: '/usr/lib' },
      { path: '/usr/lib/x86_64-linux-gnu' },
      { path: '/usr/lib/x86_64-linux-gnu/libc.so.6', digest: { algorithm: 'md5', hex: MD5_A } },
    ]);
    assert.deepEqual(db.find('libc6:i386')?.files.at(-1), {
      path: '/usr/lib/i386-linux-gnu/libc.so.6',
      digest: { algorithm: 'md5', hex: MD5_B },
    });

    const foo = db.find('foo');
    assert.ok(foo);
    assert.equal(foo.status, 'hold ok installed');
    assert.deepEqual(foo.source, { name: 'foo-src', version: '1:2.0-1' });
    const byPath = new Map(foo.files.map((f) => [f.path, f]));
    assert.deepEqual(byPath.get('/etc/foo.conf'), {
      path: '/etc/foo.conf',
      conffile: true,
      digest: { algorithm: 'md5', hex: MD5_B },
    });
    // md5sums wins over the status hash when it has the conffile
    assert.deepEqual(byPath.get('/etc/foo-md5sums.conf')?.digest, { algorithm: 'md5', hex: MD5_C });
    assert.equal(foo.conffiles.length, 3);
    assert.equal(foo.conffiles[1]?.obsolete, true);

    // dpkg without a Source field: the binary's own name and version
    assert.deepEqual(db.find('dpkg')?.source, { name: 'dpkg', version: '1.21.22' });

    const nolist = db.find('nolist');
    assert.deepEqual(nolist?.files, []);
    assert.equal(nolist?.listFile, undefined);
    assert.deepEqual(
      db.notes.map((n) => `${n.package}: ${n.message}`),
      [
        'foo:all: 1 path(s) in the md5sums of foo:all are not in its files list',
        'nolist:all: no files list for nolist:all: taken as owning no files, as dpkg does',
      ],
    );

    assert.deepEqual(db.diversions, [
      { from: '/bin/sh', to: '/bin/sh.distrib', by: 'dash' },
      { from: '/usr/bin/foo', to: '/usr/bin/foo.local', by: ':' },
    ]);
  });

  it('find, owners and applyDiversions', async () => {
    const db = await readDpkgDatabase(makeRoot(baseFiles()));
    assert.equal(db.find('libc6')?.architecture, 'amd64', 'bare name: the native instance');
    assert.equal(db.find('foo')?.architecture, 'all');
    assert.equal(db.find('foo:amd64'), undefined);
    assert.equal(db.find('removed'), undefined, 'config-files only is not installed');
    assert.equal(db.find('halfway'), undefined, 'unpacked is not installed');
    assert.deepEqual(
      db.findAll('libc6').map((p) => p.architecture),
      ['amd64', 'i386'],
    );
    assert.deepEqual(
      db.owners('/usr/lib').map((p) => `${p.name}:${p.architecture}`),
      ['libc6:amd64', 'libc6:i386'],
    );
    assert.deepEqual(
      db.owners('/opt/halfway').map((p) => p.name),
      ['halfway'],
    );
    assert.deepEqual(db.owners('/nowhere'), []);
    // dash diverts /bin/sh: another package's /bin/sh lives at /bin/sh.distrib; dash's own stays.
    assert.equal(db.applyDiversions('/bin/sh'), '/bin/sh.distrib');
    assert.equal(db.applyDiversions('/bin/sh', 'bash'), '/bin/sh.distrib');
    assert.equal(db.applyDiversions('/bin/sh', 'dash'), '/bin/sh');
    assert.equal(db.applyDiversions('/bin/sh', 'dash:amd64'), '/bin/sh');
    assert.equal(
      db.applyDiversions('/usr/bin/foo', 'foo'),
      '/usr/bin/foo.local',
      'a local diversion applies to all',
    );
    assert.equal(db.applyDiversions('/usr/bin/ls'), '/usr/bin/ls');
    assert.equal(db.diversionOf('/bin/sh')?.by, 'dash');
  });

  it('reads the pre-multiarch layout (no info/format): info files without :arch', async () => {
    const files = baseFiles();
    delete files['var/lib/dpkg/info/format'];
    files['var/lib/dpkg/info/libc6.list'] = '/.\n/lib\n/lib/libc.so.6\n';
    const db = await readDpkgDatabase(makeRoot(files));
    assert.deepEqual(
      db.find('libc6:amd64')?.files.map((f) => f.path),
      ['/lib', '/lib/libc.so.6'],
    );
  });

  it('an absolute var/lib/dpkg symlink is read inside the root, never the host’s', async () => {
    const files: Record<string, string> = {};
    for (const [p, c] of Object.entries(baseFiles()))
      files[p.replace('var/lib/dpkg/', 'var/lib/dpkg-real/')] = c;
    files['var/lib/dpkg-real/status'] += para(
      'Package: sysattest-marker',
      'Status: install ok installed',
      'Architecture: all',
      'Version: 1',
    );
    const root = makeRoot(files, { 'var/lib/dpkg': '/var/lib/dpkg-real' });
    const db = await readDpkgDatabase(root);
    assert.ok(db.find('sysattest-marker'), 'the root’s own package is there');
    assert.equal(db.packages.length, 7);
    assert.equal(db.find('dpkg')?.listFile, path.join(root, 'var/lib/dpkg-real/info/dpkg.list'));
    assert.deepEqual(await readDpkgArchitectures(root), { nativeArch: 'amd64', foreignArchs: ['i386'] });
  });

  it('info files that are symlinks resolve inside the root (an absolute /etc/shadow is the root’s)', async () => {
    const files = baseFiles();
    delete files['var/lib/dpkg/info/dash.list'];
    files['etc/shadow'] = '/from-the-root\n';
    const root = makeRoot(files, { 'var/lib/dpkg/info/dash.list': '/etc/shadow' });
    const db = await readDpkgDatabase(root);
    assert.deepEqual(db.find('dash')?.files, [{ path: '/from-the-root' }]);
    assert.equal(db.find('dash')?.listFile, path.join(root, 'etc/shadow'));
  });

  it('a custom admin dir', async () => {
    const files: Record<string, string> = {};
    for (const [p, c] of Object.entries(baseFiles())) files[p.replace('var/lib/dpkg/', 'srv/dpkgdb/')] = c;
    const db = await readDpkgDatabase(makeRoot(files), { adminDir: '/srv/dpkgdb' });
    assert.equal(db.packages.length, 6);
  });
});

describe('readDpkgDatabase on hostile or damaged roots', () => {
  const status = 'var/lib/dpkg/status';

  it('no status file: DATABASE_NOT_FOUND', async () => {
    const root = makeRoot({ 'etc/hostname': 'x\n' });
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_NOT_FOUND',
        path.join(fs.realpathSync(root), 'var/lib/dpkg/status'),
        undefined,
        /no dpkg status/,
      ),
    );
  });

  it('a status truncated mid-paragraph', async () => {
    const files = baseFiles();
    const text = files[status] ?? '';
    files[status] = text.slice(0, text.indexOf('Version: 2.36-9') + 10);
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError('DATABASE_CORRUPT', path.join(root, status), 11, /cut short/),
    );
  });

  it('a status truncated at a line end', async () => {
    const files = baseFiles();
    const text = files[status] ?? '';
    files[status] = text.slice(0, text.indexOf('Multi-Arch: same'));
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_CORRUPT',
        path.join(root, status),
        8,
        /ends inside the paragraph that starts at line 6/,
      ),
    );
  });

  it('garbage bytes in the status file', async () => {
    const files: Record<string, string | Buffer> = baseFiles();
    files[status] = Buffer.concat([
      Buffer.from(files[status] as string),
      Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x0a]),
    ]);
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError('DATABASE_CORRUPT', path.join(root, status), 51, /not a "Field: value" line/),
    );
  });

  it('a Version with spaces', async () => {
    const files = baseFiles();
    files[status] = (files[status] ?? '').replace('Version: 0.5.12-2', 'Version: 0.5.12 -2');
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_CORRUPT',
        path.join(root, status),
        34,
        /package dash: invalid Version.*embedded spaces/,
      ),
    );
  });

  it('a .list path with ..', async () => {
    const files = baseFiles();
    files['var/lib/dpkg/info/dash.list'] = '/.\n/bin\n/bin/../etc/shadow\n';
    const root = makeRoot(files);
    const list = path.join(root, 'var/lib/dpkg/info/dash.list');
    await assert.rejects(
      readDpkgDatabase(root),
      dbError('DATABASE_CORRUPT', list, 3, /has a "\.\." component/),
    );
  });

  it('an md5sums path with ..', async () => {
    const files = baseFiles();
    files['var/lib/dpkg/info/dpkg.md5sums'] = `${MD5_A}  usr/bin/dpkg\n${MD5_A}  usr/../../etc/shadow\n`;
    const root = makeRoot(files);
    const md5sums = path.join(root, 'var/lib/dpkg/info/dpkg.md5sums');
    await assert.rejects(
      readDpkgDatabase(root),
      dbError('DATABASE_CORRUPT', md5sums, 2, /has a "\.\." component/),
    );
  });

  it('oversized files: DATABASE_TOO_LARGE naming the file, before reading it', async () => {
    const files = baseFiles();
    files['var/lib/dpkg/info/foo.list'] = '/.\n' + '/usr/share/doc/foo/x\n'.repeat(5000);
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root, { limits: { list: 64 * 1024 } }),
      dbError(
        'DATABASE_TOO_LARGE',
        path.join(root, 'var/lib/dpkg/info/foo.list'),
        undefined,
        /105003 bytes, more than the 65536/,
      ),
    );
    await assert.rejects(
      readDpkgDatabase(root, { limits: { status: 100 } }),
      dbError('DATABASE_TOO_LARGE', path.join(root, status), undefined, /more than the 100 bytes/),
    );
    await assert.rejects(
      readDpkgDatabase(root, { limits: { diversions: 10 } }),
      dbError(
        'DATABASE_TOO_LARGE',
        path.join(root, 'var/lib/dpkg/diversions'),
        undefined,
        /more than the 10 bytes/,
      ),
    );
  });

  it('a diversions file missing its third line', async () => {
    const files = baseFiles();
    files['var/lib/dpkg/diversions'] = '/bin/sh\n/bin/sh.distrib\ndash\n/usr/bin/foo\n/usr/bin/foo.local\n';
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_CORRUPT',
        path.join(root, 'var/lib/dpkg/diversions'),
        6,
        /starts at line 4 lacks the package/,
      ),
    );
  });

  it('a FIFO where a files list should be is refused, not waited on', { skip: !hasMkfifo() }, async () => {
    const files = baseFiles();
    delete files['var/lib/dpkg/info/dash.list'];
    const root = makeRoot(files);
    execFileSync('mkfifo', [path.join(root, 'var/lib/dpkg/info/dash.list')]);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_CORRUPT',
        path.join(root, 'var/lib/dpkg/info/dash.list'),
        undefined,
        /not a regular file/,
      ),
    );
  });

  it('an unknown info format', async () => {
    const files = baseFiles();
    files['var/lib/dpkg/info/format'] = '7\n';
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError(
        'DATABASE_CORRUPT',
        path.join(root, 'var/lib/dpkg/info/format'),
        1,
        /unknown info database format "7"/,
      ),
    );
  });

  it('no installed dpkg package: the native architecture is unknown', async () => {
    const files = baseFiles();
    files[status] = (files[status] ?? '').replace('Package: dpkg\n', 'Package: not-dpkg\n');
    const root = makeRoot(files);
    await assert.rejects(
      readDpkgDatabase(root),
      dbError('DATABASE_CORRUPT', path.join(root, status), undefined, /native architecture is unknown/),
    );
  });

  it('a status symlink loop is refused', async () => {
    const files = baseFiles();
    delete files[status];
    const root = makeRoot(files, { 'var/lib/dpkg/status': 'status2', 'var/lib/dpkg/status2': 'status' });
    await assert.rejects(readDpkgDatabase(root), { code: 'SYMLINK_LOOP' });
  });
});

function hasMkfifo(): boolean {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('filesWithDigests', () => {
  /** The obvious way: look every path up in a Map. */
  function naive(paths: string[], names: string[], hexes: string[]): Array<string | undefined> {
    const byName = new Map(names.map((n, i) => [n, hexes[i]]));
    return paths.map((p) => byName.get(p.slice(1)));
  }

  /** A deterministic shuffle (a small LCG), so a failure can be replayed. */
  function shuffled<T>(items: T[], seed: number): T[] {
    const out = items.slice();
    let x = seed;
    for (let i = out.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const j = x % (i + 1);
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }

  const dirs = ['/usr', '/usr/bin', '/usr/share', '/usr/share/doc', '/usr/share/doc/p'];
  const regular = Array.from({ length: 40 }, (_, i) => `/usr/share/doc/p/f${String(i).padStart(2, '0')}`);
  const paths = [...dirs, ...regular, '/usr/bin/tool', '/usr/bin/link-without-md5'];
  const withMd5 = [...regular, '/usr/bin/tool'].map((p) => p.slice(1));

  for (let seed = 0; seed < 20; seed++) {
    it(`matches what a Map lookup of every path gives (md5sums order ${seed === 0 ? 'same as the list' : `shuffled #${seed}`})`, () => {
      const names = seed === 0 ? withMd5 : shuffled(withMd5, seed);
      const extra = seed % 3 === 0 ? ['usr/share/not-listed'] : [];
      const allNames = [...names, ...extra];
      const hexes = allNames.map((_, i) => i.toString(16).padStart(32, '0'));
      const listOrder =
        seed % 2 === 0
          ? paths
          : [...dirs, ...shuffled([...regular, '/usr/bin/tool', '/usr/bin/link-without-md5'], seed + 100)];
      const { files, unmatched } = filesWithDigests(listOrder, { names: allNames, hexes });
      assert.deepEqual(
        files.map((f) => f.digest?.hex),
        naive(listOrder, allNames, hexes),
      );
      assert.deepEqual(
        files.map((f) => f.path),
        listOrder,
      );
      assert.equal(unmatched, extra.length);
      assert.ok(files.every((f) => f.digest === undefined || f.digest.algorithm === 'md5'));
    });
  }

  it('without md5sums every file is a bare path', () => {
    assert.deepEqual(filesWithDigests(['/a', '/a/b'], undefined), {
      files: [{ path: '/a' }, { path: '/a/b' }],
      unmatched: 0,
    });
  });
});
