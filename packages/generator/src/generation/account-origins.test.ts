import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { RootDir, readDpkgDatabase } from '@sysattest/core';
import { AccountOrigins, accountWords, dependencyClosure, parseRelations } from './account-origins.js';

const STATUS = `Package: daemon
Status: install ok installed
Architecture: amd64
Version: 1.0
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: libc6 (>= 2.34), default-bus | other-bus, adduser:any

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36
Multi-Arch: same

Package: bus
Status: install ok installed
Architecture: all
Version: 1
Provides: default-bus
Depends: daemon

Package: init-system-helpers
Status: install ok installed
Architecture: all
Version: 1.65

Package: adduser
Status: install ok installed
Architecture: all
Version: 3.134

Package: meddler
Status: install ok installed
Architecture: all
Version: 1
Depends: daemon

Package: dpkg
Status: install ok installed
Architecture: amd64
Version: 1.21.22

Package: removed
Status: deinstall ok config-files
Architecture: all
Version: 1
Depends: daemon
`;

describe('account origins: parsing', () => {
  const relations = parseRelations(STATUS, 'status');

  it('reads Depends and Pre-Depends with every alternative, and Provides, of installed packages', () => {
    assert.deepEqual(relations.depends.get('daemon'), [
      'init-system-helpers',
      'libc6',
      'default-bus',
      'other-bus',
      'adduser',
    ]);
    assert.deepEqual(relations.providers.get('default-bus'), ['bus']);
    assert.equal(relations.depends.has('removed'), false);
  });

  it('follows dependencies through virtual names and cycles, never to a reverse dependency', () => {
    assert.deepEqual(
      [...dependencyClosure('daemon', relations)].sort(),
      ['adduser', 'bus', 'daemon', 'init-system-helpers', 'libc6'].sort(),
    );
    assert.equal(dependencyClosure('libc6', relations).has('meddler'), false);
    assert.deepEqual([...dependencyClosure('libc6', relations)], ['libc6']);
  });

  it('takes every word that could be an account name', () => {
    const words = accountWords(
      'adduser --system --group _daemon\nu polkitd - "polkit" /nonexistent\nX=Debian-exim',
    );
    for (const w of ['_daemon', 'polkitd', 'Debian-exim', 'adduser']) assert.ok(words.has(w), w);
  });
});

describe('account origins in a root', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-account-origins-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (p: string, text: string) => {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), text);
  };
  write('/var/lib/dpkg/status', `${STATUS}\n`);
  for (const p of ['daemon', 'libc6:amd64', 'bus', 'init-system-helpers', 'adduser', 'meddler', 'dpkg']) {
    const name = p.split(':')[0] as string;
    const files = name === 'bus' ? '/usr/lib/sysusers.d/bus.conf\n' : '';
    write(`/var/lib/dpkg/info/${p}.list`, `/.\n${files}`);
  }
  write('/var/lib/dpkg/info/daemon.postinst', 'adduser --system daemond\nchown daemond /var/lib/daemon\n');
  write('/usr/lib/sysusers.d/bus.conf', 'u busd - "the bus" /nonexistent\n');
  write('/var/lib/dpkg/info/meddler.postinst', 'useradd --system meddlerd\n');
  // A script that points out of the root is read inside it (the host's file is never read).
  fs.symlinkSync('/etc/hostname', path.join(dir, 'var/lib/dpkg/info/libc6:amd64.preinst'));

  it("names the package's own accounts and its dependencies', not a reverse dependency's", async () => {
    const db = await readDpkgDatabase(dir);
    const origins = new AccountOrigins(RootDir.open(dir), db.packages);
    assert.equal(origins.names('daemon', 'daemond'), true);
    assert.equal(origins.names('daemon', 'busd'), true, 'from a dependency through a virtual name');
    assert.equal(origins.names('daemon', 'meddlerd'), false, 'meddler depends on daemon, not the reverse');
    assert.equal(origins.names('meddler', 'meddlerd'), true);
    assert.equal(origins.names('libc6', 'daemond'), false);
  });
});
