/**
 * Interoperability with the real GnuPG (trust model point 5: anyone can check a manifest with stock
 * `gpg --verify`), in a throw-away GNUPGHOME.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KeyError, SignatureError } from '../errors.js';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  verifyDetached,
  type GeneratedSigningKey,
} from './index.js';
import { makeGpgHome, validSigFingerprints, type GpgHome } from '../testkit/gpg.js';

const RSA_PASSPHRASE = 'gpg rsa passphrase';
const data = new TextEncoder().encode('{"package":"coreutils","version":"9.1-1"}\n');

let gpg: GpgHome;
let ours: { ed25519: GeneratedSigningKey; rsa4096: GeneratedSigningKey };
let fileCounter = 0;

/** Writes `content` to a fresh file in the GnuPG home and returns its path. */
async function tempFile(content: string | Uint8Array): Promise<string> {
  const path = join(gpg.home, `file-${++fileCounter}`);
  await writeFile(path, content);
  return path;
}

function isSigError(code: SignatureError['code'], signer?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof SignatureError, `expected SignatureError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (signer !== undefined) assert.equal(e.signerFingerprint, signer);
    return true;
  };
}

function isKeyError(code: KeyError['code']) {
  return (e: unknown) => {
    assert.ok(e instanceof KeyError, `expected KeyError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

/** `gpg --verify sig data`: exit code and the fingerprints of its VALIDSIG status line. */
async function gpgVerify(signature: string, signed: Uint8Array) {
  const r = await gpg.run([
    '--status-fd',
    '1',
    '--verify',
    await tempFile(signature),
    await tempFile(signed),
  ]);
  return { code: r.code, valid: validSigFingerprints(r.stdout), status: r.stdout };
}

/** gpg makes an armored detached signature of `signed` with the key of `userId`. */
async function gpgSign(
  userId: string,
  signed: Uint8Array,
  extra: string[] = [],
  passphrase = '',
): Promise<string> {
  const input = await tempFile(signed);
  const output = `${input}.asc`;
  await gpg.ok(['--local-user', userId, ...extra, '--armor', '--output', output, '--detach-sign', input], {
    passphrase,
  });
  return readFile(output, 'utf8');
}

async function gpgExport(userId: string): Promise<string> {
  return (await gpg.ok(['--armor', '--export', userId])).stdout;
}

before(async () => {
  gpg = await makeGpgHome();
  // The two slow RSA generations run side by side.
  const [ed25519, rsa4096] = await Promise.all([
    generateSigningKey({ name: 'ours ed25519', email: 'ed@ours.example' }),
    generateSigningKey({ name: 'ours rsa4096', email: 'rsa@ours.example', algorithm: 'rsa4096' }),
    (async () => {
      await gpg.ok(['--quick-gen-key', 'Gpg Ed <gpg-ed@example.org>', 'ed25519', 'sign', 'never']);
      await gpg.ok(['--quick-gen-key', 'Gpg Rsa <gpg-rsa@example.org>', 'rsa3072', 'sign', 'never'], {
        passphrase: RSA_PASSPHRASE,
      });
    })(),
  ]);
  ours = { ed25519, rsa4096 };
});

after(async () => {
  await gpg?.cleanup();
});

describe('ours -> gpg', () => {
  for (const algorithm of ['ed25519', 'rsa4096'] as const) {
    test(`gpg --verify accepts our ${algorithm} signature and names our fingerprint`, async () => {
      const generated = ours[algorithm];
      await gpg.ok(['--import', await tempFile(generated.armoredPublicKey)]);
      const key = await SigningKey.fromArmored(generated.armoredSecretKey);
      const sig = await key.sign(data);
      const r = await gpgVerify(sig, data);
      assert.equal(r.code, 0, r.status);
      assert.deepEqual(r.valid, { signer: generated.fingerprint, primary: generated.fingerprint });
      // And gpg refuses it over other bytes, so the check above means something.
      const other = await gpgVerify(sig, new TextEncoder().encode('other'));
      assert.notEqual(other.code, 0);
      assert.match(other.status, /BADSIG/);
    });
  }
});

describe('gpg -> ours', () => {
  test('verifyDetached accepts gpg ed25519 and rsa3072 signatures with the right fingerprint', async () => {
    for (const [uid, passphrase] of [
      ['gpg-ed@example.org', ''],
      ['gpg-rsa@example.org', RSA_PASSPHRASE],
    ] as const) {
      const fpr = await gpg.fingerprint(uid);
      const keyring = await TrustedKeyring.fromArmored(await gpgExport(uid));
      assert.deepEqual(keyring.fingerprints, [fpr]);
      const sig = await gpgSign(uid, data, [], passphrase);
      const r = await verifyDetached(data, sig, keyring);
      assert.equal(r.fingerprint, fpr);
      assert.equal(r.signingKeyFingerprint, fpr);
      const tampered = Uint8Array.from(data);
      tampered[3] = 0x21;
      await assert.rejects(verifyDetached(tampered, sig, keyring), isSigError('BAD_SIGNATURE', fpr));
    }
  });

  test('a keyring exported by gpg holding several keys', async () => {
    const both = await gpgExport('gpg-ed@example.org');
    const rsa = await gpgExport('gpg-rsa@example.org');
    const keyring = await TrustedKeyring.fromArmored([both + rsa]);
    assert.equal(keyring.size, 2);
    const sig = await gpgSign('gpg-rsa@example.org', data, [], RSA_PASSPHRASE);
    assert.equal(
      (await verifyDetached(data, sig, keyring)).fingerprint,
      await gpg.fingerprint('gpg-rsa@example.org'),
    );
  });

  test('a gpg-exported unprotected secret key loads and signs; gpg verifies the result', async () => {
    const fpr = await gpg.fingerprint('gpg-ed@example.org');
    const exported = (await gpg.ok(['--armor', '--export-secret-keys', 'gpg-ed@example.org'])).stdout;
    const key = await SigningKey.fromArmored(exported);
    assert.equal(key.fingerprint, fpr);
    const sig = await key.sign(data);
    const r = await gpgVerify(sig, data);
    assert.equal(r.code, 0, r.status);
    assert.equal(r.valid?.primary, fpr);
    const keyring = await TrustedKeyring.fromArmored(exported); // secret key in: public part kept
    assert.equal((await verifyDetached(data, sig, keyring)).fingerprint, fpr);
  });

  test('a gpg-exported passphrase-protected RSA 3072 secret key: passphrase checked, then signs', async () => {
    const fpr = await gpg.fingerprint('gpg-rsa@example.org');
    const exported = (
      await gpg.ok(['--armor', '--export-secret-keys', 'gpg-rsa@example.org'], { passphrase: RSA_PASSPHRASE })
    ).stdout;
    await assert.rejects(SigningKey.fromArmored(exported), isKeyError('PASSPHRASE_REQUIRED'));
    await assert.rejects(SigningKey.fromArmored(exported, 'not it'), isKeyError('WRONG_PASSPHRASE'));
    const key = await SigningKey.fromArmored(exported, RSA_PASSPHRASE);
    assert.equal(key.fingerprint, fpr);
    const sig = await key.sign(data);
    const r = await gpgVerify(sig, data);
    assert.equal(r.code, 0, r.status);
    assert.equal(r.valid?.primary, fpr);
  });

  test('a signature by two keys (gpg -u A -u B) verifies against either', async () => {
    const sig = await gpgSign(
      'gpg-ed@example.org',
      data,
      ['--local-user', 'gpg-rsa@example.org'],
      RSA_PASSPHRASE,
    );
    for (const uid of ['gpg-ed@example.org', 'gpg-rsa@example.org']) {
      const keyring = await TrustedKeyring.fromArmored(await gpgExport(uid));
      assert.equal((await verifyDetached(data, sig, keyring)).fingerprint, await gpg.fingerprint(uid));
    }
  });
});

describe('gpg signatures we refuse', () => {
  test('text-mode (0x01) and cleartext signatures -> MALFORMED_SIGNATURE', async () => {
    const keyring = await TrustedKeyring.fromArmored(await gpgExport('gpg-ed@example.org'));
    const textMode = await gpgSign('gpg-ed@example.org', data, ['--textmode']);
    await assert.rejects(verifyDetached(data, textMode, keyring), isSigError('MALFORMED_SIGNATURE'));
    const input = await tempFile(data);
    await gpg.ok(['--local-user', 'gpg-ed@example.org', '--output', `${input}.clear`, '--clearsign', input]);
    const cleartext = await readFile(`${input}.clear`, 'utf8');
    await assert.rejects(verifyDetached(data, cleartext, keyring), isSigError('MALFORMED_SIGNATURE'));
  });

  test('SHA-1 signature -> BAD_SIGNATURE', async () => {
    const fpr = await gpg.fingerprint('gpg-rsa@example.org');
    const keyring = await TrustedKeyring.fromArmored(await gpgExport('gpg-rsa@example.org'));
    const sig = await gpgSign('gpg-rsa@example.org', data, ['--digest-algo', 'SHA1'], RSA_PASSPHRASE);
    await assert.rejects(verifyDetached(data, sig, keyring), isSigError('BAD_SIGNATURE', fpr));
  });

  test('signature by a gpg key that is not pinned -> UNKNOWN_SIGNER', async () => {
    const keyring = await TrustedKeyring.fromArmored(ours.ed25519.armoredPublicKey);
    const sig = await gpgSign('gpg-ed@example.org', data);
    const fpr = await gpg.fingerprint('gpg-ed@example.org');
    await assert.rejects(verifyDetached(data, sig, keyring), isSigError('UNKNOWN_SIGNER', fpr));
  });
});

describe('gpg key state', () => {
  test('key revoked with its gpg revocation certificate -> KEY_REVOKED', async () => {
    await gpg.ok(['--quick-gen-key', 'Revoked <revoked@example.org>', 'ed25519', 'sign', 'never']);
    const fpr = await gpg.fingerprint('revoked@example.org');
    const sig = await gpgSign('revoked@example.org', data);
    const before = await gpgExport('revoked@example.org');
    assert.equal(
      (await verifyDetached(data, sig, await TrustedKeyring.fromArmored(before))).fingerprint,
      fpr,
    );

    // gpg stores a revocation certificate at key creation, guarded by a ':' before its armor.
    const stored = await readFile(join(gpg.home, 'openpgp-revocs.d', `${fpr}.rev`), 'utf8');
    const certificate = stored.replace(/^:-----/m, '-----');
    await gpg.ok(['--import', await tempFile(certificate)]);
    const revoked = await gpgExport('revoked@example.org');
    await assert.rejects(
      verifyDetached(data, sig, await TrustedKeyring.fromArmored(revoked)),
      isSigError('KEY_REVOKED', fpr),
    );
    // The certificate alone, given next to the unrevoked key, has the same effect.
    const keyring = await TrustedKeyring.fromArmored([before, certificate]);
    await assert.rejects(verifyDetached(data, sig, keyring), isSigError('KEY_REVOKED', fpr));
    // With the guard still in place it is not an armored block at all.
    await assert.rejects(TrustedKeyring.fromArmored([before, stored]), isKeyError('MALFORMED_KEY'));
  });

  test('signing subkey: reported apart from the primary; revoked subkey -> KEY_REVOKED', async () => {
    await gpg.ok(['--quick-gen-key', 'Sub <sub@example.org>', 'ed25519', 'cert', 'never']);
    const primary = await gpg.fingerprint('sub@example.org');
    await gpg.ok(['--quick-add-key', primary, 'ed25519', 'sign', 'never']);
    const [, subkey] = await gpg.fingerprints('sub@example.org');
    assert.ok(subkey);
    const sig = await gpgSign('sub@example.org', data);
    const r = await verifyDetached(
      data,
      sig,
      await TrustedKeyring.fromArmored(await gpgExport('sub@example.org')),
    );
    assert.deepEqual([r.fingerprint, r.signingKeyFingerprint], [primary, subkey]);
    const g = await gpgVerify(sig, data);
    assert.deepEqual(g.valid, { signer: subkey, primary });

    // Revoke the subkey through --edit-key: select key 1, revkey, confirm, reason 0, no text, confirm.
    await gpg.ok(['--command-fd', '0', '--edit-key', primary], { input: 'key 1\nrevkey\ny\n0\n\ny\nsave\n' });
    const keyring = await TrustedKeyring.fromArmored(await gpgExport('sub@example.org'));
    await assert.rejects(verifyDetached(data, sig, keyring), isSigError('KEY_REVOKED', primary));
  });

  test('key expired before the signature was made -> KEY_EXPIRED; signed before expiry -> valid', async () => {
    // gpg's --faked-system-time gives a key born 2020-01-01, signatures on 02-01 and 06-01, and a
    // new self-signature (made 01-02) saying the key expires on 03-01.
    const at = (iso: string) => ['--faked-system-time', iso];
    await gpg.ok([
      ...at('20200101T000000'),
      '--quick-gen-key',
      'Exp <exp@example.org>',
      'ed25519',
      'sign',
      'never',
    ]);
    const fpr = await gpg.fingerprint('exp@example.org');
    // `!` freezes the faked clock (gpg(1)): on a busy machine a second may pass before it signs.
    const early = await gpgSign('exp@example.org', data, at('20200201T000000!'));
    const late = await gpgSign('exp@example.org', data, at('20200601T000000!'));
    await gpg.ok([...at('20200102T000000'), '--quick-set-expire', fpr, '2020-03-01']);
    const keyring = await TrustedKeyring.fromArmored(await gpgExport('exp@example.org'));
    await assert.rejects(verifyDetached(data, late, keyring), isSigError('KEY_EXPIRED', fpr));
    const r = await verifyDetached(data, early, keyring);
    assert.equal(r.fingerprint, fpr);
    assert.equal(r.created.toISOString(), '2020-02-01T00:00:00.000Z');
    // gpg agrees on both: the late one is made by an expired key, the early one is good.
    assert.match((await gpgVerify(late, data)).status, /EXPKEYSIG/);
    assert.match((await gpgVerify(early, data)).status, /VALIDSIG/);
  });
});
