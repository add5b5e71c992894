import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { SigningKey, TrustedKeyring, generateSigningKey } from '../openpgp/index.js';
import {
  openSealedManifest,
  sealManifest,
  signManifest,
  verifyManifest,
  type Manifest,
  type VerifiedManifest,
} from '../manifest/index.js';
import type { DocumentSeal } from './signed-document.js';

function manifest(fpr: string): Manifest {
  return {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: 'debian/bookworm/amd64',
    package: { name: 'x', version: '1.0', architecture: 'amd64', source: { name: 'x', version: '1.0' } },
    provenance: {
      generatedAt: '2026-01-01T00:00:00Z',
      generator: { name: 'test', version: '0' },
      keyFingerprint: fpr,
      image: { id: 'img' },
      installer: 'apt 2.6.1',
    },
    entries: [
      { type: 'file', path: '/usr/bin/x', mode: '0755', uid: 0, gid: 0, size: 1, sha256: 'a'.repeat(64) },
      { type: 'symlink', path: '/usr/bin/y', mode: '0777', uid: 0, gid: 0, target: 'x' },
    ],
  };
}

describe('document seals (a verified manifest used again without verifying it again)', () => {
  const secret = randomBytes(32);
  let keyring: TrustedKeyring;
  let revokedKeyring: TrustedKeyring;
  let otherKeyring: TrustedKeyring;
  let verified: VerifiedManifest;
  let seal: DocumentSeal;

  before(async () => {
    const k = await generateSigningKey({ name: 'seal test' });
    const key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
    revokedKeyring = await TrustedKeyring.fromArmored([k.armoredPublicKey, k.armoredRevocationCertificate]);
    otherKeyring = await TrustedKeyring.fromArmored(
      (await generateSigningKey({ name: 'other' })).armoredPublicKey,
    );
    const signed = await signManifest(manifest(key.fingerprint), key);
    verified = await verifyManifest(signed.bytes, signed.signature, keyring);
    seal = sealManifest(verified, keyring, secret) as DocumentSeal;
    assert.ok(seal, 'a manifest verified against the keyring can be sealed');
  });

  it('a seal that holds gives back the same content, bytes, digest and signer', () => {
    const opened = openSealedManifest(verified.bytes, verified.signature, seal, keyring, secret);
    assert.ok(opened);
    assert.deepEqual(opened.content, verified.content);
    assert.deepEqual(opened.bytes, verified.bytes);
    assert.equal(opened.digest, verified.digest);
    assert.equal(opened.signerFingerprint, verified.signerFingerprint);
    assert.equal(opened.signedAt.getTime(), verified.signedAt.getTime());
    // Survives a JSON round trip (it is stored in the cache's index as JSON).
    const stored = JSON.parse(JSON.stringify(seal)) as unknown;
    assert.ok(openSealedManifest(verified.bytes, verified.signature, stored, keyring, secret));
  });

  it('does not hold when one byte of the document changes', () => {
    const bytes = new Uint8Array(verified.bytes);
    bytes[bytes.length - 5] = (bytes[bytes.length - 5] as number) ^ 1;
    assert.equal(openSealedManifest(bytes, verified.signature, seal, keyring, secret), undefined);
  });

  it('does not hold for another signature, another secret, or any field of the seal changed', () => {
    assert.equal(
      openSealedManifest(verified.bytes, `${verified.signature}\n`, seal, keyring, secret),
      undefined,
    );
    assert.equal(
      openSealedManifest(verified.bytes, verified.signature, seal, keyring, randomBytes(32)),
      undefined,
    );
    const changed: Partial<DocumentSeal>[] = [
      { created: '2020-01-01T00:00:00.000Z' },
      { expires: '2999-01-01T00:00:00.000Z' },
      { signingKey: 'F'.repeat(40) },
      { mac: '0'.repeat(64) },
      { v: 2 as 1 },
    ];
    for (const c of changed) {
      assert.equal(
        openSealedManifest(verified.bytes, verified.signature, { ...seal, ...c }, keyring, secret),
        undefined,
        JSON.stringify(c),
      );
    }
    for (const junk of [null, 'seal', 42, [], { ...seal, mac: 'zz' }]) {
      assert.equal(openSealedManifest(verified.bytes, verified.signature, junk, keyring, secret), undefined);
    }
  });

  it('does not hold once the signer is no longer pinned, or its key has changed (revoked since)', async () => {
    assert.equal(
      openSealedManifest(verified.bytes, verified.signature, seal, otherKeyring, secret),
      undefined,
    );
    assert.equal(
      openSealedManifest(verified.bytes, verified.signature, seal, revokedKeyring, secret),
      undefined,
      'a revocation learnt since changes the key the seal was made for',
    );
    // …and the full check then refuses the signature: the seal never stands in for it.
    await assert.rejects(verifyManifest(verified.bytes, verified.signature, revokedKeyring), {
      code: 'KEY_REVOKED',
    });
  });

  it('only a verified document can be sealed, and a secret must be 32 bytes or more', () => {
    assert.equal(sealManifest(verified, otherKeyring, secret), undefined, 'signer not in that keyring');
    assert.throws(() => sealManifest(verified, keyring, randomBytes(16)), TypeError);
    assert.throws(
      () => openSealedManifest(verified.bytes, verified.signature, seal, keyring, randomBytes(8)),
      TypeError,
    );
  });
});
