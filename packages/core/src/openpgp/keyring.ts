import { createHash } from 'node:crypto';
import * as openpgp from 'openpgp';
import { KeyError } from '../errors.js';
import {
  KEY_CONFIG,
  MAX_ARMORED_KEY_BYTES,
  NO_DATE,
  armoredBlocks,
  describe,
  fingerprintOf,
  hexOf,
  unsupportedKeyReason,
} from './common.js';

/** Most pinned keys one keyring holds (after merging duplicates). */
export const MAX_KEYRING_KEYS = 64;
/** Cap on all armored input given to one TrustedKeyring.fromArmored call. */
export const MAX_KEYRING_INPUT_BYTES = 8 * MAX_ARMORED_KEY_BYTES;

const pinned = new WeakMap<TrustedKeyring, readonly openpgp.PublicKey[]>();
const digests = new WeakMap<TrustedKeyring, Map<string, string>>();

/** The pinned keys of a keyring, for verify.ts; not part of the package API. */
export function pinnedKeys(keyring: TrustedKeyring): readonly openpgp.PublicKey[] {
  const keys = pinned.get(keyring);
  if (keys === undefined) throw new TypeError('not a TrustedKeyring');
  return keys;
}

/**
 * SHA-256 (hex) of everything the keyring holds for the pinned primary key `fingerprint` (its
 * packets as merged: key, subkeys, self-signatures, revocations), or undefined when that key is
 * not pinned. Any change to what is known about the key (a new revocation, a new expiry, a new
 * subkey) changes it. Computed once per keyring and key.
 */
export function pinnedKeyDigest(keyring: TrustedKeyring, fingerprint: string): string | undefined {
  let known = digests.get(keyring);
  if (known === undefined) {
    known = new Map();
    digests.set(keyring, known);
  }
  const cached = known.get(fingerprint);
  if (cached !== undefined) return cached;
  const key = pinnedKeys(keyring).find((k) => fingerprintOf(k) === fingerprint);
  if (key === undefined) return undefined;
  const digest = createHash('sha256').update(key.write()).digest('hex');
  known.set(fingerprint, digest);
  return digest;
}

function normalizeFingerprint(fpr: string): string {
  return fpr.replace(/\s+/g, '').toUpperCase();
}

/**
 * The public keys a verifier trusts ("pinned"): signatures are checked against these and nothing
 * else. Only public material is kept.
 */
export class TrustedKeyring {
  /** Primary-key fingerprints (40 upper-case hex), in the order the keys were first given. */
  readonly fingerprints: readonly string[];

  private constructor(keys: openpgp.PublicKey[]) {
    pinned.set(this, Object.freeze([...keys]));
    this.fingerprints = Object.freeze(keys.map(fingerprintOf));
  }

  /**
   * Builds a keyring from armored text: each string may hold several armored blocks, and each
   * "PGP PUBLIC KEY BLOCK" several keys (as `gpg --export --armor A B` writes them).
   * - A secret key block is accepted; only its public part is kept.
   * - The same key given more than once is merged (its signatures, subkeys and revocations united).
   * - A standalone key revocation certificate (a public key block holding only a 0x20 signature,
   *   RFC 4880 §5.2.1, such as GnuPG's openpgp-revocs.d/*.rev once its ':' guard is removed, or
   *   generateSigningKey's armoredRevocationCertificate) is applied to the key it revokes, after
   *   checking it is signed by that key; one for a key not in the keyring is ignored.
   * An empty array gives an empty keyring (verification then fails with NO_TRUSTED_KEYS).
   * Errors (KeyError): MALFORMED_KEY (unreadable, no key block in a string, over the size caps, or a
   * revocation certificate that does not verify), UNSUPPORTED_KEY (v5/v6 keys, DSA, ElGamal, RSA
   * under 2048 bits).
   */
  static async fromArmored(armored: string | readonly string[]): Promise<TrustedKeyring> {
    const inputs: readonly unknown[] = typeof armored === 'string' ? [armored] : armored;
    if (!Array.isArray(inputs))
      throw new KeyError('MALFORMED_KEY', 'expected armored key text or an array of it');
    let total = 0;
    const byFingerprint = new Map<string, openpgp.PublicKey>();
    const revocations: openpgp.SignaturePacket[] = [];

    for (const [i, text] of inputs.entries()) {
      const where = inputs.length > 1 ? ` (input ${i + 1})` : '';
      if (typeof text !== 'string') throw new KeyError('MALFORMED_KEY', `key input is not text${where}`);
      if (text.length > MAX_ARMORED_KEY_BYTES) {
        throw new KeyError('MALFORMED_KEY', `key input larger than ${MAX_ARMORED_KEY_BYTES} bytes${where}`);
      }
      total += text.length;
      if (total > MAX_KEYRING_INPUT_BYTES) {
        throw new KeyError(
          'MALFORMED_KEY',
          `key inputs larger than ${MAX_KEYRING_INPUT_BYTES} bytes in total`,
        );
      }
      const blocks = armoredBlocks(text);
      if (blocks.length === 0) {
        throw new KeyError('MALFORMED_KEY', `no armored OpenPGP key block found${where}`);
      }
      for (const { type, block } of blocks) {
        if (type !== 'PUBLIC KEY BLOCK' && type !== 'PRIVATE KEY BLOCK') {
          throw new KeyError('MALFORMED_KEY', `armored block "PGP ${type}" is not a key${where}`);
        }
        const parsed = await parseKeyBlock(block, where);
        revocations.push(...parsed.revocations);
        for (const key of parsed.keys) {
          const fpr = fingerprintOf(key);
          const existing = byFingerprint.get(fpr);
          if (existing === undefined) {
            if (byFingerprint.size >= MAX_KEYRING_KEYS) {
              throw new KeyError('MALFORMED_KEY', `more than ${MAX_KEYRING_KEYS} keys given`);
            }
            byFingerprint.set(fpr, key);
          } else {
            try {
              // NO_DATE: merge every signature whatever its time; validity is judged when verifying.
              byFingerprint.set(fpr, await existing.update(key, NO_DATE, KEY_CONFIG));
            } catch (e) {
              throw new KeyError('MALFORMED_KEY', `cannot merge two copies of key ${fpr}: ${describe(e)}`, {
                cause: e,
              });
            }
          }
        }
      }
    }

    for (const revocation of revocations) {
      await applyRevocation([...byFingerprint.values()], revocation);
    }
    return new TrustedKeyring([...byFingerprint.values()]);
  }

  /** Number of pinned keys. */
  get size(): number {
    return this.fingerprints.length;
  }

  /** Whether the primary key with this fingerprint (any case, spaces allowed) is pinned. */
  has(fingerprint: string): boolean {
    return typeof fingerprint === 'string' && this.fingerprints.includes(normalizeFingerprint(fingerprint));
  }

  /** All pinned keys, public parts only, as one armored block each. */
  armoredPublicKeys(): string[] {
    return pinnedKeys(this).map((k) => k.armor(KEY_CONFIG));
  }
}

async function parseKeyBlock(
  block: string,
  where: string,
): Promise<{ keys: openpgp.PublicKey[]; revocations: openpgp.SignaturePacket[] }> {
  let data: Uint8Array;
  try {
    const unarmored = await openpgp.unarmor(block);
    data = unarmored.data instanceof Uint8Array ? unarmored.data : new Uint8Array();
  } catch (e) {
    throw new KeyError('MALFORMED_KEY', `unreadable armored key block${where}: ${describe(e)}`, { cause: e });
  }
  if (data.length === 0) throw new KeyError('MALFORMED_KEY', `empty key block${where}`);

  // A block made only of signature packets is a standalone revocation certificate.
  let signatures: openpgp.Signature | undefined;
  try {
    signatures = await openpgp.readSignature({ binarySignature: data, config: KEY_CONFIG });
  } catch {
    signatures = undefined;
  }
  if (signatures !== undefined && signatures.packets.length > 0) {
    const revocations: openpgp.SignaturePacket[] = [];
    for (const packet of signatures.packets) {
      if (
        !(packet instanceof openpgp.SignaturePacket) ||
        packet.signatureType !== openpgp.enums.signature.keyRevocation
      ) {
        throw new KeyError(
          'MALFORMED_KEY',
          `key block${where} holds signatures but no key, and they are not key revocation certificates`,
        );
      }
      revocations.push(packet);
    }
    return { keys: [], revocations };
  }

  let keys: openpgp.Key[];
  try {
    keys = await openpgp.readKeys({ binaryKeys: data, config: KEY_CONFIG });
  } catch (e) {
    throw new KeyError('MALFORMED_KEY', `not a readable OpenPGP key${where}: ${describe(e)}`, { cause: e });
  }
  const out: openpgp.PublicKey[] = [];
  for (const key of keys) {
    const reason = unsupportedKeyReason(key);
    if (reason !== undefined)
      throw new KeyError('UNSUPPORTED_KEY', `key ${fingerprintOf(key)}${where}: ${reason}`);
    out.push(key.isPrivate() ? key.toPublic() : key);
  }
  return { keys: out, revocations: [] };
}

async function applyRevocation(
  keys: openpgp.PublicKey[],
  revocation: openpgp.SignaturePacket,
): Promise<void> {
  const issuerFpr = revocation.issuerFingerprint === null ? undefined : hexOf(revocation.issuerFingerprint);
  const issuerKeyId = revocation.issuerKeyID.toHex().toUpperCase();
  const key = keys.find((k) =>
    issuerFpr !== undefined
      ? fingerprintOf(k) === issuerFpr
      : k.getKeyID().toHex().toUpperCase() === issuerKeyId,
  );
  if (key === undefined) return;
  try {
    // A key revocation is a signature by the key over its own primary key packet (RFC 4880 §5.2.4).
    await revocation.verify(
      key.keyPacket,
      openpgp.enums.signature.keyRevocation,
      { key: key.keyPacket },
      NO_DATE,
      false,
      KEY_CONFIG,
    );
  } catch (e) {
    throw new KeyError(
      'MALFORMED_KEY',
      `revocation certificate for key ${fingerprintOf(key)} does not verify: ${describe(e)}`,
      { cause: e },
    );
  }
  const bytes = revocation.write();
  if (!key.revocationSignatures.some((s) => Buffer.from(s.write()).equals(bytes))) {
    key.revocationSignatures.push(revocation);
  }
}
