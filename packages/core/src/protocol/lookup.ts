import { z } from 'zod';
import { MANIFEST_LIMITS } from '../manifest/index.js';
import {
  PROTOCOL_LIMITS,
  base64Field,
  fingerprintField,
  packageField,
  platformField,
  sha256Field,
  signatureField,
  timeField,
} from './fields.js';
import { jobStateSchema } from './jobs.js';
import { sentAlways, unchecked } from './json-schema.js';

// --- POST /v1/lookup ------------------------------------------------------------------------

export const lookupRequestSchema = z.strictObject({
  platform: platformField(),
  items: z
    .array(z.strictObject({ name: packageField(), version: packageField(), arch: packageField() }))
    .max(PROTOCOL_LIMITS.lookupItems),
  documents: z
    .boolean()
    .optional()
    .describe(
      'false: answer ok items with their digest only (a client with a manifest cache fetches the ' +
        'ones it lacks from GET /v1/manifests/{digest}); default true',
    ),
});
export type LookupRequest = z.infer<typeof lookupRequestSchema>;

export const LOOKUP_STATUSES = ['ok', 'pending', 'not-in-catalog', 'unknown-platform'] as const;
export const DEFERRED_REASONS = ['quota', 'token-required'] as const;

/** A stored catalog snapshot as answers name it; a client fetches and verifies it by digest. */
export const catalogSnapshotInfoSchema = z.object({
  id: unchecked(z.int(), { sentAlways: true }),
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  digest: sha256Field(),
  generatedAt: z.string().max(64).meta({ format: 'date-time' }),
  signerFingerprint: unchecked(fingerprintField(), { sentAlways: true }),
  packageCount: unchecked(z.int(), { sentAlways: true }),
  ingestedAt: unchecked(timeField(), { sentAlways: true }),
});

export const lookupAnswerItemSchema = z.object({
  name: packageField(),
  version: packageField(),
  arch: packageField(),
  status: z.enum(LOOKUP_STATUSES),
  newestVersion: packageField().optional(),
  manifest: z
    .object({
      digest: sha256Field(),
      bytes: base64Field(MANIFEST_LIMITS.maxBytes).optional(),
      signature: signatureField().optional(),
    })
    .optional()
    .describe(
      'status ok: the digest, and the signed bytes (base64) with the detached signature unless the ' +
        'lookup asked documents: false or the answer reached its document budget (see documentsOmitted): ' +
        'then fetch GET /v1/manifests/{digest}',
    ),
  job: unchecked(
    z.object({ id: z.int(), state: jobStateSchema }).describe('status pending: the generation job'),
    { sentAlways: false },
  ),
  deferred: z
    .enum(DEFERRED_REASONS)
    .optional()
    .describe(
      'status pending without a job: nothing was queued, because this anonymous client reached its ' +
        'queue quota or the server queues work for token holders only; a later lookup queues it',
    ),
  withdrawnAt: unchecked(timeField(), { sentAlways: false }),
});
export type LookupAnswerItem = z.infer<typeof lookupAnswerItemSchema>;

export const lookupAnswerSchema = z.object({
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  catalog: catalogSnapshotInfoSchema.optional(),
  foreignCatalogs: sentAlways(z.array(catalogSnapshotInfoSchema).max(PROTOCOL_LIMITS.foreignCatalogs)),
  items: z.array(lookupAnswerItemSchema).describe('one per item asked, in the same order'),
  documentsOmitted: unchecked(
    z
      .int()
      .describe(
        'documents: true, and the answer reached its document budget: this many ok items carry their digest only',
      ),
    { sentAlways: false },
  ),
});
export type LookupAnswer = z.infer<typeof lookupAnswerSchema>;

// --- POST /v1/reverse-lookup ----------------------------------------------------------------

export const reverseLookupRequestSchema = z.strictObject({
  sha256: z.array(sha256Field()).max(PROTOCOL_LIMITS.reverseLookupHashes),
});

/** Where a file content was found: one path of one package version. */
export const reverseLookupHitSchema = z.object({
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  name: packageField(),
  version: packageField(),
  arch: packageField(),
  path: z.string().max(4096),
});
export type ReverseLookupHit = z.infer<typeof reverseLookupHitSchema>;

export const reverseLookupAnswerSchema = z.object({
  results: z.array(
    z.object({
      sha256: sha256Field(),
      hits: z.array(reverseLookupHitSchema).max(PROTOCOL_LIMITS.reverseLookupHits),
      /** More hits exist than the server sends for one hash. */
      truncated: z.literal(true).optional(),
    }),
  ),
});
export type ReverseLookupAnswer = z.infer<typeof reverseLookupAnswerSchema>;
