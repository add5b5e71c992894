import * as openpgp from 'openpgp';
import { KeyError } from '../errors.js';
import {
  KEY_CONFIG,
  MAX_ARMORED_KEY_BYTES,
  describe,
  fingerprintOf,
  unsupportedKeyReason,
} from './common.js';

export type SigningKeyAlgorithm = 'ed25519' | 'rsa4096';

export interface GenerateSigningKeyOptions {
  /** User ID name, e.g. "sysattest generator (build-1)". */
  name: string;
  email?: string;
  /** Default `ed25519`. */
  algorithm?: SigningKeyAlgorithm;
  /** When given, the secret key is encrypted with it (iterated-salted S2K, RFC 4880 §3.7.1.3). */
  passphrase?: string;
  /** Key expiration, counted from creation; absent or 0 means the key never expires. */
  expiresInSeconds?: number;
}

export interface GeneratedSigningKey {
  armoredSecretKey: string;
  armoredPublicKey: string;
  /** 40 upper-case hex digits. */
  fingerprint: string;
  /**
   * A key revocation signature (RFC 4880 §5.2.1, type 0x20) made now: keep it offline; adding it to
   * the pinned keys revokes the key everywhere (see TrustedKeyring.fromArmored).
   */
  armoredRevocationCertificate: string;
}

/**
 * Makes a v4 signing key with no subkeys: the primary key carries the certify and sign flags.
 * `ed25519` is EdDSA with the legacy curve OID (algorithm 22, the form GnuPG 2.2 reads), not the
 * RFC 9580 Ed25519 algorithm 27 that GnuPG 2.2 does not know.
 */
export async function generateSigningKey(options: GenerateSigningKeyOptions): Promise<GeneratedSigningKey> {
  const { name, email, passphrase, expiresInSeconds } = options;
  const algorithm = options.algorithm ?? 'ed25519';
  if (typeof name !== 'string' || name.trim() === '' || /[<>\n\r]/.test(name)) {
    throw new KeyError(
      'MALFORMED_KEY',
      `invalid key name ${JSON.stringify(name)}: must be non-empty, without <, > or newlines`,
    );
  }
  if (email !== undefined && (typeof email !== 'string' || !/^[^\s<>@]+@[^\s<>@]+$/.test(email))) {
    throw new KeyError('MALFORMED_KEY', `invalid key e-mail address ${JSON.stringify(email)}`);
  }
  if (passphrase !== undefined && (typeof passphrase !== 'string' || passphrase === '')) {
    throw new KeyError('MALFORMED_KEY', 'the passphrase must be a non-empty string when given');
  }
  const expiry = expiresInSeconds ?? 0;
  // The key expiration subpacket is a 4-octet count of seconds (RFC 4880 §5.2.3.6).
  if (!Number.isSafeInteger(expiry) || expiry < 0 || expiry > 0xffffffff) {
    throw new KeyError(
      'UNSUPPORTED_KEY',
      `invalid key expiry ${String(expiresInSeconds)}: whole seconds expected`,
    );
  }
  let typeOptions: { type: 'ecc'; curve: 'ed25519Legacy' } | { type: 'rsa'; rsaBits: number };
  if (algorithm === 'ed25519') {
    typeOptions = { type: 'ecc', curve: 'ed25519Legacy' };
  } else if (algorithm === 'rsa4096') {
    typeOptions = { type: 'rsa', rsaBits: 4096 };
  } else {
    throw new KeyError('UNSUPPORTED_KEY', `unsupported key algorithm ${JSON.stringify(algorithm)}`);
  }
  try {
    const generated = await openpgp.generateKey({
      ...typeOptions,
      userIDs: [email === undefined ? { name } : { name, email }],
      subkeys: [],
      keyExpirationTime: expiry,
      format: 'armored',
      config: KEY_CONFIG,
      ...(passphrase === undefined ? {} : { passphrase }),
    });
    const publicKey = await openpgp.readKey({ armoredKey: generated.publicKey, config: KEY_CONFIG });
    return {
      armoredSecretKey: generated.privateKey,
      armoredPublicKey: generated.publicKey,
      fingerprint: fingerprintOf(publicKey),
      armoredRevocationCertificate: generated.revocationCertificate,
    };
  } catch (e) {
    throw new KeyError('UNSUPPORTED_KEY', `key generation failed: ${describe(e)}`, { cause: e });
  }
}

function isEncrypted(packet: openpgp.Key['keyPacket'] | openpgp.Subkey['keyPacket']): boolean {
  if (packet.isDecrypted()) return false;
  // GnuPG's "stub" secret keys (gnu-dummy S2K, e.g. from --export-secret-subkeys) carry no secret.
  return !('isDummy' in packet && packet.isDummy());
}

/** A secret key, decrypted and ready to make detached signatures. */
export class SigningKey {
  /** Fingerprint of the primary key, 40 upper-case hex digits. */
  readonly fingerprint: string;
  /** Fingerprint of the (sub)key that makes the signatures: the newest valid signing-capable one. */
  readonly signingKeyFingerprint: string;
  readonly #key: openpgp.PrivateKey;

  private constructor(key: openpgp.PrivateKey, signingKeyFingerprint: string) {
    this.#key = key;
    this.fingerprint = fingerprintOf(key);
    this.signingKeyFingerprint = signingKeyFingerprint;
  }

  /**
   * Loads one armored secret key (ours or `gpg --export-secret-keys --armor`).
   * Errors (KeyError): MALFORMED_KEY (not a key, or several keys), NOT_A_SECRET_KEY (a public key),
   * PASSPHRASE_REQUIRED, WRONG_PASSPHRASE, UNSUPPORTED_KEY (v6 key, weak algorithm, or no key
   * able to sign now: expired, revoked, or only a stub).
   */
  static async fromArmored(armored: string, passphrase?: string): Promise<SigningKey> {
    if (typeof armored !== 'string' || armored.trim() === '') {
      throw new KeyError('MALFORMED_KEY', 'no key given (empty input)');
    }
    if (armored.length > MAX_ARMORED_KEY_BYTES) {
      throw new KeyError('MALFORMED_KEY', `key input is larger than ${MAX_ARMORED_KEY_BYTES} bytes`);
    }
    let keys: openpgp.Key[];
    try {
      keys = await openpgp.readKeys({ armoredKeys: armored, config: KEY_CONFIG });
    } catch (e) {
      throw new KeyError('MALFORMED_KEY', `not a readable OpenPGP key: ${describe(e)}`, { cause: e });
    }
    const [first] = keys;
    if (first === undefined || keys.length !== 1) {
      throw new KeyError('MALFORMED_KEY', `expected exactly one key, found ${keys.length}`);
    }
    if (!first.isPrivate()) {
      throw new KeyError(
        'NOT_A_SECRET_KEY',
        `key ${fingerprintOf(first)} is a public key; a secret key is needed to sign`,
      );
    }
    const unsupported = unsupportedKeyReason(first);
    if (unsupported !== undefined) {
      throw new KeyError('UNSUPPORTED_KEY', `key ${fingerprintOf(first)}: ${unsupported}`);
    }
    let key: openpgp.PrivateKey = first;
    if (key.getKeys().some((k) => isEncrypted(k.keyPacket))) {
      if (passphrase === undefined || passphrase === '') {
        throw new KeyError('PASSPHRASE_REQUIRED', `key ${fingerprintOf(key)} is protected by a passphrase`);
      }
      try {
        key = await openpgp.decryptKey({ privateKey: key, passphrase, config: KEY_CONFIG });
      } catch (e) {
        // openpgp.js reports a failed S2K checksum / AEAD tag as "Incorrect key passphrase".
        if (/Incorrect key passphrase/i.test(describe(e))) {
          throw new KeyError('WRONG_PASSPHRASE', `wrong passphrase for key ${fingerprintOf(key)}`, {
            cause: e,
          });
        }
        throw new KeyError('UNSUPPORTED_KEY', `cannot decrypt key ${fingerprintOf(key)}: ${describe(e)}`, {
          cause: e,
        });
      }
    }
    let signer: openpgp.Key | openpgp.Subkey;
    try {
      signer = await key.getSigningKey(undefined, new Date(), undefined, KEY_CONFIG);
    } catch (e) {
      throw new KeyError(
        'UNSUPPORTED_KEY',
        `key ${fingerprintOf(key)} has no key usable for signing now: ${describe(e)}`,
        { cause: e },
      );
    }
    if (!signer.keyPacket.isDecrypted()) {
      throw new KeyError(
        'UNSUPPORTED_KEY',
        `key ${fingerprintOf(key)}: the secret part of signing key ${fingerprintOf(signer)} is missing`,
      );
    }
    return new SigningKey(key, fingerprintOf(signer));
  }

  /** The public key (certificate), armored, for pinning. */
  publicKeyArmored(): string {
    return this.#key.toPublic().armor(KEY_CONFIG);
  }

  /**
   * An armored detached signature of type 0x00, "binary document" (RFC 4880 §5.2.1), over exactly
   * `bytes`; `gpg --verify sig file` checks it. `date` sets the signature creation time (default now).
   */
  async sign(bytes: Uint8Array, options: { date?: Date } = {}): Promise<string> {
    if (!(bytes instanceof Uint8Array)) {
      throw new TypeError('SigningKey.sign: bytes must be a Uint8Array');
    }
    try {
      const message = await openpgp.createMessage({ binary: bytes });
      return await openpgp.sign({
        message,
        signingKeys: this.#key,
        detached: true,
        format: 'armored',
        config: KEY_CONFIG,
        ...(options.date === undefined ? {} : { date: options.date }),
      });
    } catch (e) {
      throw new KeyError('UNSUPPORTED_KEY', `signing with key ${this.fingerprint} failed: ${describe(e)}`, {
        cause: e,
      });
    }
  }
}
