import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { SignatureError, verifyManifest } from '@sysattest/core';
import { isStoreError } from './store-error.js';
import { TEST_DIALECTS, TestGenerator, withStore } from '../testkit/store.js';

for (const dialect of TEST_DIALECTS) {
  describe(`trusted generator keys (${dialect})`, () => {
    let gen: TestGenerator;
    let other: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create('generator one');
      other = await TestGenerator.create('generator two');
    });

    it('make the keyring uploads are verified against; removal stops trusting a key', () =>
      withStore(dialect, async ({ store }) => {
        assert.equal((await store.trustedKeyring()).size, 0);
        const added = await store.addTrustedKey(gen.armoredPublicKey);
        assert.equal(added.fingerprint, gen.key.fingerprint);
        await store.addTrustedKey(other.armoredPublicKey);
        const m = await gen.manifest('debian/bookworm/amd64', { name: 'jq', version: '1.6-2.1' });

        const keyring = await store.trustedKeyring();
        assert.deepEqual(
          [...keyring.fingerprints].sort(),
          [gen.key.fingerprint, other.key.fingerprint].sort(),
        );
        assert.equal(
          (await verifyManifest(m.bytes, m.signature, keyring)).signerFingerprint,
          gen.key.fingerprint,
        );

        await store.removeTrustedKey(gen.key.fingerprint.toLowerCase());
        await assert.rejects(
          verifyManifest(m.bytes, m.signature, await store.trustedKeyring()),
          (e: unknown) => e instanceof SignatureError && e.code === 'UNKNOWN_SIGNER',
        );
        await assert.rejects(store.removeTrustedKey(gen.key.fingerprint), (e: unknown) =>
          isStoreError(e, 'NOT_FOUND'),
        );
        assert.deepEqual(
          (await store.listTrustedKeys()).map((k) => k.fingerprint),
          [other.key.fingerprint],
        );
        const history = await store.listTrustedKeys({ includeRemoved: true });
        assert.ok(history.find((k) => k.fingerprint === gen.key.fingerprint)?.removedAt);

        // Re-adding trusts it again.
        await store.addTrustedKey(gen.armoredPublicKey);
        assert.equal((await store.trustedKeyring()).size, 2);
        assert.equal((await store.stats()).trustedKeys, 2);
      }));

    it('store only public material, and refuse what is not one usable key', () =>
      withStore(dialect, async ({ store }) => {
        const added = await store.addTrustedKey(gen.armoredSecretKey);
        assert.equal(added.fingerprint, gen.key.fingerprint);
        assert.ok(!added.armored.includes('PRIVATE KEY'));
        for (const bad of ['', 'not a key', `${gen.armoredPublicKey}\n${other.armoredPublicKey}`]) {
          await assert.rejects(store.addTrustedKey(bad), (e: unknown) => isStoreError(e, 'INVALID'));
        }
      }));
  });
}
