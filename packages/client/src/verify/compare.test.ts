import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FileObservation, ManifestEntry } from '@sysattest/core';
import { compareEntries, compareEntry, formatMode, locationOf, type Finding } from './compare.js';

const PKG = { name: 'pkg', arch: 'amd64' };
const SHA_A = 'a'.repeat(64);
const SHA_B = 'b'.repeat(64);

function fileEntry(over: Partial<ManifestEntry & { type: 'file' }> = {}): ManifestEntry {
  return {
    type: 'file',
    path: '/usr/bin/tool',
    mode: '0755',
    uid: 0,
    gid: 0,
    size: 10,
    sha256: SHA_A,
    ...over,
  };
}

const stat = { resolvedPath: '', mtimeMs: 0, nlink: 1, dev: 1, ino: 1 };

function obsFile(over: Record<string, unknown> = {}): FileObservation {
  return {
    status: 'ok',
    type: 'file',
    path: '/usr/bin/tool',
    ...stat,
    mode: 0o755,
    uid: 0,
    gid: 0,
    size: 10,
    sha256: SHA_A,
    ...over,
  } as FileObservation;
}

function obsLink(target: string, over: Record<string, unknown> = {}): FileObservation {
  return {
    status: 'ok',
    type: 'symlink',
    path: '/usr/bin/tool',
    ...stat,
    mode: 0o777,
    uid: 0,
    gid: 0,
    size: target.length,
    target,
    ...over,
  } as FileObservation;
}

const classes = (fs: readonly Finding[]): string[] => fs.map((f) => f.class);

describe('compareEntry', () => {
  it('reports nothing for an identical file', () => {
    assert.deepEqual(compareEntry(PKG, fileEntry(), obsFile()), []);
  });

  it('modified: content (sha256) differs', () => {
    const f = compareEntry(PKG, fileEntry(), obsFile({ sha256: SHA_B }));
    assert.deepEqual(classes(f), ['modified']);
    assert.equal(f[0]?.expected, SHA_A);
    assert.equal(f[0]?.actual, SHA_B);
    assert.equal(f[0]?.failure, true);
    assert.equal(f[0]?.package, 'pkg');
    assert.equal(f[0]?.path, '/usr/bin/tool');
  });

  it('modified: size differs even if the hash were equal', () => {
    const f = compareEntry(PKG, fileEntry(), obsFile({ size: 11 }));
    assert.deepEqual(classes(f), ['modified']);
    assert.match(f[0]?.detail ?? '', /size 10 → 11/);
  });

  it('metadata: setuid bit added', () => {
    const f = compareEntry(PKG, fileEntry(), obsFile({ mode: 0o4755 }));
    assert.deepEqual(classes(f), ['metadata']);
    assert.equal(f[0]?.attribute, 'mode');
    assert.equal(f[0]?.expected, '0755');
    assert.equal(f[0]?.actual, '4755');
    assert.match(f[0]?.detail ?? '', /setuid/);
  });

  it('metadata: setgid removed and sticky added are mode changes', () => {
    assert.deepEqual(classes(compareEntry(PKG, fileEntry({ mode: '2755' }), obsFile({ mode: 0o755 }))), [
      'metadata',
    ]);
    const dir: ManifestEntry = { type: 'dir', path: '/tmp', mode: '1777', uid: 0, gid: 0 };
    const f = compareEntry(PKG, dir, {
      ...(obsFile() as object),
      type: 'dir',
      mode: 0o777,
    } as FileObservation);
    assert.deepEqual(classes(f), ['metadata']);
    assert.equal(f[0]?.expected, '1777');
  });

  it('a packaged directory that is a mount point granting less (/proc 0555): listed, not a failure', () => {
    const proc: ManifestEntry = { type: 'dir', path: '/proc', mode: '0755', uid: 0, gid: 0 };
    const seen = (mode: number, uid = 0) =>
      ({ ...(obsFile() as object), type: 'dir', mode, uid }) as FileObservation;
    const asked: string[] = [];
    const isMountPoint = (p: string) => (asked.push(p), true);
    const [narrower] = compareEntry(PKG, proc, seen(0o555), { isMountPoint });
    assert.deepEqual([narrower?.class, narrower?.failure, asked], ['metadata', false, ['/proc']]);
    assert.match(narrower?.detail ?? '', /mount point/);
    // Not a mount point: the same difference is a failure.
    assert.equal(compareEntry(PKG, proc, seen(0o555), { isMountPoint: () => false })[0]?.failure, true);
    // A mount that widens access (world-writable over a packaged 0755 directory) stays a failure.
    assert.equal(compareEntry(PKG, proc, seen(0o1777), { isMountPoint })[0]?.failure, true);
    // The owner is compared as always.
    const owner = compareEntry(PKG, proc, seen(0o555, 1000), { isMountPoint });
    assert.deepEqual(
      owner.map((f) => [f.attribute, f.failure]),
      [
        ['mode', false],
        ['uid', true],
      ],
    );
  });

  it('metadata: uid and gid, one finding each', () => {
    const f = compareEntry(PKG, fileEntry(), obsFile({ uid: 1000, gid: 1000 }));
    assert.deepEqual(
      f.map((x) => [x.class, x.attribute, x.expected, x.actual]),
      [
        ['metadata', 'uid', '0', '1000'],
        ['metadata', 'gid', '0', '1000'],
      ],
    );
  });

  it('owners compare by name when both sides name them (dynamic system ids)', () => {
    const entry = fileEntry({ uid: 101, gid: 102, user: 'messagebus', group: 'messagebus' });
    const accounts = {
      users: new Map([[105, 'messagebus']]),
      groups: new Map([
        [106, 'messagebus'],
        [0, 'root'],
      ]),
    };
    assert.deepEqual(compareEntry(PKG, entry, obsFile({ uid: 105, gid: 106 }), { accounts }), []);
    const f = compareEntry(PKG, entry, obsFile({ uid: 105, gid: 0 }), { accounts });
    assert.deepEqual(
      f.map((x) => [x.attribute, x.expected, x.actual]),
      [['gid', 'messagebus(102)', 'root(0)']],
    );
  });

  it('metadata: a capability added to an executable', () => {
    const f = compareEntry(
      PKG,
      fileEntry(),
      obsFile({ capability: { raw: '01000002', valid: true, version: 2 } }),
    );
    assert.deepEqual(classes(f), ['metadata']);
    assert.equal(f[0]?.attribute, 'capabilities');
    assert.equal(f[0]?.expected, '');
    assert.equal(f[0]?.actual, '01000002');
  });

  it('metadata: a capability changed or removed on an executable', () => {
    const entry = fileEntry({ capabilities: '0100000200200000' });
    assert.deepEqual(compareEntry(PKG, entry, obsFile({ capability: { raw: '0100000200200000' } })), []);
    assert.deepEqual(
      classes(compareEntry(PKG, entry, obsFile({ capability: { raw: '0100000200300000' } }))),
      ['metadata'],
    );
    assert.deepEqual(classes(compareEntry(PKG, entry, obsFile())), ['metadata']);
  });

  it('capabilities are not compared on a non-executable file (inert, and not read by the pool)', () => {
    const entry = fileEntry({ mode: '0644', capabilities: '0100000200200000' });
    assert.deepEqual(compareEntry(PKG, entry, obsFile({ mode: 0o644 })), []);
  });

  it('metadata: symlink retargeted', () => {
    const entry: ManifestEntry = {
      type: 'symlink',
      path: '/usr/bin/tool',
      mode: '0777',
      uid: 0,
      gid: 0,
      target: 'real',
    };
    assert.deepEqual(compareEntry(PKG, entry, obsLink('real')), []);
    const f = compareEntry(PKG, entry, obsLink('/tmp/evil'));
    assert.deepEqual(
      f.map((x) => [x.class, x.attribute, x.expected, x.actual]),
      [['metadata', 'target', 'real', '/tmp/evil']],
    );
  });

  it('metadata: device numbers', () => {
    const entry: ManifestEntry = {
      type: 'chardev',
      path: '/dev/null',
      mode: '0666',
      uid: 0,
      gid: 0,
      major: 1,
      minor: 3,
    };
    const dev = (major: number, minor: number): FileObservation =>
      ({
        ...(obsFile() as object),
        type: 'chardev',
        mode: 0o666,
        rdevMajor: major,
        rdevMinor: minor,
      }) as FileObservation;
    assert.deepEqual(compareEntry(PKG, entry, dev(1, 3)), []);
    const f = compareEntry(PKG, entry, dev(8, 0));
    assert.deepEqual(
      f.map((x) => [x.attribute, x.expected, x.actual]),
      [['device', '1:3', '8:0']],
    );
  });

  it('replaced: a file became a symlink (and nothing else is compared)', () => {
    const f = compareEntry(PKG, fileEntry(), obsLink('/tmp/evil'));
    assert.deepEqual(classes(f), ['replaced']);
    assert.equal(f[0]?.expected, 'file');
    assert.equal(f[0]?.actual, 'symlink');
    assert.match(f[0]?.detail ?? '', /symlink -> \/tmp\/evil/);
  });

  it('replaced: a directory became a file', () => {
    const dir: ManifestEntry = { type: 'dir', path: '/usr/lib/x', mode: '0755', uid: 0, gid: 0 };
    assert.deepEqual(classes(compareEntry(PKG, dir, obsFile())), ['replaced']);
  });

  it('missing', () => {
    const f = compareEntry(PKG, fileEntry(), { status: 'missing', path: '/usr/bin/tool' });
    assert.deepEqual(classes(f), ['missing']);
    assert.equal(f[0]?.failure, true);
  });

  it('several differences on one file are each reported', () => {
    const f = compareEntry(PKG, fileEntry(), obsFile({ sha256: SHA_B, mode: 0o4755, uid: 1 }));
    assert.deepEqual(classes(f), ['modified', 'metadata', 'metadata']);
  });

  describe('conffiles', () => {
    const conf = fileEntry({ path: '/etc/tool.conf', mode: '0644', conffile: true });
    it('an edited conffile is config-modified, not a failure by default', () => {
      const f = compareEntry(PKG, conf, obsFile({ mode: 0o644, sha256: SHA_B }));
      assert.deepEqual(classes(f), ['config-modified']);
      assert.equal(f[0]?.failure, false);
      assert.match(f[0]?.detail ?? '', /^conffile: .*content differs/);
    });
    it('with includeConfig it is a failure', () => {
      const f = compareEntry(PKG, conf, obsFile({ mode: 0o644, sha256: SHA_B }), { includeConfig: true });
      assert.deepEqual(classes(f), ['config-modified']);
      assert.equal(f[0]?.failure, true);
    });
    it('a deleted, chmod-ed or replaced conffile is config-modified too', () => {
      assert.deepEqual(classes(compareEntry(PKG, conf, { status: 'missing', path: '/etc/tool.conf' })), [
        'config-modified',
      ]);
      const meta = compareEntry(PKG, conf, obsFile({ mode: 0o600 }));
      assert.deepEqual(classes(meta), ['config-modified']);
      assert.equal(meta[0]?.attribute, 'mode');
      assert.deepEqual(classes(compareEntry(PKG, conf, obsLink('x'))), ['config-modified']);
    });
    it('an unchanged conffile reports nothing', () => {
      assert.deepEqual(compareEntry(PKG, conf, obsFile({ mode: 0o644 })), []);
    });
  });

  describe('absent entries', () => {
    const absent: ManifestEntry = { type: 'absent', path: '/usr/lib/tool/old' };
    it('not there: nothing to report', () => {
      assert.deepEqual(compareEntry(PKG, absent, { status: 'missing', path: absent.path }), []);
    });
    it('there: unexpected, a failure', () => {
      const f = compareEntry(PKG, absent, obsFile({ path: absent.path }));
      assert.deepEqual(classes(f), ['unexpected']);
      assert.equal(f[0]?.failure, true);
      assert.equal(f[0]?.expected, 'absent');
    });
    it('an absent conffile that exists is config-modified (the administrator made it)', () => {
      const f = compareEntry(PKG, { ...absent, conffile: true }, obsFile());
      assert.deepEqual(classes(f), ['config-modified']);
      assert.equal(f[0]?.failure, false);
    });
  });

  describe("rpm %ghost: excused only on the signed manifest's word", () => {
    const oldAbsent: ManifestEntry = { type: 'absent', path: '/var/log/tool.log' };
    const signedGhost: ManifestEntry = { ...oldAbsent, reason: 'ghost' };
    const localGhost = {
      localState: (p: string) => (p === '/var/log/tool.log' ? ('ghost' as const) : undefined),
    };
    it('an absent entry signed as %ghost: whatever is there was made at run time, not flagged', () => {
      assert.deepEqual(compareEntry(PKG, signedGhost, obsFile({ path: signedGhost.path })), []);
      assert.deepEqual(compareEntry(PKG, signedGhost, obsLink('/x', { path: signedGhost.path })), []);
      assert.deepEqual(compareEntry(PKG, signedGhost, { status: 'missing', path: signedGhost.path }), []);
      assert.deepEqual(compareEntry(PKG, signedGhost, undefined), []);
      // Nor with a conffile flag (a %config %ghost).
      assert.deepEqual(compareEntry(PKG, { ...signedGhost, conffile: true }, obsFile()), []);
    });
    it('an absent entry with no reason (an older manifest): the local database marking the path %ghost excuses nothing', () => {
      const f = compareEntry(PKG, oldAbsent, obsFile({ path: oldAbsent.path }), localGhost);
      assert.deepEqual(classes(f), ['unexpected']);
      assert.equal(f[0]?.failure, true);
      assert.match(f[0]?.detail ?? '', /local rpm database calls it %ghost but the signed manifest does not/);
      // Without the local claim: the plain dpkg wording.
      const plain = compareEntry(PKG, oldAbsent, obsFile({ path: oldAbsent.path }));
      assert.deepEqual(classes(plain), ['unexpected']);
      assert.match(plain[0]?.detail ?? '', /fresh install of the package has no such path$/);
    });
    it('a local database saying "not installed" for an absent path that exists excuses nothing either', () => {
      const notInstalled = { localState: () => 'not-installed' as const };
      assert.deepEqual(classes(compareEntry(PKG, oldAbsent, obsFile(), notInstalled)), ['unexpected']);
    });
    it('signed not-installed (the generator left the file out): a file there cannot be vouched for, unexpected', () => {
      const e: ManifestEntry = {
        type: 'absent',
        path: '/usr/share/doc/tool/README',
        reason: 'not-installed',
      };
      const f = compareEntry(PKG, e, obsFile({ path: e.path }), localGhost);
      assert.deepEqual(classes(f), ['unexpected']);
      assert.match(f[0]?.detail ?? '', /left this file out/);
      assert.deepEqual(compareEntry(PKG, e, { status: 'missing', path: e.path }), []);
    });
    it('compareEntries on a manifest mixing both: only the unsigned one is flagged', () => {
      const f = compareEntries(
        PKG,
        [signedGhost, { type: 'absent', path: '/var/log/other.log' }],
        (p) => obsFile({ path: p }),
        { localState: () => 'ghost' },
      );
      assert.deepEqual(
        f.map((x) => [x.class, x.path]),
        [['unexpected', '/var/log/other.log']],
      );
    });
  });

  describe("the local database's state of a shipped path (rpm not installed)", () => {
    const notInstalled = {
      localState: (p: string) => (p === '/usr/bin/tool' ? ('not-installed' as const) : undefined),
    };
    it('a shipped file the local database says is not installed: missing is fine', () => {
      assert.deepEqual(
        compareEntry(PKG, fileEntry(), { status: 'missing', path: '/usr/bin/tool' }, notInstalled),
        [],
      );
    });
    it('but when it is there it is compared: a database cannot hide a changed file', () => {
      const f = compareEntry(PKG, fileEntry(), obsFile({ sha256: SHA_B }), notInstalled);
      assert.deepEqual(classes(f), ['modified']);
    });
    it('a %ghost claim on a path the manifest ships changes nothing (missing is still missing)', () => {
      const lying = { localState: () => 'ghost' as const };
      const missing = compareEntry(PKG, fileEntry(), { status: 'missing', path: '/usr/bin/tool' }, lying);
      assert.deepEqual(classes(missing), ['missing']);
      assert.deepEqual(classes(compareEntry(PKG, fileEntry(), obsFile({ mode: 0o4755 }), lying)), [
        'metadata',
      ]);
    });
  });

  it('hard links compare like files', () => {
    const hl: ManifestEntry = {
      type: 'hardlink',
      path: '/usr/bin/tool2',
      linkTo: '/usr/bin/tool',
      mode: '0755',
      uid: 0,
      gid: 0,
      size: 10,
      sha256: SHA_A,
    };
    assert.deepEqual(compareEntry(PKG, hl, obsFile()), []);
    assert.deepEqual(classes(compareEntry(PKG, hl, obsFile({ sha256: SHA_B }))), ['modified']);
    assert.deepEqual(classes(compareEntry(PKG, hl, obsFile({ mode: 0o6755 }))), ['metadata']);
    assert.deepEqual(classes(compareEntry(PKG, hl, obsLink('x'))), ['replaced']);
  });

  it('observation failures are their own classes', () => {
    const p = '/usr/bin/tool';
    const cases: [FileObservation, string][] = [
      [{ status: 'unreadable', path: p, errno: 'EACCES', message: 'denied' }, 'unreadable'],
      [{ status: 'vanished', path: p }, 'unstable'],
      [{ status: 'changed', path: p, detail: 'inode' }, 'unstable'],
      [{ status: 'changed-while-hashing', path: p, detail: 'size' }, 'unstable'],
      [{ status: 'error', path: p, code: 'NOT_A_DIRECTORY', message: 'x' }, 'unresolvable'],
    ];
    for (const [o, cls] of cases) {
      const f = compareEntry(PKG, fileEntry(), o);
      assert.deepEqual(classes(f), [cls], o.status);
      assert.equal(f[0]?.failure, true);
    }
    assert.deepEqual(classes(compareEntry(PKG, fileEntry(), undefined)), ['unresolvable']);
  });
});

describe('locationOf and diversions', () => {
  it("the manifest's divertedTo (the generator's image) never moves where a file is looked at", () => {
    // On this machine dpkg put the file where this machine's honoured diversions say.
    const e = fileEntry({ path: '/bin/sh', divertedTo: '/bin/sh.distrib' });
    assert.equal(locationOf(e), '/bin/sh');
    assert.equal(locationOf(fileEntry()), '/usr/bin/tool');
  });
  it('an honoured diversion moves it', () => {
    const e = fileEntry({ path: '/bin/sh', divertedTo: '/bin/sh.distrib' });
    assert.equal(
      locationOf(e, (p) => (p === '/bin/sh' ? '/bin/sh.local' : p)),
      '/bin/sh.local',
    );
  });
  it('compareEntries looks at the diverted location and says so', () => {
    const entries = [
      fileEntry({ path: '/usr/bin/a', divertedTo: '/usr/bin/a.real' }),
      fileEntry({ path: '/usr/bin/b' }),
    ];
    const seen: string[] = [];
    const f = compareEntries(
      PKG,
      entries,
      (loc) => {
        seen.push(loc);
        return loc === '/usr/bin/b.diverted' ? obsFile({ sha256: SHA_B }) : obsFile();
      },
      { localDiversion: (p) => (p === '/usr/bin/b' ? '/usr/bin/b.diverted' : p) },
    );
    assert.deepEqual(seen, ['/usr/bin/a', '/usr/bin/b.diverted']);
    assert.deepEqual(
      f.map((x) => [x.class, x.path, x.location]),
      [['modified', '/usr/bin/b', '/usr/bin/b.diverted']],
    );
  });
});

it('formatMode', () => {
  assert.equal(formatMode(0o4755), '4755');
  assert.equal(formatMode(0o100644), '0644');
});
