/**
 * Shared OpenPGP settings and small helpers for this folder. Not exported from the package: callers
 * use the functions in keys.ts, keyfile.ts, keyring.ts and verify.ts.
 */
import * as openpgp from 'openpgp';

/** Cap on one armored key block (string) given to us; real keys are a few KiB. */
export const MAX_ARMORED_KEY_BYTES = 1024 * 1024;

/**
 * Our own explicit policy instead of whatever the process-global `openpgp.config` holds at call
 * time, so another module changing that global cannot weaken verification.
 */
const POLICY = {
  // v4 only: GnuPG 2.2 cannot read v6 keys (RFC 9580 §5.5.2.3), and the trust model promises that
  // stock `gpg --verify` can check every manifest.
  v6Keys: false,
  enableParsingV5Entities: false,
  minRSABits: 2047,
  rejectHashAlgorithms: new Set([openpgp.enums.hash.md5, openpgp.enums.hash.ripemd]),
  rejectMessageHashAlgorithms: new Set([
    openpgp.enums.hash.md5,
    openpgp.enums.hash.ripemd,
    openpgp.enums.hash.sha1,
  ]),
  rejectPublicKeyAlgorithms: new Set([openpgp.enums.publicKey.elgamal, openpgp.enums.publicKey.dsa]),
  rejectCurves: new Set([openpgp.enums.curve.secp256k1]),
  allowInsecureVerificationWithReformattedKeys: false,
  allowMissingKeyFlags: false,
} satisfies openpgp.PartialConfig;

/**
 * For keys: packets we cannot parse (a subkey of an algorithm openpgp.js does not know, say) are
 * skipped, as every OpenPGP implementation does with keys, so that such a key still loads.
 */
export const KEY_CONFIG: openpgp.Config = { ...openpgp.config, ...POLICY };

/** For signatures: anything unparseable is an error, never silently dropped. */
export const SIG_CONFIG: openpgp.Config = {
  ...openpgp.config,
  ...POLICY,
  ignoreUnsupportedPackets: false,
  ignoreMalformedPackets: false,
};

/** 40 upper-case hex digits, the form every fingerprint takes in sysattest. */
export function fingerprintOf(key: { getFingerprint(): string }): string {
  return key.getFingerprint().toUpperCase();
}

export function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex').toUpperCase();
}

/** The message of whatever was thrown, for embedding in our own error messages. */
export function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** openpgp.js takes `null` for "do not check dates" in several places its typings do not admit. */
export const NO_DATE = null as unknown as Date;

/**
 * Primary-key algorithms we accept for signing keys and pinned keys. RSA below 2048 bits, DSA and
 * ElGamal are refused (RFC 9580 §12.4, §12.5).
 */
export function unsupportedKeyReason(key: openpgp.Key): string | undefined {
  if (key.keyPacket.version !== 4) {
    return `key version ${key.keyPacket.version} is not supported (only v4 keys, which GnuPG 2.2 reads)`;
  }
  const info = key.getAlgorithmInfo();
  switch (info.algorithm) {
    case 'rsaEncryptSign':
    case 'rsaSign':
      return (info.bits ?? 0) < 2048
        ? `RSA key of ${info.bits ?? '?'} bits is too weak (minimum 2048)`
        : undefined;
    case 'eddsaLegacy':
    case 'ecdsa':
    case 'ed25519':
    case 'ed448':
      return info.curve === 'secp256k1' ? 'ECDSA over secp256k1 is not supported' : undefined;
    default:
      return `public-key algorithm ${info.algorithm} is not supported for signing`;
  }
}

/** Splits text into its ASCII-armored blocks (RFC 9580 §6.2), in order; text outside them is ignored. */
export function armoredBlocks(text: string): { type: string; block: string }[] {
  const out: { type: string; block: string }[] = [];
  const re = /^-----BEGIN PGP ([A-Z ,/0-9]+)-----[ \t]*\r?$[\s\S]*?^-----END PGP \1-----[ \t]*\r?$/gm;
  for (const m of text.matchAll(re)) {
    out.push({ type: m[1] ?? '', block: m[0] });
  }
  return out;
}
