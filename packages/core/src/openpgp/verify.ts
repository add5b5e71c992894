import * as openpgp from 'openpgp';
import { SignatureError } from '../errors.js';
import { NO_DATE, SIG_CONFIG, describe, fingerprintOf, hexOf } from './common.js';
import { TrustedKeyring, pinnedKeys } from './keyring.js';

/** Cap on an armored detached signature: one RSA-4096 signature is under 1 KiB armored. */
export const MAX_SIGNATURE_BYTES = 64 * 1024;
/** Most signature packets one detached signature may carry. */
export const MAX_SIGNATURE_PACKETS = 16;
/** How far in the future (by our clock) a signature's creation time may be: clocks drift. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 300;

export interface VerifyOptions {
  /** The time to verify at (default: now). */
  now?: Date;
  /** Tolerance for signatures made "in the future" (default DEFAULT_CLOCK_SKEW_SECONDS). */
  clockSkewSeconds?: number;
}

export interface VerifiedSignature {
  /** Primary-key fingerprint of the pinned key that signed, 40 upper-case hex. */
  fingerprint: string;
  /** Fingerprint of the (sub)key whose signature verified (equal to `fingerprint` for a primary). */
  signingKeyFingerprint: string;
  /** Signature creation time, as the signer stated it (a hashed subpacket, so signed too). */
  created: Date;
  /** When the signature itself expires (a hashed subpacket), if it says so. */
  expires?: Date;
}

const BEGIN = '-----BEGIN PGP SIGNATURE-----';
const END = '-----END PGP SIGNATURE-----';

function malformed(message: string, cause?: unknown): SignatureError {
  return new SignatureError(
    'MALFORMED_SIGNATURE',
    message,
    undefined,
    cause === undefined ? undefined : { cause },
  );
}

/** Refuses anything that is not exactly one armored "PGP SIGNATURE" block (RFC 9580 §6.2). */
function checkArmorShape(armored: string): void {
  const text = armored.trim();
  if (text === '') throw malformed('the signature is empty');
  if (text.includes('-----BEGIN PGP SIGNED MESSAGE-----')) {
    throw malformed(
      'this is a cleartext-signed message; a detached signature over the exact bytes is required',
    );
  }
  if (text.startsWith('-----BEGIN PGP MESSAGE-----')) {
    throw malformed('this is an OpenPGP message (inline signature?); a detached signature is required');
  }
  if (!text.startsWith(BEGIN))
    throw malformed('not an armored OpenPGP signature (no "BEGIN PGP SIGNATURE" line)');
  if (!text.endsWith(END))
    throw malformed('the armored signature is truncated (no "END PGP SIGNATURE" line)');
  if (text.indexOf(BEGIN, 1) !== -1 || text.indexOf(END) !== text.length - END.length) {
    throw malformed('more than one armored block; exactly one signature block is expected');
  }
}

/**
 * Structural checks of one signature packet, before any key is looked at. The signature must be a
 * v4 signature of type 0x00 "binary document" (RFC 4880 §5.2.1): a 0x01 text signature hashes the
 * data with line endings rewritten to CRLF, so it does not sign the exact bytes, and is refused even
 * when it would verify; so is every other type (standalone, certifications…).
 */
function checkPacketShape(sig: openpgp.SignaturePacket, index: number): void {
  const which = `signature packet ${index + 1}`;
  if (sig.version !== 4)
    throw malformed(`${which} is a version ${sig.version} signature; only v4 is accepted`);
  if (sig.signatureType !== openpgp.enums.signature.binary) {
    const kind =
      sig.signatureType === openpgp.enums.signature.text
        ? 'a text-mode (0x01)'
        : `a type ${sig.signatureType}`;
    throw malformed(
      `${which} is ${kind} signature; only binary-document (0x00) signatures over the exact bytes are accepted`,
    );
  }
  if (sig.created === null) throw malformed(`${which} has no creation time`);
  if (sig.issuerFingerprint === null && /^0+$/.test(sig.issuerKeyID.toHex())) {
    throw malformed(`${which} does not name its issuer`);
  }
  if (sig.issuerFingerprint !== null) {
    // A v4 issuer fingerprint is 20 octets whose low 8 are the key ID (RFC 4880 §12.2).
    const fpr = hexOf(sig.issuerFingerprint);
    if (
      sig.issuerKeyVersion !== 4 ||
      fpr.length !== 40 ||
      !fpr.endsWith(sig.issuerKeyID.toHex().toUpperCase())
    ) {
      throw malformed(
        `${which} has an inconsistent issuer (fingerprint ${fpr}, key ID ${sig.issuerKeyID.toHex()})`,
      );
    }
  }
  // An unknown subpacket or notation marked critical makes the signature invalid (RFC 4880 §5.2.3.1).
  for (const { type, critical } of sig.unknownSubpackets) {
    if (critical) throw malformed(`${which} has an unknown critical subpacket (type ${type})`);
  }
  for (const { name, critical } of sig.rawNotations) {
    if (critical && !SIG_CONFIG.knownNotations.includes(name)) {
      throw malformed(`${which} has an unknown critical notation ${JSON.stringify(name)}`);
    }
  }
}

interface Candidate {
  key: openpgp.PublicKey;
  signer: openpgp.PublicKey | openpgp.Subkey;
}

/** The pinned (sub)keys the signature names as its issuer: by fingerprint when present, else key ID. */
function candidatesFor(sig: openpgp.SignaturePacket, keys: readonly openpgp.PublicKey[]): Candidate[] {
  const fpr = sig.issuerFingerprint === null ? undefined : hexOf(sig.issuerFingerprint);
  const keyId = sig.issuerKeyID.toHex().toUpperCase();
  const out: Candidate[] = [];
  for (const key of keys) {
    for (const signer of [key, ...key.subkeys]) {
      const match =
        fpr !== undefined ? fingerprintOf(signer) === fpr : signer.getKeyID().toHex().toUpperCase() === keyId;
      if (match) out.push({ key, signer });
    }
  }
  return out;
}

function issuerName(sig: openpgp.SignaturePacket): string {
  return sig.issuerFingerprint === null
    ? `key ID ${sig.issuerKeyID.toHex().toUpperCase()}`
    : `fingerprint ${hexOf(sig.issuerFingerprint)}`;
}

/** Why the signing key was unusable at `created`, as a coded error, after the checks below failed. */
function keyStateError(message: string, fingerprint: string, cause?: unknown): SignatureError {
  const text = `${message}${cause === undefined ? '' : `: ${describe(cause)}`}`;
  // openpgp.js words its refusals "… is revoked" / "… is expired"; anything else is a bad signature.
  const code = /\brevoked\b/i.test(text)
    ? 'KEY_REVOKED'
    : /\bexpired\b/i.test(text)
      ? 'KEY_EXPIRED'
      : 'BAD_SIGNATURE';
  return new SignatureError(code, text, fingerprint, cause === undefined ? undefined : { cause });
}

async function verifyWith(
  sig: openpgp.SignaturePacket,
  { key, signer }: Candidate,
  literal: object,
  now: Date,
  skewSeconds: number,
): Promise<VerifiedSignature> {
  const fingerprint = fingerprintOf(key);
  const signingKeyFingerprint = fingerprintOf(signer);
  const by =
    signingKeyFingerprint === fingerprint
      ? `key ${fingerprint}`
      : `subkey ${signingKeyFingerprint} of key ${fingerprint}`;
  const bad = (why: string, cause?: unknown) =>
    new SignatureError(
      'BAD_SIGNATURE',
      `signature by ${by} ${why}`,
      fingerprint,
      cause === undefined ? undefined : { cause },
    );
  const created = sig.created as Date;

  if (SIG_CONFIG.rejectMessageHashAlgorithms.has(sig.hashAlgorithm as openpgp.enums.hash)) {
    const name = openpgp.enums.read(openpgp.enums.hash, sig.hashAlgorithm as openpgp.enums.hash);
    throw bad(`uses the ${name.toUpperCase()} hash algorithm, which is refused`);
  }
  try {
    // NO_DATE: only the cryptography here; times are checked below with our own clock skew.
    await sig.verify(signer.keyPacket, openpgp.enums.signature.binary, literal, NO_DATE, true, SIG_CONFIG);
  } catch (e) {
    throw bad(`does not match the data`, e);
  }
  if (created.getTime() > now.getTime() + skewSeconds * 1000) {
    throw bad(`was made in the future (${created.toISOString()}, now ${now.toISOString()})`);
  }
  const sigExpiry = sig.getExpirationTime();
  if (sigExpiry !== Infinity && now >= sigExpiry) {
    throw bad(`expired at ${(sigExpiry as Date).toISOString()}`);
  }
  if (signer.getCreationTime() > created) {
    throw bad(`is dated ${created.toISOString()}, before the key was created`);
  }

  // Key state at the time of signing: a hard revocation (no reason, or "compromised") applies to
  // every signature; a soft one ("superseded", "retired") only to signatures made after it
  // (RFC 4880 §5.2.3.23); openpgp.js's isRevoked implements exactly that given the signature date.
  if (await key.isRevoked(undefined, undefined, created, SIG_CONFIG)) {
    throw new SignatureError('KEY_REVOKED', `key ${fingerprint} is revoked`, fingerprint);
  }
  // With no particular signature given, openpgp.js checks every revocation signature of the subkey.
  const anySignature = undefined as unknown as openpgp.SignaturePacket;
  const primaryPacket = undefined as unknown as openpgp.PublicKeyPacket;
  if (
    signer !== key &&
    (await (signer as openpgp.Subkey).isRevoked(anySignature, primaryPacket, created, SIG_CONFIG))
  ) {
    throw new SignatureError(
      'KEY_REVOKED',
      `signing subkey ${signingKeyFingerprint} of key ${fingerprint} is revoked`,
      fingerprint,
    );
  }
  // Expiry is judged at signature time (a manifest signed while the key was valid stays valid),
  // against the key's latest self-signature, as GnuPG does.
  const keyExpiry = await key.getExpirationTime(undefined, SIG_CONFIG);
  if (keyExpiry instanceof Date && created >= keyExpiry) {
    throw new SignatureError(
      'KEY_EXPIRED',
      `key ${fingerprint} expired at ${keyExpiry.toISOString()}, before the signature was made (${created.toISOString()})`,
      fingerprint,
    );
  }
  if (signer !== key) {
    const subExpiry = await (signer as openpgp.Subkey).getExpirationTime(NO_DATE, SIG_CONFIG);
    if (subExpiry instanceof Date && created >= subExpiry) {
      throw new SignatureError(
        'KEY_EXPIRED',
        `signing subkey ${signingKeyFingerprint} of key ${fingerprint} expired at ${subExpiry.toISOString()}, before the signature was made`,
        fingerprint,
      );
    }
  }
  // Finally openpgp.js's complete rule set: valid self-signature at that time, signing flag, and
  // for a subkey a binding signature with an embedded primary-key binding (RFC 4880 §5.2.1, 0x19).
  let usable: openpgp.PublicKey | openpgp.Subkey;
  try {
    usable = await key.getSigningKey(signer.getKeyID(), created, undefined, SIG_CONFIG);
  } catch (e) {
    throw keyStateError(`${by} was not valid for signing at ${created.toISOString()}`, fingerprint, e);
  }
  if (fingerprintOf(usable) !== signingKeyFingerprint) {
    throw bad(`was made by a key that is not a valid signing key of ${fingerprint}`);
  }
  return {
    fingerprint,
    signingKeyFingerprint,
    created,
    ...(sigExpiry instanceof Date ? { expires: sigExpiry } : {}),
  };
}

/**
 * Verifies an armored detached signature over exactly `data` against the pinned keys.
 *
 * Several signature packets in one block (e.g. `gpg -u A -u B --detach-sign`) are allowed, up to
 * MAX_SIGNATURE_PACKETS: the data is authentic when at least one of them is a valid signature by a
 * pinned key, and that one is returned (the first, in packet order). Signatures by keys that are
 * not pinned are then ignored, and so are failing signatures by pinned keys (their presence does
 * not lessen what the valid one proves). When none is valid, the error is that of the first packet
 * by a pinned key, or UNKNOWN_SIGNER when no packet is. Every packet must still be well-formed.
 *
 * Errors, all SignatureError: NO_TRUSTED_KEYS, MALFORMED_SIGNATURE (empty, not one armored
 * signature block, truncated, unparseable, over MAX_SIGNATURE_BYTES, a text-mode/cleartext/inline
 * signature, unknown critical subpacket), UNKNOWN_SIGNER, BAD_SIGNATURE (data differs, refused hash
 * algorithm, created more than the clock skew in the future, signature expired, key not valid for
 * signing), KEY_EXPIRED (key or signing subkey had expired when the signature was made),
 * KEY_REVOKED. Throws TypeError only for arguments of the wrong type (a programming error).
 */
export async function verifyDetached(
  data: Uint8Array,
  armoredSignature: string,
  keyring: TrustedKeyring,
  options: VerifyOptions = {},
): Promise<VerifiedSignature> {
  if (!(data instanceof Uint8Array)) throw new TypeError('verifyDetached: data must be a Uint8Array');
  if (!(keyring instanceof TrustedKeyring))
    throw new TypeError('verifyDetached: keyring must be a TrustedKeyring');
  const now = options.now ?? new Date();
  const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (!(now instanceof Date) || Number.isNaN(now.getTime()))
    throw new TypeError('verifyDetached: invalid now');
  if (!Number.isFinite(skew) || skew < 0) throw new TypeError('verifyDetached: invalid clockSkewSeconds');

  const keys = pinnedKeys(keyring);
  if (keys.length === 0) {
    throw new SignatureError('NO_TRUSTED_KEYS', 'no trusted keys are pinned; cannot verify any signature');
  }
  if (typeof armoredSignature !== 'string') throw malformed('the signature is not text');
  if (armoredSignature.length > MAX_SIGNATURE_BYTES) {
    throw malformed(`the signature is larger than ${MAX_SIGNATURE_BYTES} bytes`);
  }
  // Armor is 7-bit text; refusing anything else early keeps odd input out of the parser.
  if (/[^\t\n\r\x20-\x7e]/.test(armoredSignature)) {
    throw malformed('the signature contains characters that cannot appear in ASCII armor');
  }
  checkArmorShape(armoredSignature);

  let packets: openpgp.SignaturePacket[];
  try {
    const signature = await openpgp.readSignature({ armoredSignature, config: SIG_CONFIG });
    packets = [...signature.packets];
  } catch (e) {
    throw malformed(`unreadable OpenPGP signature: ${describe(e)}`, e);
  }
  if (packets.length === 0) throw malformed('the armored block holds no signature packet');
  if (packets.length > MAX_SIGNATURE_PACKETS) {
    throw malformed(`${packets.length} signature packets, more than the ${MAX_SIGNATURE_PACKETS} allowed`);
  }
  packets.forEach((sig, i) => {
    if (!(sig instanceof openpgp.SignaturePacket)) throw malformed(`packet ${i + 1} is not a signature`);
    checkPacketShape(sig, i);
  });

  let literal: object;
  try {
    const message = await openpgp.createMessage({ binary: data, format: 'binary' });
    literal = message.packets[0] as object;
  } catch (e) {
    throw malformed(`cannot prepare the data for verification: ${describe(e)}`, e);
  }

  let firstPinnedError: SignatureError | undefined;
  let firstUnknown: SignatureError | undefined;
  for (const sig of packets) {
    const candidates = candidatesFor(sig, keys);
    if (candidates.length === 0) {
      const fpr = sig.issuerFingerprint === null ? undefined : hexOf(sig.issuerFingerprint);
      firstUnknown ??= new SignatureError(
        'UNKNOWN_SIGNER',
        `signed by ${issuerName(sig)}, which is not a pinned key`,
        fpr,
      );
      continue;
    }
    for (const candidate of candidates) {
      try {
        return await verifyWith(sig, candidate, literal, now, skew);
      } catch (e) {
        const err =
          e instanceof SignatureError
            ? e
            : new SignatureError(
                'BAD_SIGNATURE',
                `signature check failed: ${describe(e)}`,
                fingerprintOf(candidate.key),
                {
                  cause: e,
                },
              );
        firstPinnedError ??= err;
      }
    }
  }
  throw firstPinnedError ?? firstUnknown ?? malformed('no usable signature packet');
}
