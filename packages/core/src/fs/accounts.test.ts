import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PathError } from '../errors.js';
import { parseIdFile, readRootAccounts } from './accounts.js';
import { makeTempDir, mkfifo, symlink, writeFile } from '../testkit/hostile-tree.js';
import { RootDir } from './in-root.js';

describe('root accounts', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  before(() => {
    tmp = makeTempDir();
  });
  after(() => tmp.cleanup());

  test('parses passwd and group lines; first entry for an id wins; junk is skipped', () => {
    const text = [
      'root:x:0:0:root:/root:/bin/bash',
      '# a comment',
      '',
      'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
      'toor:x:0:0::/root:/bin/sh', // second name for uid 0: getpwuid gives the first
      '+nisuser::::::',
      '-excluded',
      'broken line',
      'neg:x:-1:0::/:/bin/false',
      'big:x:4294967295:0::/:/bin/false', // (uid_t)-1 is not an id
      'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
      ':x:7:7::/:/bin/false',
    ].join('\n');
    assert.deepEqual(
      [...parseIdFile(text)],
      [
        [0, 'root'],
        [1, 'daemon'],
        [65534, 'nobody'],
      ],
    );
    assert.deepEqual(
      [...parseIdFile('root:x:0:\nadm:x:4:syslog,alice\r\n')],
      [
        [0, 'root'],
        [4, 'adm'],
      ],
    );
  });

  test("reads the root's own files, through symlinks inside the root", () => {
    const R = path.join(tmp.dir, 'a');
    writeFile(
      R,
      'usr/share/base-passwd/passwd',
      'root:x:0:0:root:/root:/bin/bash\nman:x:6:12::/:/bin/false\n',
    );
    symlink(R, 'etc/passwd', '/usr/share/base-passwd/passwd');
    writeFile(R, 'etc/group', 'root:x:0:\nman:x:12:\n');
    const accounts = readRootAccounts(RootDir.open(R));
    assert.equal(accounts.users.get(6), 'man');
    assert.equal(accounts.groups.get(12), 'man');
    assert.equal(accounts.users.get(12), undefined);
  });

  test('a root without accounts has no names; a hostile one is refused', (t) => {
    const empty = path.join(tmp.dir, 'empty');
    writeFile(empty, 'usr/.keep', '');
    const none = readRootAccounts(RootDir.open(empty));
    assert.equal(none.users.size + none.groups.size, 0);

    const big = path.join(tmp.dir, 'big');
    writeFile(big, 'etc/passwd', 'x'.repeat(2000));
    assert.throws(
      () => readRootAccounts(RootDir.open(big), 1000),
      (e) => e instanceof PathError && e.code === 'TOO_LARGE',
    );

    const escaping = path.join(tmp.dir, 'escaping');
    // On the host this would name the host's /etc/hostname; inside the root there is none.
    symlink(escaping, 'etc/passwd', '../../../../../../../../etc/hostname');
    assert.equal(readRootAccounts(RootDir.open(escaping)).users.size, 0);
    // Inside the root, this names itself.
    const self = path.join(tmp.dir, 'self');
    symlink(self, 'etc/passwd', '/../../../../etc/passwd');
    assert.throws(
      () => readRootAccounts(RootDir.open(self)),
      (e) => e instanceof PathError && e.code === 'SYMLINK_LOOP',
    );

    const fifo = path.join(tmp.dir, 'fifo');
    if (!mkfifo(path.join(fifo, 'etc/passwd'))) return t.skip('mkfifo is not available');
    assert.throws(
      () => readRootAccounts(RootDir.open(fifo)),
      (e) => e instanceof PathError && e.code === 'NOT_A_REGULAR_FILE',
    );
  });
});
