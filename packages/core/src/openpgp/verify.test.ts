import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as openpgp from 'openpgp';
import { KeyError, SignatureError } from '../errors.js';
import {
  MAX_SIGNATURE_BYTES,
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  verifyDetached,
  type GeneratedSigningKey,
} from './index.js';

function isSigError(code: SignatureError['code'], signer?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof SignatureError, `expected SignatureError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (signer !== undefined) assert.equal(e.signerFingerprint, signer);
    return true;
  };
}

const HOUR = 3600 * 1000;

function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] = (copy[index] ?? 0) ^ 0x20;
  return copy;
}
const data = new TextEncoder().encode('path=/usr/bin/ls sha256=0123456789abcdef\n');

let a: GeneratedSigningKey;
let b: GeneratedSigningKey;
let signerA: SigningKey;
let signerB: SigningKey;
let ringA: TrustedKeyring;
let sigA: string;

before(async () => {
  [a, b] = await Promise.all([generateSigningKey({ name: 'A' }), generateSigningKey({ name: 'B' })]);
  [signerA, signerB] = await Promise.all([
    SigningKey.fromArmored(a.armoredSecretKey),
    SigningKey.fromArmored(b.armoredSecretKey),
  ]);
  ringA = await TrustedKeyring.fromArmored(a.armoredPublicKey);
  sigA = await signerA.sign(data);
});

/** A key made with openpgp.js directly, `ageHours` old, so signatures can be dated in its past. */
async function oldKey(ageHours: number, expiresInSeconds = 0) {
  const date = new Date(Date.now() - ageHours * HOUR);
  const k = await openpgp.generateKey({
    type: 'ecc',
    curve: 'ed25519Legacy',
    userIDs: [{ name: 'old' }],
    subkeys: [],
    date,
    keyExpirationTime: expiresInSeconds,
    format: 'object',
  });
  return { ...k, date, fingerprint: k.publicKey.getFingerprint().toUpperCase() };
}

describe('verifyDetached: success', () => {
  test('accepts a good signature and names the key', async () => {
    const r = await verifyDetached(data, sigA, ringA);
    assert.equal(r.fingerprint, a.fingerprint);
    assert.equal(r.signingKeyFingerprint, a.fingerprint);
  });

  test('finds the signer among several pinned keys', async () => {
    const ring = await TrustedKeyring.fromArmored([b.armoredPublicKey, a.armoredPublicKey]);
    assert.equal((await verifyDetached(data, await signerB.sign(data), ring)).fingerprint, b.fingerprint);
    assert.equal((await verifyDetached(data, sigA, ring)).fingerprint, a.fingerprint);
  });

  test('several signature packets: valid when one is by a pinned key', async () => {
    const both = await openpgp.sign({
      message: await openpgp.createMessage({ binary: data }),
      signingKeys: [
        await openpgp.readPrivateKey({ armoredKey: b.armoredSecretKey }),
        await openpgp.readPrivateKey({ armoredKey: a.armoredSecretKey }),
      ],
      detached: true,
    });
    assert.equal((await openpgp.readSignature({ armoredSignature: both })).packets.length, 2);
    assert.equal((await verifyDetached(data, both, ringA)).fingerprint, a.fingerprint);
    const ringB = await TrustedKeyring.fromArmored(b.armoredPublicKey);
    assert.equal((await verifyDetached(data, both, ringB)).fingerprint, b.fingerprint);
    const c = await generateSigningKey({ name: 'C' });
    await assert.rejects(
      verifyDetached(data, both, await TrustedKeyring.fromArmored(c.armoredPublicKey)),
      isSigError('UNKNOWN_SIGNER'),
    );
    const tampered = flipped(data, 0);
    await assert.rejects(verifyDetached(tampered, both, ringA), isSigError('BAD_SIGNATURE', a.fingerprint));
  });
});

describe('verifyDetached: failure codes', () => {
  test('tampered byte, appended byte, missing byte -> BAD_SIGNATURE', async () => {
    for (let i = 0; i < data.length; i += 7) {
      const tampered = flipped(data, i);
      await assert.rejects(verifyDetached(tampered, sigA, ringA), isSigError('BAD_SIGNATURE', a.fingerprint));
    }
    await assert.rejects(
      verifyDetached(new Uint8Array([...data, 0x0a]), sigA, ringA),
      isSigError('BAD_SIGNATURE'),
    );
    await assert.rejects(verifyDetached(data.subarray(1), sigA, ringA), isSigError('BAD_SIGNATURE'));
  });

  test('signature by a key that is not pinned -> UNKNOWN_SIGNER naming the issuer', async () => {
    const sigB = await signerB.sign(data);
    await assert.rejects(verifyDetached(data, sigB, ringA), (e: unknown) => {
      isSigError('UNKNOWN_SIGNER', b.fingerprint)(e);
      assert.ok((e as Error).message.includes(b.fingerprint), (e as Error).message);
      return true;
    });
  });

  test('truncated, garbage, empty, oversized, non-ASCII -> MALFORMED_SIGNATURE', async () => {
    const binary = (await openpgp.unarmor(sigA)).data as Uint8Array;
    const bad = [
      sigA.slice(0, Math.floor(sigA.length / 2)),
      // Armor intact but the packet cut short.
      openpgp.armor(openpgp.enums.armor.signature, binary.subarray(0, Math.floor(binary.length / 2))),
      sigA.replace(/^([A-Za-z0-9+/]{10})/m, '$1$$$$'),
      '',
      '   \n',
      'garbage',
      '-----BEGIN PGP SIGNATURE-----\n\nnot base64 at all!!\n-----END PGP SIGNATURE-----\n',
      '-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n',
      sigA + sigA,
      sigA + '\n' + ' '.repeat(MAX_SIGNATURE_BYTES),
      sigA.replace('-----END', 'é-----END'),
      a.armoredPublicKey,
    ];
    for (const s of bad) {
      await assert.rejects(
        verifyDetached(data, s, ringA),
        isSigError('MALFORMED_SIGNATURE'),
        JSON.stringify(s.slice(0, 80)),
      );
    }
    await assert.rejects(
      verifyDetached(data, 42 as unknown as string, ringA),
      isSigError('MALFORMED_SIGNATURE'),
    );
  });

  test('cleartext, inline-signed and text-mode signatures -> MALFORMED_SIGNATURE, even over the right text', async () => {
    const privateKey = await openpgp.readPrivateKey({ armoredKey: a.armoredSecretKey });
    const text = new TextDecoder().decode(data);
    const cleartext = await openpgp.sign({
      message: await openpgp.createCleartextMessage({ text }),
      signingKeys: privateKey,
    });
    const inline = await openpgp.sign({
      message: await openpgp.createMessage({ binary: data }),
      signingKeys: privateKey,
    });
    const textMode = await openpgp.sign({
      message: await openpgp.createMessage({ text }),
      signingKeys: privateKey,
      detached: true,
    });
    assert.equal(
      (await openpgp.readSignature({ armoredSignature: textMode })).packets[0]?.signatureType,
      openpgp.enums.signature.text,
    );
    for (const s of [cleartext, inline, textMode]) {
      await assert.rejects(verifyDetached(data, s, ringA), isSigError('MALFORMED_SIGNATURE'));
    }
  });

  test('empty keyring -> NO_TRUSTED_KEYS', async () => {
    const empty = await TrustedKeyring.fromArmored([]);
    assert.equal(empty.size, 0);
    await assert.rejects(verifyDetached(data, sigA, empty), isSigError('NO_TRUSTED_KEYS'));
  });

  test('signature from the future beyond the clock skew -> BAD_SIGNATURE; within it, accepted', async () => {
    const future = await signerA.sign(data, { date: new Date(Date.now() + HOUR) });
    await assert.rejects(verifyDetached(data, future, ringA), isSigError('BAD_SIGNATURE', a.fingerprint));
    assert.equal(
      (await verifyDetached(data, future, ringA, { now: new Date(Date.now() + 2 * HOUR) })).fingerprint,
      a.fingerprint,
    );
    const slightly = await signerA.sign(data, { date: new Date(Date.now() + 60 * 1000) });
    assert.equal((await verifyDetached(data, slightly, ringA)).fingerprint, a.fingerprint);
    await assert.rejects(
      verifyDetached(data, slightly, ringA, { clockSkewSeconds: 0 }),
      isSigError('BAD_SIGNATURE'),
    );
  });

  test('key expired when the signature was made -> KEY_EXPIRED; made before expiry -> still valid', async () => {
    // Same key material, two certificates: one without expiry (used to sign late) and a reformatted
    // one whose self-signature says the key expired 24 h after creation (the one pinned).
    const k = await oldKey(72);
    const late = await SigningKey.fromArmored(k.privateKey.armor());
    const sigLate = await late.sign(data, { date: new Date(k.date.getTime() + 48 * HOUR) });
    const sigEarly = await late.sign(data, { date: new Date(k.date.getTime() + 12 * HOUR) });
    const expiring = await openpgp.reformatKey({
      privateKey: k.privateKey,
      userIDs: [{ name: 'old' }],
      keyExpirationTime: 24 * 3600,
      date: k.date,
      format: 'object',
    });
    assert.equal(expiring.publicKey.getFingerprint().toUpperCase(), k.fingerprint);
    const ring = await TrustedKeyring.fromArmored(expiring.publicKey.armor());
    await assert.rejects(verifyDetached(data, sigLate, ring), isSigError('KEY_EXPIRED', k.fingerprint));
    const r = await verifyDetached(data, sigEarly, ring);
    assert.equal(r.fingerprint, k.fingerprint);
  });

  test('revocation certificate added to the keyring -> KEY_REVOKED, also for older signatures', async () => {
    const ring = await TrustedKeyring.fromArmored([a.armoredPublicKey, a.armoredRevocationCertificate]);
    assert.deepEqual(ring.fingerprints, [a.fingerprint]);
    await assert.rejects(verifyDetached(data, sigA, ring), isSigError('KEY_REVOKED', a.fingerprint));
    // Order does not matter: the certificate may come first.
    const ring2 = await TrustedKeyring.fromArmored([a.armoredRevocationCertificate, a.armoredPublicKey]);
    await assert.rejects(verifyDetached(data, sigA, ring2), isSigError('KEY_REVOKED'));
    // A revocation certificate for a key that is not pinned changes nothing.
    const ring3 = await TrustedKeyring.fromArmored([b.armoredRevocationCertificate, a.armoredPublicKey]);
    assert.equal((await verifyDetached(data, sigA, ring3)).fingerprint, a.fingerprint);
  });

  test('soft revocation (key superseded) refuses only signatures made after it', async () => {
    const k = await oldKey(5);
    const signer = await SigningKey.fromArmored(k.privateKey.armor());
    const before = await signer.sign(data, { date: new Date(Date.now() - 3 * HOUR) });
    const afterIt = await signer.sign(data, { date: new Date(Date.now() - 1 * HOUR) });
    const revoked = await openpgp.revokeKey({
      key: k.privateKey,
      reasonForRevocation: { flag: openpgp.enums.reasonForRevocation.keySuperseded },
      date: new Date(Date.now() - 2 * HOUR),
      format: 'armored',
    });
    const ring = await TrustedKeyring.fromArmored(revoked.publicKey);
    assert.equal((await verifyDetached(data, before, ring)).fingerprint, k.fingerprint);
    await assert.rejects(verifyDetached(data, afterIt, ring), isSigError('KEY_REVOKED', k.fingerprint));
  });
});

describe('TrustedKeyring', () => {
  test('merges duplicates, keeps only public parts, matches fingerprints loosely', async () => {
    const ring = await TrustedKeyring.fromArmored([
      a.armoredPublicKey,
      a.armoredSecretKey,
      b.armoredPublicKey + a.armoredPublicKey,
    ]);
    assert.deepEqual(ring.fingerprints, [a.fingerprint, b.fingerprint]);
    assert.ok(ring.has(a.fingerprint));
    assert.ok(ring.has(a.fingerprint.toLowerCase().replace(/(.{4})/g, '$1 ')));
    assert.ok(!ring.has('0'.repeat(40)));
    const armored = ring.armoredPublicKeys();
    assert.equal(armored.length, 2);
    for (const k of armored) assert.doesNotMatch(k, /PRIVATE/);
    assert.equal((await verifyDetached(data, sigA, ring)).fingerprint, a.fingerprint);
  });

  test('refuses garbage, non-key blocks and oversized input', async () => {
    const isKeyError = (code: KeyError['code']) => (e: unknown) => {
      assert.ok(e instanceof KeyError, String(e));
      assert.equal(e.code, code, e.message);
      return true;
    };
    await assert.rejects(TrustedKeyring.fromArmored('garbage'), isKeyError('MALFORMED_KEY'));
    await assert.rejects(TrustedKeyring.fromArmored(''), isKeyError('MALFORMED_KEY'));
    await assert.rejects(TrustedKeyring.fromArmored(sigA), isKeyError('MALFORMED_KEY'));
    await assert.rejects(
      TrustedKeyring.fromArmored(a.armoredPublicKey.replace(/\n[A-Za-z0-9+/]{30}/, '\n')),
      isKeyError('MALFORMED_KEY'),
    );
    await assert.rejects(
      TrustedKeyring.fromArmored('x'.repeat(2 * 1024 * 1024)),
      isKeyError('MALFORMED_KEY'),
    );
    // A revocation certificate whose signature does not verify is refused.
    const revBytes = (await openpgp.unarmor(a.armoredRevocationCertificate)).data as Uint8Array;
    const rev = flipped(revBytes, revBytes.length - 1);
    const forged = openpgp.armor(openpgp.enums.armor.publicKey, rev);
    await assert.rejects(
      TrustedKeyring.fromArmored([a.armoredPublicKey, forged]),
      isKeyError('MALFORMED_KEY'),
    );
  });
});
