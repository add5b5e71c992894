import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PathError } from '../errors.js';
import {
  buildHostileRoot,
  makeTempDir,
  mkfifo,
  symlink,
  withFsHook,
  writeFile,
} from '../testkit/hostile-tree.js';
import { MAX_PATH_LENGTH, RootDir, splitRootPath } from './in-root.js';

function pathError(code: PathError['code']): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof PathError, `expected a PathError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

describe('RootDir on a hostile tree', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let R: string;
  let root: RootDir;

  before(() => {
    tmp = makeTempDir();
    R = path.join(tmp.dir, 'root');
    fs.mkdirSync(R);
    buildHostileRoot(R);
    root = RootDir.open(R);
  });
  after(() => tmp.cleanup());

  test('hostPath is the real path of the root, even through a symlink', () => {
    const link = path.join(tmp.dir, 'root-link');
    fs.symlinkSync(R, link);
    assert.equal(RootDir.open(link).hostPath, fs.realpathSync(R));
    assert.throws(() => RootDir.open(path.join(tmp.dir, 'nope')), pathError('NOT_FOUND'));
    assert.throws(() => RootDir.open(path.join(R, 'etc/passwd')), pathError('NOT_A_DIRECTORY'));
  });

  test('an absolute symlink resolves inside the root, and only when asked', () => {
    assert.equal(root.resolve('/usr/bin/evil', { followFinal: true }), path.join(R, 'etc/shadow'));
    assert.equal(root.resolve('usr/bin/evil'), path.join(R, 'usr/bin/evil'));
    assert.equal(root.canonical('/usr/bin/evil', { followFinal: true }), '/etc/shadow');
    assert.equal(root.canonical('/usr/bin/evil'), '/usr/bin/evil');
  });

  test('.. chains are clamped at the root', () => {
    assert.equal(root.resolve('/usr/lib/climb', { followFinal: true }), path.join(R, 'etc/passwd'));
    assert.equal(root.resolve('../../../../etc/passwd'), path.join(R, 'etc/passwd'));
    assert.equal(root.resolve('/usr/../../../etc/./passwd'), path.join(R, 'etc/passwd'));
    assert.equal(root.resolve('..'), R);
    assert.equal(root.canonical('/..'), '/');
  });

  test('symlink loops end with SYMLINK_LOOP, never hang', () => {
    assert.throws(() => root.resolve('/loop/a', { followFinal: true }), pathError('SYMLINK_LOOP'));
    assert.throws(() => root.resolve('/loop/self', { followFinal: true }), pathError('SYMLINK_LOOP'));
    assert.throws(() => root.resolve('/loop/a/x'), pathError('SYMLINK_LOOP'));
    assert.throws(() => root.resolveDirectory('/loop/self'), pathError('SYMLINK_LOOP'));
    // The final component is not followed by default: a loop is just a symlink.
    assert.equal(root.resolve('/loop/a'), path.join(R, 'loop/a'));
  });

  test('40 symlinks resolve, 41 do not (as the kernel)', () => {
    assert.equal(root.resolve('/chain/m0', { followFinal: true }), path.join(R, 'chain/target'));
    assert.throws(() => root.resolve('/chain/l0', { followFinal: true }), pathError('SYMLINK_LOOP'));
    // Cross-check with the kernel, which resolves these relative links the same way.
    assert.equal(fs.readFileSync(path.join(R, 'chain/m0'), 'utf8'), 'end of the chain\n');
    assert.throws(() => fs.readFileSync(path.join(R, 'chain/l0')), /ELOOP/);
  });

  test('usrmerge: /bin/ls is /usr/bin/ls', () => {
    assert.equal(root.resolve('/bin/ls'), path.join(R, 'usr/bin/ls'));
    assert.equal(root.canonical('/bin/ls'), '/usr/bin/ls');
    assert.deepEqual(root.resolveDirectory('/bin'), ['usr', 'bin']);
  });

  test('an intermediate symlink to / stays inside the root', () => {
    assert.equal(root.resolve('/lib/etc/shadow'), path.join(R, 'etc/shadow'));
    assert.equal(root.resolve('/lib/lib/lib/usr/bin/ls'), path.join(R, 'usr/bin/ls'));
    assert.equal(root.resolve('/lib/../lib/../etc/passwd'), path.join(R, 'etc/passwd'));
  });

  test('a symlink naming the root by its host path does not escape', () => {
    symlink(R, 'hostpath', path.join(R, 'etc/shadow'));
    // Absolute targets restart at the root: ROOT/<host path of ROOT>/etc/shadow, whose first
    // directory (ROOT/tmp) does not exist.
    assert.throws(() => root.resolve('/hostpath', { followFinal: true }), pathError('NOT_FOUND'));
    assert.equal(root.exists('/hostpath'), false);
  });

  test('a symlink to a host file absent from the root does not exist', () => {
    const hostOnly = path.join(tmp.dir, 'host-only');
    fs.writeFileSync(hostOnly, 'outside');
    symlink(R, 'to-host', hostOnly);
    assert.equal(root.exists('/to-host'), false);
    assert.throws(() => root.readFile('/to-host', 100), pathError('NOT_FOUND'));
    assert.equal(root.exists('/usr/bin/evil'), true); // ROOT/etc/shadow
  });

  test('NUL bytes and over-long paths are refused', () => {
    assert.throws(() => root.resolve('/etc/pass\0wd'), pathError('INVALID_PATH'));
    assert.throws(() => root.resolve('/' + 'a/'.repeat(MAX_PATH_LENGTH)), pathError('INVALID_PATH'));
    // Length counts UTF-8 bytes: 1500 three-byte characters are 4500 bytes.
    assert.throws(() => root.resolve('/' + '€'.repeat(1500)), pathError('INVALID_PATH'));
    assert.throws(() => splitRootPath('x'.repeat(MAX_PATH_LENGTH + 1)), pathError('INVALID_PATH'));
    assert.throws(() => root.resolve('/usr/' + 'x'.repeat(300) + '/y'), pathError('INVALID_PATH'));
  });

  test('a path through a regular file is NOT_A_DIRECTORY, a missing directory NOT_FOUND', () => {
    assert.throws(() => root.resolve('/etc/passwd/x'), pathError('NOT_A_DIRECTORY'));
    assert.throws(() => root.resolve('/etc/passwd/x/y'), pathError('NOT_A_DIRECTORY'));
    assert.throws(() => root.resolveDirectory('/etc/passwd'), pathError('NOT_A_DIRECTORY'));
    assert.throws(() => root.resolve('/nope/x'), pathError('NOT_FOUND'));
    assert.throws(() => root.resolveDirectory('/nope'), pathError('NOT_FOUND'));
    // A missing final component is fine.
    assert.equal(root.resolve('/etc/nope'), path.join(R, 'etc/nope'));
    assert.equal(root.resolve('/etc/nope', { followFinal: true }), path.join(R, 'etc/nope'));
  });

  test('resolveDirectory results are copies: mutating one does not poison the cache', () => {
    const first = root.resolveDirectory('/bin');
    first.push('evil');
    assert.deepEqual(root.resolveDirectory('/bin'), ['usr', 'bin']);
    assert.equal(root.resolve('/bin/ls'), path.join(R, 'usr/bin/ls'));
  });

  test('resolveFinal gives host and canonical paths without following the final component', () => {
    assert.deepEqual(root.resolveFinal('/bin/evil'), {
      host: path.join(R, 'usr/bin/evil'),
      canonical: '/usr/bin/evil',
    });
    assert.deepEqual(root.resolveFinal('/'), { host: R, canonical: '/' });
    assert.deepEqual(root.resolveFinal('/usr/../bin/ls'), {
      host: path.join(R, 'usr/bin/ls'),
      canonical: '/usr/bin/ls',
    });
    // Every spelling agrees with the general walk (resolve + canonical).
    for (const p of [
      'bin/ls',
      '/bin/ls',
      '//bin//ls',
      '/./bin/./ls',
      '/bin/.',
      '/bin/..',
      '/bin/../etc/passwd',
      '/usr/bin/',
      '/lib/lib/etc/shadow',
      '/usr/bin/evil',
      '/etc/nope',
      '.',
      '..',
      'ls',
      '/...',
      '/..a/b',
    ]) {
      let general: unknown;
      let fast: unknown;
      try {
        general = { host: root.resolve(p), canonical: root.canonical(p) };
      } catch (e) {
        general = (e as PathError).code;
      }
      try {
        fast = root.resolveFinal(p);
      } catch (e) {
        fast = (e as PathError).code;
      }
      assert.deepEqual(fast, general, p);
    }
    assert.throws(() => root.resolveFinal('/etc/passwd/x'), pathError('NOT_A_DIRECTORY'));
    assert.throws(() => root.resolveFinal('/etc/pass\0wd/x'), pathError('INVALID_PATH'));
  });

  test('readFile follows symlinks inside the root and caps the size', () => {
    assert.equal(root.readFile('/usr/bin/evil', 1000).toString(), 'root:*:19000:0:99999:7:::\n');
    assert.equal(
      root.readFile('/usr/lib/climb', 1000).toString().split('\n')[0],
      'root:x:0:0:root:/root:/bin/bash',
    );
    assert.throws(() => root.readFile('/etc/passwd', 10), pathError('TOO_LARGE'));
    assert.throws(() => root.readFile('/etc', 10), pathError('NOT_A_REGULAR_FILE'));
    assert.throws(() => root.readFile('/etc/nope', 10), pathError('NOT_FOUND'));
  });

  test('readFile refuses a FIFO without opening it (would block)', (t) => {
    if (!mkfifo(path.join(R, 'run/fifo'))) return t.skip('mkfifo is not available');
    const started = Date.now();
    assert.throws(() => root.readFile('/run/fifo', 10), pathError('NOT_A_REGULAR_FILE'));
    assert.ok(Date.now() - started < 5000);
  });

  test('the root of the host works as a root', () => {
    const host = RootDir.open('/');
    assert.equal(host.resolve('/etc/passwd'), '/etc/passwd');
    assert.equal(host.resolve('/'), '/');
    assert.deepEqual(host.resolveFinal('/etc/passwd'), { host: '/etc/passwd', canonical: '/etc/passwd' });
  });

  test('directory cache: each directory is walked once per RootDir', () => {
    writeFile(R, 'usr/share/doc/a', '');
    const fresh = RootDir.open(R);
    let lstats = 0;
    withFsHook(
      'lstatSync',
      (original) =>
        ((...args: Parameters<typeof fs.lstatSync>) => {
          lstats++;
          return original(...args);
        }) as typeof fs.lstatSync,
      () => {
        for (let i = 0; i < 100; i++) fresh.resolve(`/usr/share/doc/f${i}`);
        assert.equal(lstats, 3); // usr, share, doc — once
        for (let i = 0; i < 100; i++) fresh.resolve(`/bin/f${i}`);
        assert.equal(lstats, 6); // bin (a symlink), then usr and usr/bin — once
      },
    );
  });
});
