import assert from 'node:assert/strict';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSigningKey, type GeneratedSigningKey } from '@sysattest/core';
import {
  TrustError,
  addTrustedKey,
  clientHome,
  defaultTrustDir,
  CACHE_SEAL_FILE,
  listTrustedKeys,
  loadCacheSealSecret,
  loadKeyring,
  removeTrustedKey,
} from './store.js';

describe('trust store', () => {
  let tmp: string;
  let keyA: GeneratedSigningKey;
  let keyB: GeneratedSigningKey;
  let fileA: string;
  let fileB: string;
  let secretFile: string;

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sysattest-trust-'));
    keyA = await generateSigningKey({ name: 'generator A' });
    keyB = await generateSigningKey({ name: 'generator B' });
    fileA = path.join(tmp, 'a.asc');
    fileB = path.join(tmp, 'b.asc');
    secretFile = path.join(tmp, 'secret.asc');
    await fs.writeFile(fileA, keyA.armoredPublicKey);
    await fs.writeFile(fileB, keyB.armoredPublicKey);
    await fs.writeFile(secretFile, keyA.armoredSecretKey);
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('default directory: $SYSATTEST_CLIENT_HOME, else ~/.config/sysattest', () => {
    assert.equal(defaultTrustDir({ SYSATTEST_CLIENT_HOME: '/x' }), '/x/trusted-keys');
    assert.equal(clientHome({ XDG_CONFIG_HOME: '/cfg' }), '/cfg/sysattest');
    assert.equal(defaultTrustDir({}), path.join(os.homedir(), '.config', 'sysattest', 'trusted-keys'));
  });

  it('refuses to load a keyring when no key is pinned, saying how to pin one', async () => {
    const dir = path.join(tmp, 'empty');
    await assert.rejects(loadKeyring({ dir }), (e: unknown) => {
      assert.ok(e instanceof TrustError);
      assert.equal(e.code, 'NO_TRUSTED_KEYS');
      assert.match(e.message, /sysattest trust add KEYFILE/);
      return true;
    });
  });

  it('adds, lists, loads and removes pinned keys, with the right modes', async () => {
    const dir = path.join(tmp, 'store', 'trusted-keys');
    assert.equal(await addTrustedKey(fileA, { dir }), keyA.fingerprint);
    assert.equal(await addTrustedKey(fileB, { dir }), keyB.fingerprint);
    assert.equal(await addTrustedKey(fileA, { dir }), keyA.fingerprint); // again: idempotent
    const listed = await listTrustedKeys({ dir });
    assert.deepEqual(
      listed.map((k) => k.fingerprint),
      [keyA.fingerprint, keyB.fingerprint].sort(),
    );
    assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
    for (const k of listed) {
      assert.equal(path.basename(k.file), `${k.fingerprint}.asc`);
      assert.equal((await fs.stat(k.file)).mode & 0o777, 0o644);
      assert.doesNotMatch(await fs.readFile(k.file, 'utf8'), /PRIVATE/);
    }
    const keyring = await loadKeyring({ dir });
    assert.ok(keyring.has(keyA.fingerprint) && keyring.has(keyB.fingerprint));

    await removeTrustedKey(keyA.fingerprint.toLowerCase(), { dir });
    assert.deepEqual(
      (await listTrustedKeys({ dir })).map((k) => k.fingerprint),
      [keyB.fingerprint],
    );
    await assert.rejects(removeTrustedKey(keyA.fingerprint, { dir }), { code: 'KEY_NOT_PINNED' });
    await assert.rejects(removeTrustedKey('nope', { dir }), { code: 'INVALID_KEY' });
  });

  it('refuses a secret key', async () => {
    const dir = path.join(tmp, 'secret-store');
    await assert.rejects(addTrustedKey(secretFile, { dir }), { code: 'SECRET_KEY_REFUSED' });
    assert.deepEqual(await listTrustedKeys({ dir }), []);
  });

  it('refuses a file that is not a key, or holds two keys', async () => {
    const dir = path.join(tmp, 'bad-store');
    const junk = path.join(tmp, 'junk.asc');
    await fs.writeFile(junk, 'hello');
    await assert.rejects(addTrustedKey(junk, { dir }), { code: 'INVALID_KEY' });
    const two = path.join(tmp, 'two.asc');
    await fs.writeFile(two, `${keyA.armoredPublicKey}\n${keyB.armoredPublicKey}`);
    await assert.rejects(addTrustedKey(two, { dir }), { code: 'INVALID_KEY' });
  });

  it('refuses a pinned file that does not hold the key it is named after', async () => {
    const dir = path.join(tmp, 'swapped');
    await addTrustedKey(fileA, { dir });
    await fs.writeFile(path.join(dir, `${keyA.fingerprint}.asc`), keyB.armoredPublicKey);
    await assert.rejects(listTrustedKeys({ dir }), { code: 'TRUST_STORE_ERROR' });
    await assert.rejects(loadKeyring({ dir }), { code: 'TRUST_STORE_ERROR' });
  });

  it('--keyring FILE is used instead of the pinned keys', async () => {
    const keyring = await loadKeyring({ dir: path.join(tmp, 'none'), keyringFile: fileB });
    assert.deepEqual(keyring.fingerprints, [keyB.fingerprint]);
  });

  it('the cache seal secret: made once (32 bytes, 0600) with the pinned keys, then reused; not listed as a key', async () => {
    const dir = path.join(tmp, 'seal');
    const first = await loadCacheSealSecret({ dir });
    assert.ok(first);
    assert.equal(first.length, 32);
    const st = await fs.stat(path.join(dir, CACHE_SEAL_FILE));
    assert.equal(st.mode & 0o777, 0o600);
    assert.deepEqual(await loadCacheSealSecret({ dir }), first);
    assert.deepEqual(await listTrustedKeys({ dir }), []);
  });

  it('a seal secret others can read, a symlink, or the wrong size is not used and not replaced', async () => {
    const dir = path.join(tmp, 'seal-bad');
    await loadCacheSealSecret({ dir });
    const file = path.join(dir, CACHE_SEAL_FILE);
    await fs.chmod(file, 0o644);
    assert.equal(await loadCacheSealSecret({ dir }), undefined);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o644, 'left as it was, for the owner to look at');
    await fs.rm(file);
    await fs.symlink('/etc/hostname', file);
    assert.equal(await loadCacheSealSecret({ dir }), undefined);
    await fs.rm(file);
    await fs.writeFile(file, 'short', { mode: 0o600 });
    assert.equal(await loadCacheSealSecret({ dir }), undefined);
  });

  it('no seal secret when the trust directory cannot be written (the cache then verifies in full)', async () => {
    const parent = path.join(tmp, 'seal-ro');
    await fs.mkdir(parent);
    await fs.writeFile(path.join(parent, 'trusted-keys'), 'a file where the directory should be');
    assert.equal(await loadCacheSealSecret({ dir: path.join(parent, 'trusted-keys') }), undefined);
  });
});
