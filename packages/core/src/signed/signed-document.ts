import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { z } from 'zod';
import { SignatureError, type SysattestError } from '../errors.js';
import type { SigningKey, TrustedKeyring } from '../openpgp/index.js';
import { verifyDetached, type VerifiedSignature } from '../openpgp/index.js';
import { pinnedKeyDigest } from '../openpgp/keyring.js';
import { canonicalJson, matchesCanonicalJson } from './canonical-json.js';

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

/** The whole signature check behind each VerifiedDocument (for sealDocument). */
const SIGNATURES = new WeakMap<object, VerifiedSignature>();

/** Options of verifyDocument() and openDocumentSeal(). */
export interface VerifyDocumentOptions {
  /** Verification time (default now). */
  now?: Date;
  /**
   * The caller hands `bytes` over: it made them for this call (read from a file, decoded from an
   * answer) and keeps no other reference, so they are used without a copy. Saves a copy of the
   * document at peak (15 MB for the largest manifests). Default false: a copy is taken, since a
   * buffer the caller still holds could change after it was verified.
   */
  adoptBytes?: boolean;
}

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
 * UTF-8, JSON syntax, schema, canonical form (the bytes are exactly canonicalJson() of the content:
 * no byte order mark, nothing before or after it), and that the content names the key that signed
 * it. Throws SignatureError or the kind's error (`INVALID` for bytes that are not canonical);
 * never returns unverified content.
 */
export async function verifyDocument<T>(
  kind: DocumentKind<T>,
  bytes: Uint8Array,
  signature: string,
  keyring: TrustedKeyring,
  options: VerifyDocumentOptions = {},
): Promise<VerifiedDocument<T>> {
  if (bytes.length > kind.maxBytes) {
    throw kind.error(
      'TOO_LARGE',
      `${kind.what} is ${bytes.length} bytes, over the ${kind.maxBytes} limit; not verified`,
    );
  }
  // Our own copy (unless handed over): the caller's buffer could change after it was verified.
  const own = options.adoptBytes === true ? bytes : new Uint8Array(bytes);
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
  const doc = new VerifiedDocument(VERIFIED, content, own, signature, signer.fingerprint, signer.created);
  SIGNATURES.set(doc, signer);
  return doc;
}

/**
 * A seal: a local, keyed proof that this process (or an earlier run holding the same secret)
 * verified these exact bytes — signature against a pinned key, UTF-8, JSON, schema, canonical
 * form, named signer — so that a later run can use them again without repeating that work
 * (openDocumentSeal). It is an HMAC-SHA-256 under a secret kept by the caller, over the kind,
 * the signer's primary and signing (sub)key fingerprints, the signature's creation and expiry
 * times, the SHA-256 of everything the keyring then held for the signer's key, the SHA-256 of the
 * armored signature, and the bytes. It proves nothing to anyone without the secret, and it is
 * only as safe as the secret: keep the secret where the pinned keys are.
 */
export interface DocumentSeal {
  v: 1;
  /** Primary-key fingerprint of the pinned key that signed. */
  signer: string;
  /** The (sub)key whose signature verified. */
  signingKey: string;
  /** Signature creation time, ISO 8601. */
  created: string;
  /** Signature expiry, ISO 8601, when it has one. */
  expires?: string;
  /** HMAC-SHA-256, lower-case hex. */
  mac: string;
}

/** Bytes of secret a seal needs (at least). */
export const SEAL_SECRET_BYTES = 32;

function sealMac(
  kind: DocumentKind<unknown>,
  keyDigest: string,
  seal: Omit<DocumentSeal, 'mac'>,
  signature: string,
  bytes: Uint8Array,
  secret: Uint8Array,
): Buffer {
  const header = JSON.stringify([
    'sysattest document seal v1',
    kind.what,
    keyDigest,
    seal.signer,
    seal.signingKey,
    seal.created,
    seal.expires ?? null,
    sha256Hex(Buffer.from(signature, 'utf8')),
    bytes.length,
  ]);
  return createHmac('sha256', secret).update(header).update('\n').update(bytes).digest();
}

function checkSecret(secret: Uint8Array): void {
  if (!(secret instanceof Uint8Array) || secret.length < SEAL_SECRET_BYTES)
    throw new TypeError(`a seal secret is at least ${SEAL_SECRET_BYTES} bytes`);
}

/**
 * Seals a document verifyDocument() returned, for `keyring` (the keys it was verified against).
 * Undefined for a document not verified in this process, or whose signer the keyring lacks.
 */
export function sealDocument<T>(
  kind: DocumentKind<T>,
  doc: VerifiedDocument<T>,
  keyring: TrustedKeyring,
  secret: Uint8Array,
): DocumentSeal | undefined {
  checkSecret(secret);
  const sig = SIGNATURES.get(doc);
  if (sig === undefined) return undefined;
  const keyDigest = pinnedKeyDigest(keyring, sig.fingerprint);
  if (keyDigest === undefined) return undefined;
  const fields: Omit<DocumentSeal, 'mac'> = {
    v: 1,
    signer: sig.fingerprint,
    signingKey: sig.signingKeyFingerprint,
    created: sig.created.toISOString(),
    ...(sig.expires === undefined ? {} : { expires: sig.expires.toISOString() }),
  };
  const mac = sealMac(kind as DocumentKind<unknown>, keyDigest, fields, doc.signature, doc.bytes, secret);
  return { ...fields, mac: mac.toString('hex') };
}

const FPR = /^[0-9A-F]{40}$/;
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * The document again from bytes + signature + a seal made by sealDocument() with the same secret,
 * or undefined when the seal does not hold: anything changed in the bytes, the signature or the
 * seal; the signer no longer pinned, or anything the keyring holds for its key changed since (a
 * new revocation, say); the signature expired since; a malformed seal. The caller then verifies
 * the document in full (verifyDocument), which decides. A seal that holds stands for the whole
 * check verifyDocument made, so the bytes are only decoded, not validated again; but bytes that
 * are not framed as canonical JSON (a byte order mark, anything before the object or after its
 * final newline) never open from a seal, whoever sealed them.
 */
export function openDocumentSeal<T>(
  kind: DocumentKind<T>,
  bytes: Uint8Array,
  signature: string,
  seal: unknown,
  keyring: TrustedKeyring,
  secret: Uint8Array,
  options: VerifyDocumentOptions = {},
): VerifiedDocument<T> | undefined {
  checkSecret(secret);
  if (typeof seal !== 'object' || seal === null || typeof signature !== 'string') return undefined;
  const s = seal as Partial<Record<keyof DocumentSeal, unknown>>;
  if (
    s.v !== 1 ||
    typeof s.signer !== 'string' ||
    !FPR.test(s.signer) ||
    typeof s.signingKey !== 'string' ||
    !FPR.test(s.signingKey) ||
    typeof s.created !== 'string' ||
    !ISO.test(s.created) ||
    (s.expires !== undefined && (typeof s.expires !== 'string' || !ISO.test(s.expires))) ||
    typeof s.mac !== 'string' ||
    !/^[0-9a-f]{64}$/.test(s.mac) ||
    bytes.length > kind.maxBytes
  ) {
    return undefined;
  }
  const keyDigest = pinnedKeyDigest(keyring, s.signer);
  if (keyDigest === undefined) return undefined;
  const fields: Omit<DocumentSeal, 'mac'> = {
    v: 1,
    signer: s.signer,
    signingKey: s.signingKey,
    created: s.created,
    ...(s.expires === undefined ? {} : { expires: s.expires as string }),
  };
  const own = options.adoptBytes === true ? bytes : new Uint8Array(bytes);
  const expected = sealMac(kind as DocumentKind<unknown>, keyDigest, fields, signature, own, secret);
  if (!timingSafeEqual(expected, Buffer.from(s.mac, 'hex'))) return undefined;
  const now = options.now ?? new Date();
  if (fields.expires !== undefined && now.getTime() >= Date.parse(fields.expires)) return undefined;
  // The seal's MAC says the bytes are the ones verified; an earlier build could have verified (and
  // sealed) bytes it should not have, such as a BOM before the canonical form: only bytes framed
  // as canonical JSON are taken from a seal, anything else goes back to the full check.
  if (canonicalFramingProblem(own) !== undefined) return undefined;
  let content: T;
  try {
    content = JSON.parse(UTF8.decode(own)) as T;
  } catch {
    return undefined;
  }
  if (typeof content !== 'object' || content === null || kind.keyFingerprintOf(content) !== s.signer)
    return undefined;
  const doc = new VerifiedDocument(VERIFIED, content, own, signature, s.signer, new Date(fields.created));
  SIGNATURES.set(doc, {
    fingerprint: s.signer,
    signingKeyFingerprint: s.signingKey,
    created: new Date(fields.created),
    ...(fields.expires === undefined ? {} : { expires: new Date(fields.expires) }),
  });
  return doc;
}

/**
 * UTF-8 as signed bytes are decoded: fatal on any invalid sequence (overlong forms, surrogates),
 * and a byte order mark kept rather than silently dropped, as TextDecoder does by default, so
 * that BOM + canonical bytes cannot pass for the canonical bytes.
 */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * What is wrong with the first and last bytes of a document for canonical JSON, which is one
 * object and one final newline (canonicalJson()): a byte order mark, anything before the `{`
 * (whitespace), or anything after the `}` but the newline. Undefined when they are right; the
 * rest is left to the full check.
 */
function canonicalFramingProblem(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'starts with a byte order mark';
  if (bytes[0] !== 0x7b) return 'does not start with "{"';
  if (bytes.length < 3 || bytes[bytes.length - 2] !== 0x7d || bytes[bytes.length - 1] !== 0x0a)
    return 'does not end with "}" and one newline';
  return undefined;
}

/**
 * Parses bytes that are already verified; refuses anything but the canonical encoding: the signed
 * bytes must be exactly canonicalJson() of their content, byte for byte.
 */
function parseCanonical<T>(kind: DocumentKind<T>, bytes: Uint8Array): T {
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw kind.error('INVALID', `${kind.what} is not valid UTF-8`);
  }
  if (text.charCodeAt(0) === 0xfeff) {
    throw kind.error(
      'INVALID',
      `${kind.what} is not in canonical form: it starts with a byte order mark (U+FEFF)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw kind.error('INVALID', `${kind.what} is not valid JSON: ${(e as Error).message}`);
  }
  const content = validate(kind, raw);
  raw = undefined; // the validated copy is what is kept: the parse can go while the check runs
  // One document, one encoding: duplicate keys, reordered keys or extra whitespace would let two
  // different byte strings claim the same content.
  if (!matchesCanonicalJson(content, text)) {
    const framing = canonicalFramingProblem(bytes);
    throw kind.error(
      'INVALID',
      `${kind.what} is not in canonical form (${framing ?? 'sorted keys, no whitespace, one final newline'})`,
    );
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
