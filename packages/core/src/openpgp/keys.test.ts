import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as openpgp from 'openpgp';
import { KeyError } from '../errors.js';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  readKeyFile,
  verifyDetached,
  writeSecretKeyFile,
  type GeneratedSigningKey,
} from './index.js';

function isKeyError(code: KeyError['code']) {
  return (e: unknown) => {
    assert.ok(e instanceof KeyError, `expected KeyError ${code}, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return true;
  };
}

const FPR = /^[0-9A-F]{40}$/;
const data = new TextEncoder().encode('{"schema":"sysattest/manifest","version":1}\n');

let ed: GeneratedSigningKey;
let edLocked: GeneratedSigningKey;
let dir: string;

before(async () => {
  [ed, edLocked] = await Promise.all([
    generateSigningKey({ name: 'sysattest test', email: 'test@example.org' }),
    generateSigningKey({ name: 'sysattest locked', passphrase: 'correct horse' }),
  ]);
  dir = await mkdtemp(join(tmpdir(), 'sysattest-keys-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('generateSigningKey', () => {
  test('makes a v4 EdDSA (legacy curve, algorithm 22) key with no subkeys', async () => {
    assert.match(ed.fingerprint, FPR);
    assert.match(ed.armoredSecretKey, /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    assert.match(ed.armoredPublicKey, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    assert.doesNotMatch(ed.armoredPublicKey, /PRIVATE/);
    const key = await openpgp.readKey({ armoredKey: ed.armoredPublicKey });
    assert.equal(key.keyPacket.version, 4);
    assert.equal(key.keyPacket.algorithm, openpgp.enums.publicKey.eddsaLegacy);
    assert.equal(key.getAlgorithmInfo().curve, 'ed25519Legacy');
    assert.equal(key.subkeys.length, 0);
    assert.equal(key.getFingerprint().toUpperCase(), ed.fingerprint);
    assert.deepEqual(key.getUserIDs(), ['sysattest test <test@example.org>']);
    assert.equal(await key.getExpirationTime(), Infinity);
  });

  test('sets the requested expiry', async () => {
    const k = await generateSigningKey({ name: 'expiring', expiresInSeconds: 3600 });
    const key = await openpgp.readKey({ armoredKey: k.armoredPublicKey });
    const expiry = await key.getExpirationTime();
    assert.ok(expiry instanceof Date);
    assert.equal(expiry.getTime() - key.getCreationTime().getTime(), 3600 * 1000);
  });

  test('refuses bad options with coded errors', async () => {
    await assert.rejects(
      generateSigningKey({ name: 'x', algorithm: 'dsa1024' as unknown as 'ed25519' }),
      isKeyError('UNSUPPORTED_KEY'),
    );
    await assert.rejects(generateSigningKey({ name: '' }), isKeyError('MALFORMED_KEY'));
    await assert.rejects(generateSigningKey({ name: 'a <b>' }), isKeyError('MALFORMED_KEY'));
    await assert.rejects(
      generateSigningKey({ name: 'x', expiresInSeconds: -1 }),
      isKeyError('UNSUPPORTED_KEY'),
    );
    await assert.rejects(generateSigningKey({ name: 'x', passphrase: '' }), isKeyError('MALFORMED_KEY'));
  });
});

describe('SigningKey', () => {
  test('round trip: generate, sign, verify names the generated fingerprint', async () => {
    const key = await SigningKey.fromArmored(ed.armoredSecretKey);
    assert.equal(key.fingerprint, ed.fingerprint);
    assert.equal(key.signingKeyFingerprint, ed.fingerprint);
    const before = Date.now();
    const sig = await key.sign(data);
    assert.match(sig, /^-----BEGIN PGP SIGNATURE-----/);
    const keyring = await TrustedKeyring.fromArmored(key.publicKeyArmored());
    const result = await verifyDetached(data, sig, keyring);
    assert.equal(result.fingerprint, ed.fingerprint);
    assert.equal(result.signingKeyFingerprint, ed.fingerprint);
    assert.ok(Math.abs(result.created.getTime() - before) < 5000);
  });

  test('the signature is a v4 binary-document (0x00) signature', async () => {
    const sig = await (await SigningKey.fromArmored(ed.armoredSecretKey)).sign(data);
    const parsed = await openpgp.readSignature({ armoredSignature: sig });
    assert.equal(parsed.packets.length, 1);
    assert.equal(parsed.packets[0]?.version, 4);
    assert.equal(parsed.packets[0]?.signatureType, openpgp.enums.signature.binary);
  });

  test('passphrase-protected key: required, checked, then usable', async () => {
    await assert.rejects(
      SigningKey.fromArmored(edLocked.armoredSecretKey),
      isKeyError('PASSPHRASE_REQUIRED'),
    );
    await assert.rejects(
      SigningKey.fromArmored(edLocked.armoredSecretKey, ''),
      isKeyError('PASSPHRASE_REQUIRED'),
    );
    await assert.rejects(
      SigningKey.fromArmored(edLocked.armoredSecretKey, 'wrong'),
      isKeyError('WRONG_PASSPHRASE'),
    );
    const key = await SigningKey.fromArmored(edLocked.armoredSecretKey, 'correct horse');
    assert.equal(key.fingerprint, edLocked.fingerprint);
    const keyring = await TrustedKeyring.fromArmored(edLocked.armoredPublicKey);
    assert.equal(
      (await verifyDetached(data, await key.sign(data), keyring)).fingerprint,
      edLocked.fingerprint,
    );
  });

  test('public key, garbage and empty input are refused with distinct codes', async () => {
    await assert.rejects(SigningKey.fromArmored(ed.armoredPublicKey), isKeyError('NOT_A_SECRET_KEY'));
    await assert.rejects(SigningKey.fromArmored('hello'), isKeyError('MALFORMED_KEY'));
    await assert.rejects(SigningKey.fromArmored(''), isKeyError('MALFORMED_KEY'));
    const cut = ed.armoredSecretKey.slice(0, ed.armoredSecretKey.length / 2);
    await assert.rejects(SigningKey.fromArmored(cut), isKeyError('MALFORMED_KEY'));
    await assert.rejects(SigningKey.fromArmored('x'.repeat(2 * 1024 * 1024)), isKeyError('MALFORMED_KEY'));
  });

  test('a v6 key is refused (GnuPG 2.2 could not verify its signatures)', async () => {
    const v6 = await openpgp.generateKey({
      type: 'curve25519',
      userIDs: [{ name: 'v6' }],
      format: 'armored',
      config: { v6Keys: true },
    });
    await assert.rejects(SigningKey.fromArmored(v6.privateKey), isKeyError('UNSUPPORTED_KEY'));
    await assert.rejects(TrustedKeyring.fromArmored(v6.publicKey), isKeyError('UNSUPPORTED_KEY'));
  });
});

describe('key files', () => {
  test('secret key file is written with mode 0600 and reads back', async () => {
    const path = join(dir, 'signing.asc');
    await writeSecretKeyFile(path, ed.armoredSecretKey);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal(await readKeyFile(path), ed.armoredSecretKey);
    const key = await SigningKey.fromArmored(await readKeyFile(path));
    assert.equal(key.fingerprint, ed.fingerprint);
  });

  test('mode is 0600 whatever the umask', async () => {
    const path = join(dir, 'umask.asc');
    const old = process.umask(0);
    try {
      await writeSecretKeyFile(path, ed.armoredSecretKey);
    } finally {
      process.umask(old);
    }
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test('an existing file is not overwritten without the flag; with it, replaced', async () => {
    const path = join(dir, 'existing.asc');
    await writeFile(path, 'precious', { mode: 0o644 });
    await assert.rejects(writeSecretKeyFile(path, ed.armoredSecretKey), (e: unknown) => {
      assert.ok(e instanceof KeyError);
      assert.equal(e.code, 'KEY_FILE_ERROR');
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
    assert.equal(await readFile(path, 'utf8'), 'precious');
    await writeSecretKeyFile(path, edLocked.armoredSecretKey, { overwrite: true });
    assert.equal(await readFile(path, 'utf8'), edLocked.armoredSecretKey);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    // No temporary files are left behind, on failure or success.
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith('.tmp')),
      [],
    );
  });

  test('only secret keys are written; a missing directory is a KEY_FILE_ERROR', async () => {
    await assert.rejects(
      writeSecretKeyFile(join(dir, 'pub.asc'), ed.armoredPublicKey),
      isKeyError('NOT_A_SECRET_KEY'),
    );
    await assert.rejects(
      writeSecretKeyFile(join(dir, 'no-such-dir', 'k.asc'), ed.armoredSecretKey),
      isKeyError('KEY_FILE_ERROR'),
    );
  });

  test('readKeyFile: missing, directory, oversize and binary files are KEY_FILE_ERRORs naming the file', async () => {
    const named = (path: string) => (e: unknown) => {
      assert.ok(e instanceof KeyError);
      assert.equal(e.code, 'KEY_FILE_ERROR');
      assert.ok(e.message.includes(path), e.message);
      return true;
    };
    const missing = join(dir, 'missing.asc');
    await assert.rejects(readKeyFile(missing), named(missing));
    const sub = join(dir, 'a-directory');
    await mkdir(sub);
    await assert.rejects(readKeyFile(sub), named(sub));
    const big = join(dir, 'big.asc');
    await writeFile(big, 'x'.repeat(2048));
    await assert.rejects(readKeyFile(big, { maxBytes: 1024 }), named(big));
    assert.equal((await readKeyFile(big, { maxBytes: 2048 })).length, 2048);
    const binary = join(dir, 'binary.gpg');
    await writeFile(binary, Buffer.from([0x99, 0x01, 0xff, 0xfe]));
    await assert.rejects(readKeyFile(binary), named(binary));
  });
});
