import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { SignatureError, type SysattestError } from '../errors.js';
import type { SigningKey, TrustedKeyring } from '../openpgp/index.js';
import { verifyDetached } from '../openpgp/index.js';
import { canonicalJson } from './canonical-json.js';

/**
 * Signed JSON documents (manifests, catalog snapshots): their life is
 *   maker:  content → signDocument() → exact canonical bytes + detached OpenPGP signature;
 *   reader: verifyDocument(bytes, signature, pinned keys) → VerifiedDocument.
 * There is deliberately no exported way to parse the bytes without verifying them first (trust
 * model rule 1: a server, database or network cannot make a client read unsigned content), and
 * the signature is over the exact bytes, so stock `gpg --verify` checks them too (rule 5).
 */

/** What differs between kinds of signed document. */
export interface DocumentKind<T> {
  /** For messages: "manifest", "catalog snapshot". */
  readonly what: string;
  readonly schema: z.ZodType<T>;
  readonly maxBytes: number;
  /** The key the document says signed it: a signature by any other key is refused. */
  keyFingerprintOf(content: T): string;
  /** A short description of one document for messages, e.g. "coreutils 9.1-1 (amd64)". */
  describe(content: T): string;
  /** Builds this kind's error. */
  error(code: 'TOO_LARGE' | 'INVALID' | 'KEY_MISMATCH', message: string): SysattestError;
}

/** Only this module holds it, so only verifyDocument() can construct a VerifiedDocument. */
const VERIFIED: unique symbol = Symbol('verified');

/** A document whose bytes were signed by a pinned key, then parsed and validated. */
export class VerifiedDocument<T> {
  /** sha256 of the bytes, lower-case hex: the document's content address. */
  readonly digest: string;

  constructor(
    token: typeof VERIFIED,
    /** The validated content. */
    readonly content: T,
    /** The exact signed bytes. */
    readonly bytes: Uint8Array,
    /** The armored detached signature that verified. */
    readonly signature: string,
    /** Fingerprint (40 upper-case hex) of the pinned primary key that signed. */
    readonly signerFingerprint: string,
    /** When the signature says it was made. */
    readonly signedAt: Date,
  ) {
    if (token !== VERIFIED) throw new TypeError('a verified document is made by verifyDocument() only');
    this.digest = sha256Hex(bytes);
    Object.freeze(this);
  }
}

export interface SignedDocument {
  bytes: Uint8Array;
  signature: string;
  /** sha256 of the bytes, lower-case hex. */
  digest: string;
}

/** The exact bytes of a document: canonical JSON of the validated content. */
export function serialiseDocument<T>(kind: DocumentKind<T>, content: T): Uint8Array {
  const checked = validate(kind, content);
  const bytes = Buffer.from(canonicalJson(checked), 'utf8');
  if (bytes.length > kind.maxBytes) {
    throw kind.error(
      'TOO_LARGE',
      `${kind.what} for ${kind.describe(checked)} is ${bytes.length} bytes, over the ${kind.maxBytes} limit`,
    );
  }
  return bytes;
}

/** Validates, serialises and signs. The content must name the signing key. */
export async function signDocument<T>(
  kind: DocumentKind<T>,
  content: T,
  key: SigningKey,
): Promise<SignedDocument> {
  const named = kind.keyFingerprintOf(content);
  if (named !== key.fingerprint) {
    throw kind.error(
      'KEY_MISMATCH',
      `${kind.what} names key ${named} but is being signed with ${key.fingerprint}`,
    );
  }
  const bytes = serialiseDocument(kind, content);
  return { bytes, signature: await key.sign(bytes), digest: sha256Hex(bytes) };
}

/**
 * Checks, in this order: size cap (before any parsing), signature against the pinned keys, then
 * UTF-8, JSON syntax, schema, canonical form, and that the content names the key that signed it.
 * Throws SignatureError or the kind's error; never returns unverified content.
 */
export async function verifyDocument<T>(
  kind: DocumentKind<T>,
  bytes: Uint8Array,
  signature: string,
  keyring: TrustedKeyring,
  options: { now?: Date } = {},
): Promise<VerifiedDocument<T>> {
  if (bytes.length > kind.maxBytes) {
    throw kind.error(
      'TOO_LARGE',
      `${kind.what} is ${bytes.length} bytes, over the ${kind.maxBytes} limit; not verified`,
    );
  }
  // Our own copy: the caller's buffer could change after it was verified.
  const own = new Uint8Array(bytes);
  const signer = await verifyDetached(own, signature, keyring, options);
  const content = parseCanonical(kind, own);
  const named = kind.keyFingerprintOf(content);
  if (named !== signer.fingerprint) {
    throw new SignatureError(
      'UNKNOWN_SIGNER',
      `${kind.what} says it was made by key ${named} but is signed by ${signer.fingerprint}`,
      signer.fingerprint,
    );
  }
  return new VerifiedDocument(VERIFIED, content, own, signature, signer.fingerprint, signer.created);
}

/** Parses bytes that are already verified; refuses anything but the canonical encoding. */
function parseCanonical<T>(kind: DocumentKind<T>, bytes: Uint8Array): T {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw kind.error('INVALID', `${kind.what} is not valid UTF-8`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw kind.error('INVALID', `${kind.what} is not valid JSON: ${(e as Error).message}`);
  }
  const content = validate(kind, raw);
  // One document, one encoding: duplicate keys, reordered keys or extra whitespace would let two
  // different byte strings claim the same content.
  if (canonicalJson(content) !== text) {
    throw kind.error('INVALID', `${kind.what} is not in canonical form (sorted keys, no whitespace)`);
  }
  return content;
}

function validate<T>(kind: DocumentKind<T>, raw: unknown): T {
  const result = kind.schema.safeParse(raw);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const shown = issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .join('; ');
  const more = issues.length > 5 ? ` (and ${issues.length - 5} more)` : '';
  throw kind.error('INVALID', `${kind.what} does not match its schema: ${shown}${more}`);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
