import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EXIT } from '@sysattest/core';
import { ServerConfigError } from './config.js';
import { defaultSessionSecretFile, loadSessionSecret, SESSION_SECRET_FILE_NAME } from './session-secret.js';

function refused(file: string, pattern: RegExp, createIfMissing = false): void {
  assert.throws(
    () => loadSessionSecret(file, { createIfMissing }),
    (e: unknown) => {
      assert.ok(e instanceof ServerConfigError);
      assert.equal(e.exitCode, EXIT.USAGE);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

const asRoot = process.getuid?.() === 0;

describe('dashboard session secret file', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-session-secret-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lives next to the SQLite file, or in ./data/ without one', () => {
    assert.equal(defaultSessionSecretFile('/var/lib/s/x.db'), `/var/lib/s/${SESSION_SECRET_FILE_NAME}`);
    assert.equal(defaultSessionSecretFile('sqlite:/srv/a.db'), `/srv/${SESSION_SECRET_FILE_NAME}`);
    assert.equal(
      defaultSessionSecretFile('postgres://u@db/s'),
      path.resolve('data', SESSION_SECRET_FILE_NAME),
    );
  });

  it('is made on first start (32 random bytes, 0600, in a 0700 directory) and read back after', () => {
    const file = path.join(dir, 'state', SESSION_SECRET_FILE_NAME);
    const made = loadSessionSecret(file, { createIfMissing: true });
    assert.equal(made.created, true);
    assert.equal(made.secret.length, 32);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o077, 0);
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)),
      [SESSION_SECRET_FILE_NAME],
      'no temporary file left',
    );
    const again = loadSessionSecret(file, { createIfMissing: true });
    assert.equal(again.created, false);
    assert.ok(again.secret.equals(made.secret));
  });

  it('a configured file must exist: it is never made', () => {
    const file = path.join(dir, 'configured.key');
    refused(file, /does not exist: make it with \(umask 077; head -c 32 \/dev\/urandom > /);
    assert.equal(fs.existsSync(file), false);
  });

  it('refuses a file group or others may read or write, naming the fix', () => {
    for (const mode of [0o640, 0o604, 0o620]) {
      const file = path.join(dir, `mode-${mode.toString(8)}.key`);
      fs.writeFileSync(file, Buffer.alloc(32, 1));
      fs.chmodSync(file, mode);
      refused(file, new RegExp(`mode 0${mode.toString(8)}\\): chmod 600 `));
    }
  });

  it('refuses a file of another user', { skip: !asRoot && 'needs root to give a file away' }, () => {
    const file = path.join(dir, 'nobody.key');
    fs.writeFileSync(file, Buffer.alloc(32, 1), { mode: 0o600 });
    fs.chownSync(file, 65534, 65534);
    refused(file, /belongs to uid 65534, not to the server's user \(uid 0\)/);
  });

  it('refuses a short file, a directory, and takes any longer content as it is', () => {
    const short = path.join(dir, 'short.key');
    fs.writeFileSync(short, Buffer.alloc(31, 1), { mode: 0o600 });
    refused(short, /holds 31 bytes; it needs at least 32/);
    const sub = path.join(dir, 'a-directory');
    fs.mkdirSync(sub, { mode: 0o700 });
    refused(sub, /is not a regular file/);
    const hex = path.join(dir, 'hex.key');
    fs.writeFileSync(hex, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    assert.equal(loadSessionSecret(hex, { createIfMissing: false }).secret.length, 65);
  });
});
