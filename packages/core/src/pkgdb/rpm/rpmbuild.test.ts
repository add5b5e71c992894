/**
 * End to end on locally made material: real rpms built here with `rpmbuild` (an executable, a
 * setuid file, a symlink, a config file, a %ghost file, a noarch package with an epoch), installed
 * into a temporary root with `rpm --root --nodeps --noscripts -i`, which gives a real rpm database
 * (sqlite, with its write-ahead log) whose files exist on disk. The reader must list what rpm
 * lists, and every file's recorded digest, mode and link target must match the file on disk.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { detectPackageManager, readInstalledDatabase } from '../installed.js';
import { requireRpm, rpmQuery } from '../../testkit/pkgdb.js';
import { readRpmDatabase } from './index.js';

const SPECS: Record<string, string> = {
  'sa-hello': `
Name: sa-hello
Version: 1.0
Release: 1
Epoch: 2
Summary: sysattest test package
License: MIT
%description
An executable, a setuid file, a symlink, a config file and a ghost.
%install
mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/var/log
printf '#!/bin/sh\\necho hello\\n' > %{buildroot}/usr/bin/sa-hello
chmod 755 %{buildroot}/usr/bin/sa-hello
printf 'suid' > %{buildroot}/usr/bin/sa-suid
echo 'greeting=hello' > %{buildroot}/etc/sa-hello.conf
ln -s sa-hello %{buildroot}/usr/bin/sa-hi
%files
/usr/bin/sa-hello
%attr(4755,root,root) /usr/bin/sa-suid
/usr/bin/sa-hi
%config(noreplace) /etc/sa-hello.conf
%ghost /var/log/sa-hello.log
`,
  'sa-data': `
Name: sa-data
Version: 0.9~rc1
Release: 3.fc41
Summary: sysattest test data
License: MIT
BuildArch: noarch
%description
A directory the package owns, data files, an empty file.
%install
mkdir -p %{buildroot}/usr/share/sa-data/sub
head -c 100000 /dev/zero | tr '\\0' 'a' > %{buildroot}/usr/share/sa-data/big.txt
: > %{buildroot}/usr/share/sa-data/empty
echo nested > %{buildroot}/usr/share/sa-data/sub/nested.txt
%files
%dir /usr/share/sa-data
/usr/share/sa-data/big.txt
/usr/share/sa-data/empty
/usr/share/sa-data/sub
`,
};

const work = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmbuild-'));
const root = join(work, 'root');
after(() => fs.rmSync(work, { recursive: true, force: true }));

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

before(() => {
  requireRpm();
  const rpms: string[] = [];
  for (const [name, spec] of Object.entries(SPECS)) {
    const file = join(work, `${name}.spec`);
    fs.writeFileSync(file, spec);
    run('rpmbuild', [
      '-bb',
      '--define',
      `_topdir ${join(work, 'top')}`,
      '--define',
      'debug_package %{nil}',
      '--define',
      '__os_install_post %{nil}',
      file,
    ]);
  }
  for (const dir of fs.readdirSync(join(work, 'top/RPMS'))) {
    for (const f of fs.readdirSync(join(work, 'top/RPMS', dir))) rpms.push(join(work, 'top/RPMS', dir, f));
  }
  assert.equal(rpms.length, 2);
  fs.mkdirSync(root);
  run('rpm', ['--root', root, '--define', '_dbpath /var/lib/rpm', '--nodeps', '--noscripts', '-i', ...rpms]);
});

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

describe('rpm reader on a root made by rpmbuild and rpm --root', () => {
  it('lists what rpm lists, and every file on disk matches its digest, mode and link target', async (t) => {
    const db = await readRpmDatabase(root);
    assert.equal(db.format, 'sqlite');
    const dbDir = join(root, 'var/lib/rpm');
    const wal = fs.existsSync(join(dbDir, 'rpmdb.sqlite-wal'))
      ? fs.statSync(join(dbDir, 'rpmdb.sqlite-wal')).size
      : 0;
    t.diagnostic(`rpm left a write-ahead log of ${wal} bytes beside the database`);
    const theirs = rpmQuery(dbDir, '%{NAME} %{EVR} %{ARCH}\\n')
      .split('\n')
      .filter((l) => l !== '')
      .sort();
    assert.deepEqual(db.packages.map((p) => `${p.name} ${p.version} ${p.architecture}`).sort(), theirs);
    assert.deepEqual(theirs, ['sa-data 0.9~rc1-3.fc41 noarch', 'sa-hello 2:1.0-1 x86_64']);

    let checked = 0;
    for (const p of db.packages) {
      for (const f of p.files) {
        const host = join(root, f.path);
        if (f.ghost) {
          assert.equal(fs.existsSync(host), false, `${f.path} is a ghost: rpm does not create it`);
          continue;
        }
        const st = fs.lstatSync(host);
        assert.equal(
          f.mode,
          st.mode,
          `${f.path}: mode ${f.mode?.toString(8)} vs ${st.mode.toString(8)} on disk`,
        );
        if (!st.isDirectory()) assert.equal(f.size, st.size, `${f.path}: size`);
        if (((f.mode ?? 0) & S_IFMT) === S_IFREG) {
          assert.ok(f.digest, `${f.path} has a digest`);
          const ours = createHash(f.digest.algorithm).update(fs.readFileSync(host)).digest('hex');
          assert.equal(f.digest.hex, ours, `${f.path}: the recorded digest is the file's`);
          checked++;
        } else {
          assert.equal(f.digest, undefined, `${f.path} is not a regular file: no digest`);
        }
        if (((f.mode ?? 0) & S_IFMT) === S_IFLNK) assert.equal(f.linkTarget, fs.readlinkSync(host));
        else assert.equal(f.linkTarget, undefined);
        assert.equal(f.owner, 'root');
        assert.equal(f.group, 'root');
      }
    }
    assert.equal(checked, 6, 'six regular files hashed');

    const hello = db.findAll('sa-hello')[0];
    assert.equal(hello?.epoch, 2);
    assert.deepEqual(hello?.source, { name: 'sa-hello', version: '2:1.0-1' });
    const files = new Map(hello?.files.map((f) => [f.path, f]));
    assert.equal(files.get('/etc/sa-hello.conf')?.conffile, true);
    assert.equal(files.get('/usr/bin/sa-hello')?.conffile, undefined);
    assert.equal((files.get('/usr/bin/sa-suid')?.mode ?? 0) & 0o7777, 0o4755, 'setuid recorded');
    assert.equal(files.get('/usr/bin/sa-hi')?.linkTarget, 'sa-hello');
    assert.equal(files.get('/var/log/sa-hello.log')?.ghost, true);
    assert.equal(files.get('/usr/bin/sa-hello')?.digest?.algorithm, 'sha256');
  });

  it('the dispatcher finds rpm and reads the same packages', async () => {
    assert.equal(detectPackageManager(root), 'rpm');
    const installed = await readInstalledDatabase(root);
    assert.equal(installed.manager, 'rpm');
    assert.deepEqual(installed.packages.map((p) => p.name).sort(), ['sa-data', 'sa-hello']);
  });
});
