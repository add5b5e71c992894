import { ManifestError } from '../errors.js';
import type { SigningKey, TrustedKeyring } from '../openpgp/index.js';
import {
  openDocumentSeal,
  sealDocument,
  serialiseDocument,
  signDocument,
  verifyDocument,
  type DocumentKind,
  type VerifyDocumentOptions,
  type DocumentSeal,
  type SignedDocument,
  type VerifiedDocument,
} from '../signed/signed-document.js';
import { MANIFEST_LIMITS, manifestSchema, type Manifest } from './schema.js';

const CODES = {
  TOO_LARGE: 'MANIFEST_TOO_LARGE',
  INVALID: 'MANIFEST_INVALID',
  KEY_MISMATCH: 'MANIFEST_MISMATCH',
} as const;

/** Manifests as signed documents: one per platform + package + version. */
export const MANIFEST_KIND: DocumentKind<Manifest> = {
  what: 'manifest',
  schema: manifestSchema,
  maxBytes: MANIFEST_LIMITS.maxBytes,
  keyFingerprintOf: (m) => m.provenance.keyFingerprint,
  describe: (m) => `${m.package.name} ${m.package.version} (${m.platform})`,
  error: (code, message) => new ManifestError(CODES[code], message),
};

/** A manifest whose bytes were signed by a pinned key, then parsed and validated. */
export type VerifiedManifest = VerifiedDocument<Manifest>;

/** The exact bytes of a manifest: canonical JSON of the validated content. */
export function serialiseManifest(manifest: Manifest): Uint8Array {
  return serialiseDocument(MANIFEST_KIND, manifest);
}

/** Validates, serialises and signs; provenance.keyFingerprint must be the signing key's. */
export function signManifest(manifest: Manifest, key: SigningKey): Promise<SignedDocument> {
  return signDocument(MANIFEST_KIND, manifest, key);
}

/** Verifies against pinned keys, then parses: see verifyDocument() for the order of checks. */
export function verifyManifest(
  bytes: Uint8Array,
  signature: string,
  keyring: TrustedKeyring,
  options: VerifyDocumentOptions = {},
): Promise<VerifiedManifest> {
  return verifyDocument(MANIFEST_KIND, bytes, signature, keyring, options);
}

/** A seal for a manifest verifyManifest() returned (see sealDocument). */
export function sealManifest(
  manifest: VerifiedManifest,
  keyring: TrustedKeyring,
  secret: Uint8Array,
): DocumentSeal | undefined {
  return sealDocument(MANIFEST_KIND, manifest, keyring, secret);
}

/** A sealed manifest again, or undefined when its seal does not hold (see openDocumentSeal). */
export function openSealedManifest(
  bytes: Uint8Array,
  signature: string,
  seal: unknown,
  keyring: TrustedKeyring,
  secret: Uint8Array,
  options: VerifyDocumentOptions = {},
): VerifiedManifest | undefined {
  return openDocumentSeal(MANIFEST_KIND, bytes, signature, seal, keyring, secret, options);
}

/**
 * File name for a manifest, as Debian names archives: `name_version_arch.json`, with the epoch
 * colon written `%3a` (a colon is not portable in file names).
 */
export function manifestFileName(pkg: { name: string; version: string; architecture: string }): string {
  return `${pkg.name}_${pkg.version.replaceAll(':', '%3a')}_${pkg.architecture}.json`;
}
