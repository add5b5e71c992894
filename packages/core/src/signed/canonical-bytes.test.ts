/**
 * Signed bytes are exactly the canonical form, byte for byte: the same content with a UTF-8 byte
 * order mark before it, bytes after it (another newline, spaces, a NUL) or whitespace before it is
 * a different document and is refused, even under a valid signature by a pinned key — by the
 * verifier and by the sealed path a cache uses.
 */
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { CatalogError, ManifestError } from '../errors.js';
import { SigningKey, TrustedKeyring, generateSigningKey, verifyDetached } from '../openpgp/index.js';
import { pinnedKeyDigest } from '../openpgp/keyring.js';
import { signCatalog, verifyCatalog } from '../catalog/index.js';
import type { Catalog } from '../catalog/index.js';
import {
  openSealedManifest,
  sealManifest,
  signManifest,
  verifyManifest,
  type Manifest,
} from '../manifest/index.js';
import { sha256Hex, type DocumentSeal } from './signed-document.js';

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
    ],
  };
}

function catalog(fpr: string): Catalog {
  return {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: 'debian/bookworm/amd64',
    generatedAt: '2026-11-25T12:00:00Z',
    provenance: {
      generator: { name: 'sysattest-generator', version: '0.3.0' },
      keyFingerprint: fpr,
      image: { id: 'img' },
      sources: [{ name: 'Debian bookworm/main amd64', date: '2026-11-20T09:00:00Z' }],
    },
    packages: [
      {
        name: 'x',
        version: '1.0',
        architecture: 'amd64',
        source: { name: 'x', version: '1.0' },
        size: 1,
        sha256: 'a'.repeat(64),
      },
    ],
  };
}

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** The same content in bytes that are not the canonical ones, each with the message it gets. */
function variants(canonical: Uint8Array): [string, Buffer, RegExp][] {
  const c = Buffer.from(canonical);
  return [
    ['a UTF-8 byte order mark before the canonical bytes', Buffer.concat([BOM, c]), /byte order mark/],
    ['a second trailing newline', Buffer.concat([c, Buffer.from('\n')]), /canonical form/],
    ['trailing spaces', Buffer.concat([c, Buffer.from('  ')]), /canonical form/],
    ['a trailing NUL', Buffer.concat([c, Buffer.from([0])]), /not valid JSON/],
    ['no final newline', c.subarray(0, c.length - 1), /canonical form/],
    ['a leading space', Buffer.concat([Buffer.from(' '), c]), /canonical form .*does not start with "\{"/],
    ['a leading newline', Buffer.concat([Buffer.from('\n'), c]), /canonical form/],
    [
      'CRLF instead of the final newline',
      Buffer.concat([c.subarray(0, c.length - 1), Buffer.from('\r\n')]),
      /canonical form/,
    ],
    // The same text in UTF-16 (with its BOM) is not UTF-8 at all.
    [
      'UTF-16',
      Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(c.toString('utf8'), 'utf16le')]),
      /UTF-8/,
    ],
    // An escape where canonical JSON writes the character itself.
    ['a needless escape', Buffer.from(c.toString('utf8').replace('"x"', '"\\u0078"')), /canonical form/],
  ];
}

describe('signed documents: only the exact canonical bytes verify', () => {
  let key: SigningKey;
  let keyring: TrustedKeyring;

  before(async () => {
    const k = await generateSigningKey({ name: 'canonical bytes test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
  });

  it('a manifest signed over anything but its canonical bytes is refused with MANIFEST_INVALID', async () => {
    const signed = await signManifest(manifest(key.fingerprint), key);
    await verifyManifest(signed.bytes, signed.signature, keyring); // the canonical bytes do verify
    for (const [what, bytes, re] of variants(signed.bytes)) {
      const signature = await key.sign(bytes);
      // A valid signature by the pinned key: the refusal is about the bytes, not the signature.
      await verifyDetached(bytes, signature, keyring);
      await assert.rejects(
        verifyManifest(bytes, signature, keyring),
        (e: unknown) => {
          assert.ok(e instanceof ManifestError, `${what}: ${String(e)}`);
          assert.equal(e.code, 'MANIFEST_INVALID', what);
          assert.match(e.message, re, what);
          return true;
        },
        what,
      );
    }
  });

  it('a catalog snapshot signed over anything but its canonical bytes is refused with CATALOG_INVALID', async () => {
    const signed = await signCatalog(catalog(key.fingerprint), key);
    await verifyCatalog(signed.bytes, signed.signature, keyring);
    for (const [what, bytes, re] of variants(signed.bytes)) {
      await assert.rejects(
        verifyCatalog(bytes, await key.sign(bytes), keyring),
        (e: unknown) => {
          assert.ok(e instanceof CatalogError, `${what}: ${String(e)}`);
          assert.equal(e.code, 'CATALOG_INVALID', what);
          assert.match(e.message, re, what);
          return true;
        },
        what,
      );
    }
  });

  it('the sealed path takes only canonical bytes: a seal an earlier build made over BOM + canonical bytes does not hold', async () => {
    const secret = randomBytes(32);
    const signed = await signManifest(manifest(key.fingerprint), key);
    const verified = await verifyManifest(signed.bytes, signed.signature, keyring);
    const real = sealManifest(verified, keyring, secret) as DocumentSeal;

    /**
     * The seal openDocumentSeal() checks, made here as sealDocument() makes it, for bytes today's
     * verifier refuses but an earlier build accepted (TextDecoder dropped a BOM): the MAC holds,
     * so only the check of the bytes themselves can refuse them.
     */
    const sealFor = async (bytes: Uint8Array, signature: string): Promise<DocumentSeal> => {
      const sig = await verifyDetached(bytes, signature, keyring);
      const fields = {
        v: 1 as const,
        signer: sig.fingerprint,
        signingKey: sig.signingKeyFingerprint,
        created: sig.created.toISOString(),
      };
      const header = JSON.stringify([
        'sysattest document seal v1',
        'manifest',
        pinnedKeyDigest(keyring, sig.fingerprint),
        fields.signer,
        fields.signingKey,
        fields.created,
        null,
        sha256Hex(Buffer.from(signature, 'utf8')),
        bytes.length,
      ]);
      const mac = createHmac('sha256', secret).update(header).update('\n').update(bytes).digest('hex');
      return { ...fields, mac };
    };
    // The seal made here is the one sealDocument() makes (so the test below is about the bytes).
    assert.deepEqual(await sealFor(signed.bytes, signed.signature), real);
    assert.ok(openSealedManifest(signed.bytes, signed.signature, real, keyring, secret));

    // Every build's verifier compared the decoded text with the canonical form, so a seal can only
    // cover bytes whose text was canonical: a BOM before it was the one way in, and bytes around
    // it are refused from their first and last bytes. (Re-checking the whole form here would more
    // than double the cost of a sealed read, which exists to avoid that work.)
    for (const [what, bytes] of variants(signed.bytes).filter(([what]) => what !== 'a needless escape')) {
      const signature = await key.sign(bytes);
      const seal = await sealFor(bytes, signature);
      assert.equal(openSealedManifest(bytes, signature, seal, keyring, secret), undefined, what);
      // …and the full check it falls back to refuses them.
      await assert.rejects(verifyManifest(bytes, signature, keyring), { code: 'MANIFEST_INVALID' }, what);
    }
  });
});
