import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  signManifest,
  verifyManifest,
  type Manifest,
  type VerifiedManifest,
} from '@sysattest/core';
import { ManifestCache, defaultCacheDir } from './manifest-cache.js';

const PLATFORM = { distro: 'debian', release: 'bookworm', arch: 'amd64' };

function manifest(fpr: string, name: string, version: string): Manifest {
  return {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: 'debian/bookworm/amd64',
    package: { name, version, architecture: 'amd64', source: { name, version } },
    provenance: {
      generatedAt: '2026-01-01T00:00:00Z',
      generator: { name: 'test', version: '0' },
      keyFingerprint: fpr,
      image: { id: 'img' },
      installer: 'apt 2.6.1',
    },
    entries: [
      { type: 'file', path: '/usr/bin/x', mode: '0755', uid: 0, gid: 0, size: 1, sha256: 'a'.repeat(64) },
    ],
  };
}

describe('manifest cache', () => {
  let tmp: string;
  let key: SigningKey;
  let keyring: TrustedKeyring;
  let other: TrustedKeyring;
  const made: VerifiedManifest[] = [];

  before(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sysattest-cache-'));
    const k = await generateSigningKey({ name: 'cache test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
    other = await TrustedKeyring.fromArmored((await generateSigningKey({ name: 'other' })).armoredPublicKey);
    for (const [n, v] of [
      ['a', '1.0'],
      ['b', '2.0'],
      ['c', '3.0'],
    ] as const) {
      const s = await signManifest(manifest(key.fingerprint, n, v), key);
      made.push(await verifyManifest(s.bytes, s.signature, keyring));
    }
  });
  after(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
  });

  it('default directory', () => {
    assert.equal(defaultCacheDir({ SYSATTEST_CLIENT_HOME: '/h' }), '/h/cache');
    assert.equal(defaultCacheDir({ XDG_CACHE_HOME: '/c' }), '/c/sysattest');
  });

  it('round trip: put, then get re-verifies and returns the same bytes', async () => {
    const cache = new ManifestCache(path.join(tmp, 'rt'));
    const m = made[0] as VerifiedManifest;
    await cache.put(m);
    const got = await cache.get(PLATFORM, { name: 'a', version: '1.0', arch: 'amd64' }, keyring);
    assert.ok(got);
    assert.equal(got.digest, m.digest);
    assert.deepEqual(got.content, m.content);
    assert.deepEqual(await fs.readdir(path.join(tmp, 'rt', 'objects')), [m.digest, `${m.digest}.asc`].sort());
    // misses: another version, another platform
    assert.equal(await cache.get(PLATFORM, { name: 'a', version: '1.1', arch: 'amd64' }, keyring), undefined);
    assert.equal(
      await cache.get(
        { ...PLATFORM, release: 'trixie' },
        { name: 'a', version: '1.0', arch: 'amd64' },
        keyring,
      ),
      undefined,
    );
  });

  it('has(): what is indexed, for this key and platform only, including entries put later', async () => {
    const cache = new ManifestCache(path.join(tmp, 'has'));
    const a = { name: 'a', version: '1.0', arch: 'amd64' };
    assert.equal(cache.has(PLATFORM, a), false); // no directory yet
    await cache.put(made[0] as VerifiedManifest);
    assert.equal(cache.has(PLATFORM, a), true);
    assert.equal(cache.has(PLATFORM, { ...a, version: '1.1' }), false);
    assert.equal(cache.has({ ...PLATFORM, release: 'trixie' }, a), false);
    await cache.put(made[1] as VerifiedManifest);
    assert.equal(cache.has(PLATFORM, { name: 'b', version: '2.0', arch: 'amd64' }), true);
    assert.equal(new ManifestCache(path.join(tmp, 'has')).has(PLATFORM, a), true);
  });

  it('a tampered object is ignored and removed, never trusted', async () => {
    const dir = path.join(tmp, 'tamper');
    const cache = new ManifestCache(dir);
    const m = made[1] as VerifiedManifest;
    await cache.put(m);
    const object = path.join(dir, 'objects', m.digest);
    const bytes = Buffer.from(await fs.readFile(object));
    const at = bytes.length - 5;
    bytes.writeUInt8(bytes.readUInt8(at) ^ 1, at);
    await fs.writeFile(object, bytes);
    assert.equal(await cache.get(PLATFORM, { name: 'b', version: '2.0', arch: 'amd64' }, keyring), undefined);
    await assert.rejects(fs.stat(object), { code: 'ENOENT' });
    assert.deepEqual(await fs.readdir(path.join(dir, 'index')), []);
  });

  it('a tampered signature, or a key no longer pinned, is a miss', async () => {
    const dir = path.join(tmp, 'sig');
    const cache = new ManifestCache(dir);
    const m = made[2] as VerifiedManifest;
    await cache.put(m);
    assert.equal(await cache.get(PLATFORM, { name: 'c', version: '3.0', arch: 'amd64' }, other), undefined);
    await cache.put(m);
    await fs.writeFile(path.join(dir, 'objects', `${m.digest}.asc`), 'garbage');
    assert.equal(await cache.get(PLATFORM, { name: 'c', version: '3.0', arch: 'amd64' }, keyring), undefined);
  });

  it('a corrupt index entry is ignored and removed', async () => {
    const dir = path.join(tmp, 'index');
    const cache = new ManifestCache(dir);
    await cache.put(made[0] as VerifiedManifest);
    const [entry] = await fs.readdir(path.join(dir, 'index'));
    await fs.writeFile(path.join(dir, 'index', entry as string), '{not json');
    assert.equal(await cache.get(PLATFORM, { name: 'a', version: '1.0', arch: 'amd64' }, keyring), undefined);
    assert.deepEqual(await fs.readdir(path.join(dir, 'index')), []);
  });

  it('is bounded: the least recently used objects go first', async () => {
    const dir = path.join(tmp, 'bounded');
    const cache = new ManifestCache(dir, { maxEntries: 2 });
    for (const [i, m] of made.entries()) {
      await cache.put(m);
      const t = new Date(Date.now() - (10 - i) * 1000);
      await fs.utimes(path.join(dir, 'objects', m.digest), t, t);
    }
    await cache.prune();
    const objects = (await fs.readdir(path.join(dir, 'objects'))).filter((n) => !n.endsWith('.asc'));
    assert.equal(objects.length, 2);
    assert.equal((await fs.readdir(path.join(dir, 'index'))).length, 2);
    assert.ok(!objects.includes((made[0] as VerifiedManifest).digest));
    assert.equal(await cache.get(PLATFORM, { name: 'a', version: '1.0', arch: 'amd64' }, keyring), undefined);
    assert.ok(await cache.get(PLATFORM, { name: 'c', version: '3.0', arch: 'amd64' }, keyring));
  });

  describe('with a seal secret (reads that skip repeating the signature check)', () => {
    const secret = randomBytes(32);
    const key = { name: 'a', version: '1.0', arch: 'amd64' };
    const indexRecord = async (dir: string): Promise<{ file: string; record: Record<string, unknown> }> => {
      const [entry] = await fs.readdir(path.join(dir, 'index'));
      const file = path.join(dir, 'index', entry as string);
      return { file, record: JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown> };
    };

    it('stores a seal and the signature in the index, and a sealed read gives the same manifest', async () => {
      const dir = path.join(tmp, 'sealed');
      const cache = new ManifestCache(dir, { sealSecret: secret });
      const m = made[0] as VerifiedManifest;
      await cache.put(m, keyring);
      const { record } = await indexRecord(dir);
      assert.equal(record.signature, m.signature);
      assert.equal((record.seal as { signer: string }).signer, m.signerFingerprint);
      // The detached .asc stays too (a cache is readable without the secret, and by gpg).
      await fs.access(path.join(dir, 'objects', `${m.digest}.asc`));
      const got = await cache.get(PLATFORM, key, keyring);
      assert.ok(got);
      assert.deepEqual(got.content, m.content);
      assert.equal(got.digest, m.digest);
      assert.equal(got.signerFingerprint, m.signerFingerprint);
    });

    it('a tampered object, a tampered inline signature or a key no longer pinned is a miss, and removed', async () => {
      const m = made[1] as VerifiedManifest;
      const k = { name: 'b', version: '2.0', arch: 'amd64' };
      const dir = path.join(tmp, 'sealed-tamper');
      const cache = new ManifestCache(dir, { sealSecret: secret });
      await cache.put(m, keyring);
      const object = path.join(dir, 'objects', m.digest);
      const bytes = Buffer.from(await fs.readFile(object));
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 5) ^ 1, bytes.length - 5);
      await fs.writeFile(object, bytes);
      assert.equal(await cache.get(PLATFORM, k, keyring), undefined);
      await assert.rejects(fs.stat(object), { code: 'ENOENT' });

      await cache.put(m, keyring);
      const { file, record } = await indexRecord(dir);
      await fs.writeFile(file, JSON.stringify({ ...record, signature: 'garbage' }));
      await fs.writeFile(`${object}.asc`, 'garbage');
      assert.equal(await cache.get(PLATFORM, k, keyring), undefined);

      await cache.put(m, keyring);
      assert.equal(await cache.get(PLATFORM, k, other), undefined, 'the seal is not a key');
    });

    it('a broken seal is not trusted: the manifest is verified in full, and sealed again', async () => {
      const dir = path.join(tmp, 'sealed-broken');
      const cache = new ManifestCache(dir, { sealSecret: secret });
      const m = made[2] as VerifiedManifest;
      const k = { name: 'c', version: '3.0', arch: 'amd64' };
      await cache.put(m, keyring);
      const { file, record } = await indexRecord(dir);
      const seal = record.seal as { mac: string };
      await fs.writeFile(file, JSON.stringify({ ...record, seal: { ...seal, mac: '0'.repeat(64) } }));
      assert.ok(await cache.get(PLATFORM, k, keyring), 'bytes and signature are good: a hit');
      const again = await indexRecord(dir);
      assert.equal((again.record.seal as { mac: string }).mac, seal.mac, 'sealed again, as before');

      // Another secret (another machine's cache copied here): verified in full, then resealed.
      const elsewhere = new ManifestCache(dir, { sealSecret: randomBytes(32) });
      assert.ok(await elsewhere.get(PLATFORM, k, keyring));
      assert.notEqual(((await indexRecord(dir)).record.seal as { mac: string }).mac, seal.mac);
    });

    it('a cache written without a secret is sealed on its first read with one', async () => {
      const dir = path.join(tmp, 'unsealed');
      await new ManifestCache(dir).put(made[0] as VerifiedManifest);
      assert.equal((await indexRecord(dir)).record.seal, undefined);
      const cache = new ManifestCache(dir, { sealSecret: secret });
      assert.ok(await cache.get(PLATFORM, key, keyring));
      assert.ok((await indexRecord(dir)).record.seal);
      assert.ok(await cache.get(PLATFORM, key, keyring));
    });

    it('refuses a secret shorter than 32 bytes', () => {
      assert.throws(() => new ManifestCache(tmp, { sealSecret: randomBytes(8) }), TypeError);
    });
  });
});
