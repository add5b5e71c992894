import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeCapability } from './capability.js';
import {
  devMajor,
  devMinor,
  HASH_CHUNK_SIZE,
  inspectFile,
  type FileObservation,
  type HardLinkMemo,
} from './file-entry.js';
import {
  buildHostileRoot,
  isRoot,
  makeTempDir,
  mkfifo,
  mknod,
  symlink,
  withFsHook,
  writeFile,
} from '../testkit/hostile-tree.js';
import { RootDir } from './in-root.js';

const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const here = path.dirname(fileURLToPath(import.meta.url));

/** Narrows an observation to `ok` of the given type, failing the test otherwise. */
function ok<T extends FileObservation & { status: 'ok' }>(o: FileObservation, type: T['type']): T {
  assert.equal(o.status, 'ok', `expected ok, got ${JSON.stringify(o)}`);
  assert.equal((o as T).type, type, `expected a ${type}, got ${JSON.stringify(o)}`);
  return o as T;
}
type OkFile = Extract<FileObservation, { type: 'file' }>;
type OkLink = Extract<FileObservation, { type: 'symlink' }>;
type OkDev = Extract<FileObservation, { type: 'chardev' | 'blockdev' }>;

/** Runs inspectFile in a child process (with a deadline, optionally as another user). */
function inspectInChild(
  rootPath: string,
  p: string,
  options: { uid?: number; gid?: number; timeoutMs?: number } = {},
) {
  const script = `
    const { RootDir } = await import(${JSON.stringify(path.join(here, 'in-root.js'))});
    const { inspectFile } = await import(${JSON.stringify(path.join(here, 'file-entry.js'))});
    console.log(JSON.stringify(inspectFile(RootDir.open(${JSON.stringify(rootPath)}), ${JSON.stringify(p)})));`;
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 20_000,
    ...(options.uid !== undefined ? { uid: options.uid, gid: options.gid ?? options.uid } : {}),
  });
  assert.equal(r.signal, null, `child killed by ${r.signal} after ${Date.now() - started} ms (blocked?)`);
  assert.equal(r.status, 0, r.stderr);
  return { observation: JSON.parse(r.stdout) as FileObservation, ms: Date.now() - started };
}

/** A hook that fails the test if inspectFile opens any of `forbidden`. */
function forbidOpen(forbidden: string[]) {
  return (original: typeof fs.openSync) =>
    ((p: fs.PathLike, ...rest: unknown[]) => {
      if (forbidden.includes(String(p))) throw new Error(`inspectFile opened ${String(p)}`);
      return (original as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync;
}

describe('inspectFile', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let R: string;
  let root: RootDir;
  let server: net.Server | undefined;

  before(async () => {
    tmp = makeTempDir();
    R = path.join(tmp.dir, 'root');
    fs.mkdirSync(R);
    buildHostileRoot(R);
    root = RootDir.open(R);
    fs.mkdirSync(path.join(R, 'run'));
    server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server?.once('error', reject);
      server?.listen(path.join(R, 'run/socket'), resolve);
    });
  });
  after(async () => {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    tmp.cleanup();
  });

  test('a regular file: type, mode, size, nlink, sha256', () => {
    const content = 'hello sysattest\n';
    writeFile(R, 'usr/share/hello', content, 0o644);
    const o = ok<OkFile>(inspectFile(root, '/usr/share/hello'), 'file');
    assert.equal(o.sha256, sha256(content));
    assert.equal(o.mode, 0o644);
    assert.equal(o.size, content.length);
    assert.equal(o.nlink, 1);
    assert.equal(o.path, '/usr/share/hello');
    assert.equal(o.resolvedPath, '/usr/share/hello');
    assert.equal(o.capability, undefined);
    assert.equal(typeof o.mtimeMs, 'number');
    assert.equal(o.uid, process.getuid?.());
  });

  test('hard links: an unchanged inode is read once per memo, a changed one again', () => {
    writeFile(R, 'links/a', 'linked content\n', 0o755);
    fs.linkSync(path.join(R, 'links/a'), path.join(R, 'links/b'));
    fs.linkSync(path.join(R, 'links/a'), path.join(R, 'links/c'));
    const links: HardLinkMemo = new Map();
    let reads = 0;
    const inspectCounting = (p: string): OkFile =>
      withFsHook(
        'readSync',
        (original) =>
          ((...args: Parameters<typeof original>) => {
            reads++;
            return original(...args);
          }) as typeof original,
        () => ok<OkFile>(inspectFile(root, p, { links }), 'file'),
      );
    const a = inspectCounting('/links/a');
    const readsForA = reads;
    assert.ok(readsForA > 0);
    const b = inspectCounting('/links/b');
    assert.equal(reads, readsForA, 'the second name of an unchanged inode is not read');
    assert.equal(b.sha256, a.sha256);
    assert.equal(b.path, '/links/b');
    assert.equal(b.nlink, 3);

    // Timestamps move at the kernel's clock tick (a few ms): let one pass before each change.
    const tick = (): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    // A write through one name (same size, mtime put back: only ctime tells) is seen by the others.
    tick();
    const st = fs.statSync(path.join(R, 'links/a'));
    fs.writeFileSync(path.join(R, 'links/a'), 'LINKED content\n');
    fs.utimesSync(path.join(R, 'links/a'), st.atime, st.mtime);
    const c = inspectCounting('/links/c');
    assert.ok(reads > readsForA, 'a changed inode is read again');
    assert.equal(c.sha256, sha256('LINKED content\n'));
    // A chmod moves ctime too: read again, and the mode seen is the new one.
    tick();
    fs.chmodSync(path.join(R, 'links/b'), 0o4755);
    const before = reads;
    const b2 = inspectCounting('/links/b');
    assert.ok(reads > before);
    assert.equal(b2.mode, 0o4755);
    assert.equal(b2.sha256, c.sha256);
  });

  test('hashing leaves access times as they were (O_NOATIME, as root)', (t) => {
    if (!isRoot) return t.skip('O_NOATIME needs the owner or CAP_FOWNER');
    // Three days ago, in whole seconds (compared as read back, never as a float computed here).
    const daysAgo = Math.floor(Date.now() / 1000) - 3 * 24 * 3600;
    const atimeOf = (host: string): bigint => fs.statSync(host, { bigint: true }).atimeNs;
    const old = (name: string): string => {
      const host = path.join(R, 'atime', name);
      writeFile(R, `atime/${name}`, `content of ${name}\n`);
      fs.utimesSync(host, daysAgo, fs.statSync(host).mtime);
      return host;
    };
    // The control: on this filesystem a plain read does move an old access time (relatime).
    const control = old('control');
    const controlBefore = atimeOf(control);
    fs.readFileSync(control);
    if (atimeOf(control) === controlBefore)
      return t.skip('this filesystem does not update access times (noatime)');
    const hashed = old('hashed');
    const before = atimeOf(hashed);
    ok<OkFile>(inspectFile(root, '/atime/hashed'), 'file');
    assert.equal(atimeOf(hashed), before);
  });

  test('empty files and files larger than one read chunk', () => {
    writeFile(R, 'data/empty', '');
    assert.equal(ok<OkFile>(inspectFile(root, '/data/empty'), 'file').sha256, sha256(''));
    for (const size of [
      HASH_CHUNK_SIZE - 1,
      HASH_CHUNK_SIZE,
      HASH_CHUNK_SIZE + 1,
      3 * HASH_CHUNK_SIZE + 12345,
    ]) {
      const data = Buffer.alloc(size).fill(randomBytes(4099));
      writeFile(R, `data/big-${size}`, data);
      const o = ok<OkFile>(inspectFile(root, `/data/big-${size}`), 'file');
      assert.equal(o.sha256, sha256(data), `size ${size}`);
      assert.equal(o.size, size);
    }
  });

  test('usr/bin/evil -> /etc/shadow is a symlink, never a hash of anything', () => {
    const o = ok<OkLink>(inspectFile(root, '/usr/bin/evil'), 'symlink');
    assert.equal(o.target, '/etc/shadow');
    assert.equal(o.targetHex, undefined);
    assert.equal('sha256' in o, false);
    assert.equal(o.size, '/etc/shadow'.length);
    // The same through usrmerge.
    assert.equal(ok<OkLink>(inspectFile(root, '/bin/evil'), 'symlink').resolvedPath, '/usr/bin/evil');
  });

  test('symlink targets that are not UTF-8 keep their raw bytes', () => {
    const raw = Buffer.from([0x2f, 0x74, 0x6d, 0x70, 0x2f, 0xff, 0xfe, 0x41]); // "/tmp/\xff\xfeA"
    fs.symlinkSync(raw, Buffer.from(path.join(R, 'usr/bin/latin')));
    const o = ok<OkLink>(inspectFile(root, '/usr/bin/latin'), 'symlink');
    assert.equal(o.targetHex, raw.toString('hex'));
    assert.equal(o.target.startsWith('/tmp/'), true);
  });

  test('usrmerge: /bin/ls is reported as the file /usr/bin/ls', () => {
    const o = ok<OkFile>(inspectFile(root, '/bin/ls'), 'file');
    assert.equal(o.resolvedPath, '/usr/bin/ls');
    assert.equal(o.sha256, sha256('not really ls\n'));
    assert.equal(o.mode, 0o755);
    ok(inspectFile(root, '/bin'), 'symlink');
  });

  test('an intermediate symlink to / stays inside the root', () => {
    const o = ok<OkFile>(inspectFile(root, '/lib/etc/shadow'), 'file');
    assert.equal(o.resolvedPath, '/etc/shadow');
    assert.equal(o.sha256, sha256('root:*:19000:0:99999:7:::\n'));
    assert.equal(
      ok<OkFile>(inspectFile(root, '/../../../../etc/passwd'), 'file').resolvedPath,
      '/etc/passwd',
    );
    ok(inspectFile(root, '/usr/lib/climb'), 'symlink');
  });

  test('loops: a looping final component is a symlink; through it, SYMLINK_LOOP', () => {
    assert.equal(ok<OkLink>(inspectFile(root, '/loop/a'), 'symlink').target, 'b');
    assert.equal(ok<OkLink>(inspectFile(root, '/loop/self'), 'symlink').target, 'self');
    for (const p of ['/loop/a/x', '/loop/self/x', '/chain/l0/x']) {
      const o = inspectFile(root, p);
      assert.equal(o.status, 'error');
      assert.equal(o.status === 'error' && o.code, 'SYMLINK_LOOP');
    }
  });

  test('missing files (and missing directories) are results, not exceptions', () => {
    assert.deepEqual(inspectFile(root, '/etc/nope'), { status: 'missing', path: '/etc/nope' });
    assert.deepEqual(inspectFile(root, '/nope/nope/x'), { status: 'missing', path: '/nope/nope/x' });
  });

  test('invalid paths: NUL, over-long, through a regular file', () => {
    const cases: [string, string][] = [
      ['/etc/pass\0wd', 'INVALID_PATH'],
      ['/' + 'a/'.repeat(3000), 'INVALID_PATH'],
      ['/etc/' + 'x'.repeat(300), 'INVALID_PATH'],
      ['/etc/passwd/x', 'NOT_A_DIRECTORY'],
    ];
    for (const [p, code] of cases) {
      const o = inspectFile(root, p);
      assert.equal(o.status, 'error', JSON.stringify(o));
      assert.equal(o.status === 'error' && o.code, code);
    }
  });

  test('setuid, setgid and sticky bits are kept in mode', () => {
    writeFile(R, 'usr/bin/su', 'su\n');
    fs.chmodSync(path.join(R, 'usr/bin/su'), 0o4755);
    writeFile(R, 'usr/bin/wall', 'wall\n');
    fs.chmodSync(path.join(R, 'usr/bin/wall'), 0o2755);
    fs.mkdirSync(path.join(R, 'tmp'));
    fs.chmodSync(path.join(R, 'tmp'), 0o1777);
    assert.equal(ok(inspectFile(root, '/usr/bin/su'), 'file').mode, 0o4755);
    assert.equal(ok(inspectFile(root, '/usr/bin/wall'), 'file').mode, 0o2755);
    assert.equal(ok(inspectFile(root, '/tmp'), 'dir').mode, 0o1777);
  });

  test('uid and gid', (t) => {
    if (!isRoot) return t.skip('chown to another user needs root');
    const p = writeFile(R, 'var/mail/x', 'mail\n');
    fs.chownSync(p, 1234, 5678);
    const o = ok(inspectFile(root, '/var/mail/x'), 'file');
    assert.equal(o.uid, 1234);
    assert.equal(o.gid, 5678);
    fs.lchownSync(path.join(R, 'usr/bin/evil'), 42, 43);
    const l = ok(inspectFile(root, '/usr/bin/evil'), 'symlink');
    assert.deepEqual([l.uid, l.gid], [42, 43]);
  });

  test('hard links report nlink 2 and the same inode', () => {
    const p = writeFile(R, 'usr/bin/perl', 'perl\n');
    fs.linkSync(p, path.join(R, 'usr/bin/perl5.36'));
    const a = ok(inspectFile(root, '/usr/bin/perl'), 'file');
    const b = ok(inspectFile(root, '/usr/bin/perl5.36'), 'file');
    assert.equal(a.nlink, 2);
    assert.equal(b.nlink, 2);
    assert.deepEqual([a.dev, a.ino], [b.dev, b.ino]);
  });

  test('security.capability is read from the hashed file (the final component never followed)', (t) => {
    const p = writeFile(R, 'usr/bin/ping', 'ping\n', 0o755);
    const r = spawnSync('setcap', ['cap_net_raw+ep', p], { encoding: 'utf8' });
    if (r.error !== undefined || r.status !== 0)
      return t.skip(`setcap failed: ${r.error?.message ?? r.stderr}`);
    const o = ok<OkFile>(inspectFile(root, '/usr/bin/ping'), 'file');
    assert.ok(o.capability, 'capability reported');
    assert.equal(o.capability.version, 2);
    assert.equal(o.capability.valid, true);
    assert.equal(o.capability.effective, true);
    assert.deepEqual(o.capability.permitted, ['cap_net_raw']);
    assert.equal(o.capability.text, 'cap_net_raw=ep');
    assert.equal(o.capability.raw, '0100000200200000000000000000000000000000');
    const getcap = spawnSync('getcap', [p], { encoding: 'utf8' });
    if (getcap.status === 0) assert.equal(getcap.stdout.trim(), `${p} ${o.capability.text}`);
    // Not read when not asked for.
    assert.equal(
      ok<OkFile>(inspectFile(root, '/usr/bin/ping', { capabilities: false }), 'file').capability,
      undefined,
    );
    assert.equal(
      ok<OkFile>(inspectFile(root, '/usr/bin/ping', { capabilities: 'none' }), 'file').capability,
      undefined,
    );
    // On a file without any execute bit capabilities are inert (execve refuses it): by default not
    // read; read with 'all'.
    const inert = writeFile(R, 'usr/share/inert', 'inert\n', 0o644);
    assert.equal(spawnSync('setcap', ['cap_net_raw+ep', inert]).status, 0);
    assert.equal(ok<OkFile>(inspectFile(root, '/usr/share/inert'), 'file').capability, undefined);
    assert.equal(
      ok<OkFile>(inspectFile(root, '/usr/share/inert', { capabilities: 'all' }), 'file').capability?.text,
      'cap_net_raw=ep',
    );
    assert.equal(
      ok<OkFile>(inspectFile(root, '/usr/share/inert', { capabilities: true }), 'file').capability?.text,
      'cap_net_raw=ep',
    );
    fs.chmodSync(inert, 0o744); // any execute bit makes it count
    assert.equal(
      ok<OkFile>(inspectFile(root, '/usr/share/inert'), 'file').capability?.text,
      'cap_net_raw=ep',
    );
    // A symlink to it has no capability of its own (and is not followed).
    symlink(R, 'usr/bin/ping-link', 'ping');
    assert.equal('capability' in ok(inspectFile(root, '/usr/bin/ping-link'), 'symlink'), false);

    const q = writeFile(R, 'usr/bin/two', 'two\n', 0o755);
    if (spawnSync('setcap', ['cap_net_admin,cap_net_bind_service+ep', q]).status === 0) {
      const two = ok<OkFile>(inspectFile(root, '/usr/bin/two'), 'file');
      assert.equal(two.capability?.text, 'cap_net_bind_service,cap_net_admin=ep');
      const g = spawnSync('getcap', [q], { encoding: 'utf8' });
      if (g.status === 0) assert.equal(g.stdout.trim(), `${q} ${two.capability?.text}`);
    }
  });

  test('a FIFO is reported without being opened, and quickly', (t) => {
    if (!mkfifo(path.join(R, 'run/fifo'))) return t.skip('mkfifo is not available');
    // In a child with a deadline: if inspectFile opened the FIFO it would block forever.
    const { observation, ms } = inspectInChild(R, '/run/fifo', { timeoutMs: 20_000 });
    assert.equal(observation.status === 'ok' && observation.type, 'fifo');
    assert.ok(ms < 15_000);
    const o = withFsHook('openSync', forbidOpen([path.join(R, 'run/fifo')]), () =>
      inspectFile(root, '/run/fifo'),
    );
    assert.equal(ok(o, 'fifo').mode & 0o777, fs.lstatSync(path.join(R, 'run/fifo')).mode & 0o777);
  });

  test('a unix socket is reported without being opened', () => {
    const o = withFsHook('openSync', forbidOpen([path.join(R, 'run/socket')]), () =>
      inspectFile(root, '/run/socket'),
    );
    ok(o, 'socket');
  });

  test('character and block devices: major/minor, never opened', (t) => {
    const devices: [string, 'c' | 'b', number, number][] = [
      ['dev/null', 'c', 1, 3],
      ['dev/sda1', 'b', 8, 1],
      ['dev/big', 'c', 300, 70000], // needs the 64-bit dev_t encoding
    ];
    for (const [rel, kind, major, minor] of devices) {
      if (!mknod(path.join(R, rel), kind, major, minor))
        return t.skip('mknod is not permitted here (needs root)');
    }
    const hosts = devices.map(([rel]) => path.join(R, rel));
    withFsHook('openSync', forbidOpen(hosts), () => {
      for (const [rel, kind, major, minor] of devices) {
        const o = ok<OkDev>(inspectFile(root, `/${rel}`), kind === 'c' ? 'chardev' : 'blockdev');
        assert.deepEqual([o.rdevMajor, o.rdevMinor], [major, minor], rel);
      }
    });
  });

  test('dev_t decoding matches glibc major()/minor()', () => {
    assert.deepEqual([devMajor(0x0103), devMinor(0x0103)], [1, 3]);
    // makedev(300, 70000): minor low byte, major low 12 bits <<8, minor bits 8.. <<12
    const dev = (70000 & 0xff) + (300 & 0xfff) * 2 ** 8 + (70000 >>> 8) * 2 ** 20;
    assert.deepEqual([devMajor(dev), devMinor(dev)], [300, 70000]);
    // makedev(0x12345, 0x6789ab): high major bits go above bit 44.
    const big =
      (0x6789ab & 0xff) +
      (0x12345 & 0xfff) * 2 ** 8 +
      (0x6789ab >>> 8) * 2 ** 20 +
      (0x12345 >>> 12) * 2 ** 44;
    assert.deepEqual([devMajor(big), devMinor(big)], [0x12345, 0x6789ab]);
  });

  test('unreadable: EACCES is a result with its errno', () => {
    const p = writeFile(R, 'etc/secret', 'secret\n', 0o000);
    for (const dir of [tmp.dir, R, path.join(R, 'etc')]) fs.chmodSync(dir, 0o755); // whatever the umask
    try {
      if (isRoot) {
        // chmod 000 does not stop root (CAP_DAC_OVERRIDE): look as the unprivileged user nobody.
        const { observation } = inspectInChild(R, '/etc/secret', { uid: 65534 });
        assert.ok(observation.status === 'unreadable', JSON.stringify(observation));
        assert.equal(observation.errno, 'EACCES');
        assert.match(observation.message, /cannot open/);
        // A directory nobody may not search: even lstat is refused.
        fs.mkdirSync(path.join(R, 'root'), { mode: 0o700 });
        writeFile(R, 'root/.profile', 'x');
        for (const hiddenPath of ['/root/.profile', '/root/.config/x']) {
          const hidden = inspectInChild(R, hiddenPath, { uid: 65534 }).observation;
          assert.ok(hidden.status === 'unreadable', JSON.stringify(hidden));
          assert.equal(hidden.errno, 'EACCES');
        }
      } else {
        const o = inspectFile(root, '/etc/secret');
        assert.ok(o.status === 'unreadable', JSON.stringify(o));
        assert.equal(o.errno, 'EACCES');
      }
    } finally {
      fs.chmodSync(p, 0o644);
    }
  });

  test('unreadable: an I/O error while reading is a result', () => {
    writeFile(R, 'data/bad-sector', 'x'.repeat(100));
    const o = withFsHook(
      'readSync',
      () =>
        (() => {
          throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO', errno: -5 });
        }) as typeof fs.readSync,
      () => inspectFile(root, '/data/bad-sector'),
    );
    assert.equal(o.status, 'unreadable');
    assert.equal(o.status === 'unreadable' && o.errno, 'EIO');
  });

  test('vanished: deleted between lstat and open', () => {
    const p = writeFile(R, 'data/ghost', 'boo');
    const o = withFsHook(
      'openSync',
      (original) =>
        ((file: fs.PathLike, ...rest: unknown[]) => {
          if (String(file) === p) fs.unlinkSync(p);
          return (original as (...a: unknown[]) => number)(file, ...rest);
        }) as typeof fs.openSync,
      () => inspectFile(root, '/data/ghost'),
    );
    assert.deepEqual(o, { status: 'vanished', path: '/data/ghost' });
  });

  test('changed: replaced by another file, a symlink or a FIFO between lstat and open', () => {
    const swaps: [string, (p: string) => void][] = [
      ['another file', (p) => fs.renameSync(writeFile(R, 'data/other', 'other'), p)],
      ['a symlink', (p) => (fs.unlinkSync(p), fs.symlinkSync('/etc/shadow', p))],
      ['a FIFO', (p) => (fs.unlinkSync(p), mkfifo(p))],
    ];
    for (const [what, swap] of swaps) {
      const p = writeFile(R, 'data/swapped', 'original');
      const o = withFsHook(
        'openSync',
        (original) =>
          ((file: fs.PathLike, ...rest: unknown[]) => {
            if (String(file) === p) swap(p);
            return (original as (...a: unknown[]) => number)(file, ...rest);
          }) as typeof fs.openSync,
        () => inspectFile(root, '/data/swapped'),
      );
      assert.equal(o.status, 'changed', `${what}: ${JSON.stringify(o)}`);
      fs.rmSync(p);
    }
  });

  test('changed-while-hashing: appended, truncated or rewritten during the read', () => {
    const changes: [string, (p: string) => void][] = [
      ['appended', (p) => fs.appendFileSync(p, 'more')],
      ['truncated', (p) => fs.truncateSync(p, 10)],
      [
        'rewritten, same size',
        (p) => {
          fs.writeFileSync(p, Buffer.alloc(fs.statSync(p).size, 0x41));
          const later = new Date(Date.now() + 10_000);
          fs.utimesSync(p, later, later);
        },
      ],
    ];
    // Both read paths: one read and a one-shot hash (small), chunks into a streaming hash (big).
    for (const [what, change] of changes.flatMap(([w, c]) => [
      [`${w}, small`, c] as const,
      [`${w}, big`, c] as const,
    ])) {
      const size = what.endsWith('small') ? 5000 : 3 * HASH_CHUNK_SIZE;
      const p = writeFile(R, 'data/moving', Buffer.alloc(size, 7));
      let reads = 0;
      const o = withFsHook(
        'readSync',
        (original) =>
          ((...args: Parameters<typeof fs.readSync>) => {
            if (reads++ === (size > HASH_CHUNK_SIZE ? 1 : 0)) change(p);
            return original(...args);
          }) as typeof fs.readSync,
        () => inspectFile(root, '/data/moving'),
      );
      assert.equal(o.status, 'changed-while-hashing', `${what}: ${JSON.stringify(o)}`);
    }
  });

  test('a file appended to by another process: ok with a consistent hash, or changed-while-hashing', async () => {
    const p = writeFile(R, 'var/log/growing', Buffer.alloc(32 * 1024 * 1024, 1));
    const writer = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(p)}, 'a'); const b = Buffer.alloc(4096, 2);
         const s = new Int32Array(new SharedArrayBuffer(4));
         for (;;) { fs.writeSync(fd, b); Atomics.wait(s, 0, 0, 1); }`,
      ],
      { stdio: 'ignore' },
    );
    try {
      await new Promise((r) => setTimeout(r, 100));
      const seen: FileObservation[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && (seen.length < 5 || !seen.some((o) => o.status !== 'ok'))) {
        seen.push(inspectFile(root, '/var/log/growing'));
        await new Promise((r) => setImmediate(r));
      }
      writer.kill();
      await new Promise((r) => writer.once('exit', r));
      const final = fs.readFileSync(p);
      for (const o of seen) {
        assert.ok(o.status === 'ok' || o.status === 'changed-while-hashing', JSON.stringify(o));
        if (o.status === 'ok') assert.equal(o.type === 'file' && o.sha256, sha256(final.subarray(0, o.size)));
      }
      assert.ok(
        seen.some((o) => o.status === 'changed-while-hashing'),
        'a concurrent append was detected at least once',
      );
    } finally {
      writer.kill();
    }
  });

  test('the root itself and directories', () => {
    const o = ok(inspectFile(root, '/'), 'dir');
    assert.equal(o.resolvedPath, '/');
    ok(inspectFile(root, '/usr/bin'), 'dir');
    ok(inspectFile(root, '/usr/bin/'), 'dir');
  });
});

describe('decodeCapability', () => {
  test('revision 2, effective, two capabilities', () => {
    // cap_net_bind_service (10) and cap_net_raw (13) permitted, effective flag.
    const buf = Buffer.alloc(20);
    buf.writeUInt32LE(0x02000001, 0);
    buf.writeUInt32LE((1 << 10) | (1 << 13), 4);
    const c = decodeCapability(buf);
    assert.equal(c.valid, true);
    assert.equal(c.version, 2);
    assert.deepEqual(c.permitted, ['cap_net_bind_service', 'cap_net_raw']);
    assert.deepEqual(c.inheritable, []);
    assert.equal(c.text, 'cap_net_bind_service,cap_net_raw=ep');
  });

  test('mixed flags, high capability numbers, revision 3 root uid', () => {
    const buf = Buffer.alloc(24);
    buf.writeUInt32LE(0x03000000, 0);
    buf.writeUInt32LE(1 << 0, 4); // cap_chown permitted
    buf.writeUInt32LE((1 << 0) | (1 << 5), 8); // cap_chown, cap_kill inheritable
    buf.writeUInt32LE(1 << (39 - 32), 12); // cap_bpf permitted
    buf.writeUInt32LE(1 << (45 - 32), 16); // unknown 45 inheritable
    buf.writeUInt32LE(100000, 20);
    const c = decodeCapability(buf);
    assert.equal(c.version, 3);
    assert.equal(c.rootUid, 100000);
    assert.equal(c.effective, false);
    assert.deepEqual(c.permitted, ['cap_chown', 'cap_bpf']);
    assert.deepEqual(c.inheritable, ['cap_chown', 'cap_kill', 'cap_45']);
    assert.equal(c.text, 'cap_chown=ip cap_kill,cap_45=i cap_bpf=p [rootid=100000]');
  });

  test('revision 1 and malformed values', () => {
    const v1 = Buffer.alloc(12);
    v1.writeUInt32LE(0x01000001, 0);
    v1.writeUInt32LE(1 << 7, 4);
    assert.equal(decodeCapability(v1).text, 'cap_setuid=ep');
    assert.deepEqual(decodeCapability(Buffer.from('0100', 'hex')), {
      raw: '0100',
      version: undefined,
      valid: false,
    });
    const wrongLength = Buffer.alloc(16);
    wrongLength.writeUInt32LE(0x02000001, 0);
    assert.equal(decodeCapability(wrongLength).valid, false);
    const badFlags = Buffer.alloc(20);
    badFlags.writeUInt32LE(0x02000002, 0);
    assert.equal(decodeCapability(badFlags).valid, false);
    const unknown = Buffer.alloc(20);
    unknown.writeUInt32LE(0x09000001, 0);
    assert.deepEqual(decodeCapability(unknown), {
      raw: unknown.toString('hex'),
      version: undefined,
      valid: false,
    });
  });

  test('no capabilities at all', () => {
    const buf = Buffer.alloc(20);
    buf.writeUInt32LE(0x02000000, 0);
    assert.equal(decodeCapability(buf).text, '=');
  });
});
