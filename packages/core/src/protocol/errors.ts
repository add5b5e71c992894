import { z } from 'zod';
import { documentedAs } from './json-schema.js';

/**
 * Every error the API returns has one body, whatever went wrong:
 * `{ "error": { "code": "STABLE_CODE", "message": "…" } }`. Callers switch on the code, never on
 * the message. This catalogue is the complete list of codes and their HTTP statuses.
 */
export const API_ERROR_CODES = {
  /** Malformed JSON, a schema violation, an argument the store refuses. */
  BAD_REQUEST: 400,
  /** No token, or a token that is unknown or revoked. */
  UNAUTHORIZED: 401,
  /** A valid token whose role is not enough for the route. */
  FORBIDDEN: 403,
  /** No such route, job, token or document. */
  NOT_FOUND: 404,
  /** The route exists but not with this method. */
  METHOD_NOT_ALLOWED: 405,
  /** Other bytes are stored for the same platform + package + version (recorded for the operator). */
  CONFLICT: 409,
  /** The worker no longer holds the job's lease. */
  LEASE_LOST: 409,
  /** The body is over the size cap. */
  PAYLOAD_TOO_LARGE: 413,
  /** The body is not `application/json`. */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** The signature does not verify against the trusted generator keys (or no key is trusted). */
  BAD_SIGNATURE: 422,
  /** The signature verifies but the document is not a valid manifest / catalog. */
  INVALID_DOCUMENT: 422,
  /** The platform's distribution has no implemented version ordering. */
  UNSUPPORTED: 422,
  /** Rate limit. */
  TOO_MANY_REQUESTS: 429,
  /** A bug: the message says nothing about the internals. */
  INTERNAL: 500,
  /** The database cannot be reached right now: retry later. */
  UNAVAILABLE: 503,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_CODES;

export function isApiErrorCode(code: string): code is ApiErrorCode {
  return Object.hasOwn(API_ERROR_CODES, code);
}

/** An error body as a reader parses it: a code a newer server may have added is still a code. */
export const apiErrorBodySchema = z.object({
  error: z.object({
    code: documentedAs(z.string().max(100), z.enum(Object.keys(API_ERROR_CODES) as [ApiErrorCode])),
    message: z.string().max(2000),
  }),
});

/** The error body as the server writes it. */
export interface ApiErrorBody {
  error: { code: ApiErrorCode; message: string };
}
