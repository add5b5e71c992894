import { z } from 'zod';
import { CATALOG_LIMITS } from '../catalog/index.js';
import { MANIFEST_LIMITS } from '../manifest/index.js';
import { MAX_ARMORED_KEY_BYTES, MAX_SIGNATURE_BYTES } from '../openpgp/index.js';

/** Characters of base64 that encode n bytes (padded). */
export const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

/**
 * The bounds of the wire. Every one is checked where the text arrives: the server before a
 * handler runs, a reader before it uses an answer.
 */
export const PROTOCOL_LIMITS = {
  /** Package versions in one lookup. */
  lookupItems: 100_000,
  /** Characters of a package name, version or architecture. */
  fieldLength: 256,
  /** Characters of a platform id. */
  platformLength: 200,
  /** Content hashes in one reverse lookup. */
  reverseLookupHashes: 100_000,
  /** Hits a reader accepts for one hash (the server sends at most 1,000 by default). */
  reverseLookupHits: 100_000,
  /** Catalog snapshots other than the platform's own that one lookup answer names. */
  foreignCatalogs: 256,
  /** Jobs one claim leases. */
  claimJobs: 1000,
  /** Platforms one claim names. */
  claimPlatforms: 256,
  leaseSeconds: 24 * 3600,
  workerIdLength: 200,
  /** Characters of a failed job's error. */
  jobErrorLength: 4000,
  /** Keys GET /v1/keys lists, as a reader accepts them. */
  publicKeys: 1000,
  /** Characters of an upload's `manifest` (base64, with room for the JSON around it). */
  manifestUploadLength: base64Length(MANIFEST_LIMITS.maxBytes) + 1024 * 1024,
  /** Characters of an upload's `catalog`. */
  catalogUploadLength: base64Length(CATALOG_LIMITS.maxBytes) + 1024 * 1024,
  /** Characters of an armored detached signature. */
  signatureLength: MAX_SIGNATURE_BYTES,
} as const;

export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A sha256, lower-case hex: content hashes and documents' digests. */
export const sha256Field = () => z.string().regex(SHA256_HEX);
/** A platform id as a request names it. */
export const platformField = () => z.string().min(1).max(PROTOCOL_LIMITS.platformLength);
/** A package name, version or architecture. */
export const packageField = () => z.string().min(1).max(PROTOCOL_LIMITS.fieldLength);
/** A generator key's fingerprint as the server writes it (upper-case hex). */
export const fingerprintField = () => z.string().regex(/^[0-9A-F]{40}$/);
export const armoredKeyField = () => z.string().min(1).max(MAX_ARMORED_KEY_BYTES);
/** A document's signed bytes in base64 (RFC 4648, padded), as a reader bounds them. */
export const base64Field = (maxBytes: number) =>
  z
    .string()
    .max(base64Length(maxBytes) + 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
    .meta({ contentEncoding: 'base64' });
export const signatureField = () =>
  z.string().min(1).max(MAX_SIGNATURE_BYTES).describe('armored detached OpenPGP signature');
/** A time the server wrote (ISO 8601). */
export const timeField = () => z.string().meta({ format: 'date-time' });
/** A database id in a path: what `routePath` fills in for `:id`. */
export const idParams = () => z.strictObject({ id: z.string().regex(/^[1-9][0-9]{0,14}$/) });
/** `{digest}` in a path: the sha256 of a stored document's signed bytes. */
export const digestParams = () => z.strictObject({ digest: sha256Field() });
/** The querystring of a route that takes none: any parameter is refused. */
export const noQuery = () => z.strictObject({});
