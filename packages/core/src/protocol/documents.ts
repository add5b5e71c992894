import { z } from 'zod';
import { CATALOG_LIMITS } from '../catalog/index.js';
import { MANIFEST_LIMITS } from '../manifest/index.js';
import {
  PROTOCOL_LIMITS,
  armoredKeyField,
  base64Field,
  fingerprintField,
  sha256Field,
  signatureField,
  timeField,
} from './fields.js';
import { documentedAs, sentAlways, unchecked } from './json-schema.js';
import { catalogSnapshotInfoSchema } from './lookup.js';

/** Signed documents travel as their exact bytes in base64 next to the armored detached signature. */
const uploadSignature = () => z.string().min(1).max(PROTOCOL_LIMITS.signatureLength);

// --- manifests ------------------------------------------------------------------------------

/** POST /v1/manifests (a generator token). */
export const manifestUploadSchema = z.strictObject({
  manifest: z.string().min(1).max(PROTOCOL_LIMITS.manifestUploadLength),
  signature: uploadSignature(),
});

/** The answer of POST /v1/manifests: 201 stored, 200 the same bytes were stored before. */
export const manifestUploadedSchema = z.object({
  outcome: documentedAs(z.string().max(50), z.enum(['stored', 'duplicate'])),
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  name: z.string().max(PROTOCOL_LIMITS.fieldLength),
  version: z.string().max(PROTOCOL_LIMITS.fieldLength),
  arch: z.string().max(PROTOCOL_LIMITS.fieldLength),
  signerFingerprint: unchecked(fingerprintField(), { sentAlways: true }),
});

/** GET /v1/manifests/{digest}: one stored manifest. */
export const manifestDocumentSchema = z.object({
  digest: unchecked(sha256Field(), { sentAlways: true }),
  platform: unchecked(z.string(), { sentAlways: true }),
  name: unchecked(z.string(), { sentAlways: true }),
  version: unchecked(z.string(), { sentAlways: true }),
  arch: unchecked(z.string(), { sentAlways: true }),
  manifest: base64Field(MANIFEST_LIMITS.maxBytes).describe('the exact signed bytes'),
  signature: signatureField(),
});

// --- catalogs -------------------------------------------------------------------------------

/** POST /v1/catalogs (a generator token). */
export const catalogUploadSchema = z.strictObject({
  catalog: z.string().min(1).max(PROTOCOL_LIMITS.catalogUploadLength),
  signature: uploadSignature(),
});

/** The answer of POST /v1/catalogs: 201 stored, 200 the same bytes were stored before. */
export const catalogUploadedSchema = z.object({
  snapshot: unchecked(catalogSnapshotInfoSchema, { sentAlways: true }),
  duplicate: z.boolean(),
  latest: unchecked(z.boolean(), { sentAlways: true }),
  added: sentAlways(documentedAs(z.number(), z.int())),
  withdrawn: sentAlways(documentedAs(z.number(), z.int())),
  unchanged: unchecked(z.int(), { sentAlways: true }),
  newestChanged: unchecked(
    z.array(
      z.object({
        name: z.string(),
        arch: z.string(),
        from: z.string().nullable(),
        to: z.string().nullable(),
      }),
    ),
    { sentAlways: true },
  ),
  jobsQueued: sentAlways(documentedAs(z.number(), z.int())),
});

/** GET /v1/catalogs/{digest}: one stored catalog snapshot. */
export const catalogDocumentSchema = z.object({
  digest: unchecked(sha256Field(), { sentAlways: true }),
  platform: unchecked(z.string(), { sentAlways: true }),
  generatedAt: unchecked(timeField(), { sentAlways: true }),
  catalog: base64Field(CATALOG_LIMITS.maxBytes).describe('the exact signed bytes'),
  signature: signatureField(),
});

// --- keys -----------------------------------------------------------------------------------

/** GET /v1/keys: the generator keys the server trusts (a client pins one only by fingerprint). */
export const publicKeysAnswerSchema = z.object({
  keys: z
    .array(z.object({ fingerprint: fingerprintField(), armored: armoredKeyField() }))
    .max(PROTOCOL_LIMITS.publicKeys),
});
