import { createHash } from 'node:crypto';
import { ManifestError, SignatureError } from '../errors.js';
import type { SigningKey, TrustedKeyring } from '../openpgp/index.js';
import { verifyDetached } from '../openpgp/index.js';
import { canonicalJson } from './canonical-json.js';
import { MANIFEST_LIMITS, manifestSchema, type Manifest } from './schema.js';

/**
 * The life of a manifest's bytes:
 *   generator: build a Manifest → signManifest() → exact bytes + detached signature;
 *   anyone else: verifyManifest(bytes, signature, pinned keys) → VerifiedManifest.
 * There is deliberately no exported way to parse manifest bytes without verifying them first
 * (trust model rule 1: a server, database or network cannot make a client read unsigned content).
 */

/** Only this module holds it, so only verifyManifest() can construct a VerifiedManifest. */
const VERIFIED: unique symbol = Symbol('verified');

/** A manifest whose bytes were signed by a pinned key, then parsed and validated. */
export class VerifiedManifest {
  /** sha256 of the bytes, lower-case hex: the manifest's content address. */
  readonly digest: string;

  constructor(
    token: typeof VERIFIED,
    /** The validated content. */
    readonly manifest: Manifest,
    /** The exact signed bytes. */
    readonly bytes: Uint8Array,
    /** The armored detached signature that verified. */
    readonly signature: string,
    /** Fingerprint (40 upper-case hex) of the pinned primary key that signed. */
    readonly signerFingerprint: string,
    /** When the signature says it was made. */
    readonly signedAt: Date,
  ) {
    if (token !== VERIFIED) throw new TypeError('VerifiedManifest is made by verifyManifest() only');
    this.digest = sha256Hex(bytes);
    Object.freeze(this);
  }
}

export interface SignedManifest {
  bytes: Uint8Array;
  signature: string;
  digest: string;
}

/** The exact bytes of a manifest: canonical JSON of the validated content. */
export function serialiseManifest(manifest: Manifest): Uint8Array {
  const checked = validate(manifest);
  const bytes = Buffer.from(canonicalJson(checked), 'utf8');
  if (bytes.length > MANIFEST_LIMITS.maxBytes) {
    throw new ManifestError(
      'MANIFEST_TOO_LARGE',
      `manifest for ${manifest.package.name} is ${bytes.length} bytes, over the ${MANIFEST_LIMITS.maxBytes} limit`,
    );
  }
  return bytes;
}

/**
 * Validates, serialises and signs a manifest. The manifest must name the signing key in
 * provenance.keyFingerprint, so a signature by another key can never pass as this one's.
 */
export async function signManifest(manifest: Manifest, key: SigningKey): Promise<SignedManifest> {
  if (manifest.provenance.keyFingerprint !== key.fingerprint) {
    throw new ManifestError(
      'MANIFEST_MISMATCH',
      `manifest names key ${manifest.provenance.keyFingerprint} but is being signed with ${key.fingerprint}`,
    );
  }
  const bytes = serialiseManifest(manifest);
  return { bytes, signature: await key.sign(bytes), digest: sha256Hex(bytes) };
}

/**
 * Checks, in this order: size cap (before any parsing), signature against the pinned keys, then
 * JSON syntax, canonical form, schema, and that the manifest names the key that signed it.
 * Throws SignatureError or ManifestError; never returns unverified content.
 */
export async function verifyManifest(
  bytes: Uint8Array,
  signature: string,
  keyring: TrustedKeyring,
  options: { now?: Date } = {},
): Promise<VerifiedManifest> {
  if (bytes.length > MANIFEST_LIMITS.maxBytes) {
    throw new ManifestError(
      'MANIFEST_TOO_LARGE',
      `manifest is ${bytes.length} bytes, over the ${MANIFEST_LIMITS.maxBytes} limit; not verified`,
    );
  }
  // Our own copy: the caller's buffer could change after it was verified.
  const own = new Uint8Array(bytes);
  const signer = await verifyDetached(own, signature, keyring, options);
  const manifest = parseCanonical(own);
  if (manifest.provenance.keyFingerprint !== signer.fingerprint) {
    throw new SignatureError(
      'UNKNOWN_SIGNER',
      `manifest says it was made by key ${manifest.provenance.keyFingerprint} but is signed by ${signer.fingerprint}`,
      signer.fingerprint,
    );
  }
  return new VerifiedManifest(VERIFIED, manifest, own, signature, signer.fingerprint, signer.created);
}

/** Parses bytes that are already verified; refuses anything but the canonical encoding. */
function parseCanonical(bytes: Uint8Array): Manifest {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ManifestError('MANIFEST_INVALID', 'manifest is not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ManifestError('MANIFEST_INVALID', `manifest is not valid JSON: ${(e as Error).message}`);
  }
  const manifest = validate(raw);
  // One manifest, one encoding: duplicate keys, reordered keys or extra whitespace would let two
  // different byte strings claim the same content.
  if (canonicalJson(manifest) !== text) {
    throw new ManifestError(
      'MANIFEST_INVALID',
      'manifest is not in canonical form (sorted keys, no whitespace)',
    );
  }
  return manifest;
}

function validate(raw: unknown): Manifest {
  const result = manifestSchema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const shown = issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  throw new ManifestError('MANIFEST_INVALID', `manifest does not match schema v1: ${shown}${more}`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * File name for a manifest, as Debian names archives: `name_version_arch.json`, with the epoch
 * colon written `%3a` (a colon is not portable in file names).
 */
export function manifestFileName(pkg: { name: string; version: string; architecture: string }): string {
  return `${pkg.name}_${pkg.version.replaceAll(':', '%3a')}_${pkg.architecture}.json`;
}
