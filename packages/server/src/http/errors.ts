import { CatalogError, ManifestError, PlatformError, SignatureError, SysattestError } from '@sysattest/core';
import { isStoreError } from '../store/index.js';

/**
 * Every error the API returns has this body, whatever went wrong:
 * `{ "error": { "code": "STABLE_CODE", "message": "…" } }`. Clients switch on the code, never on
 * the message. The catalogue below is the complete list of codes and their HTTP statuses.
 */
export const ERROR_CODES = {
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
  /** Rate limit (reserved). */
  TOO_MANY_REQUESTS: 429,
  /** A bug: the message says nothing about the internals. */
  INTERNAL: 500,
  /** The database cannot be reached right now: retry later. */
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error with an API code; thrown by handlers and hooks, rendered by the error handler. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get statusCode(): number {
    return ERROR_CODES[this.code];
  }
}

function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 409:
      return 'CONFLICT';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'TOO_MANY_REQUESTS';
    default:
      return 'BAD_REQUEST';
  }
}

/** Longest message sent back (a schema error can quote a huge value). */
const MAX_MESSAGE = 500;

function clip(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
}

/**
 * Maps anything thrown while answering a request to an API error. `internal` is true for errors
 * nobody expected (logged by the caller; the client sees a fixed message).
 */
export function toApiError(e: unknown): { error: ApiError; internal: boolean } {
  if (e instanceof ApiError) return { error: e, internal: false };
  if (isStoreError(e)) {
    switch (e.code) {
      case 'CONFLICT':
        return { error: new ApiError('CONFLICT', e.message), internal: false };
      case 'NOT_FOUND':
        return { error: new ApiError('NOT_FOUND', e.message), internal: false };
      case 'INVALID':
        return { error: new ApiError('BAD_REQUEST', e.message), internal: false };
      case 'LEASE_LOST':
        return { error: new ApiError('LEASE_LOST', e.message), internal: false };
      case 'UNSUPPORTED':
        return { error: new ApiError('UNSUPPORTED', e.message), internal: false };
      case 'UNAVAILABLE':
      case 'SCHEMA_TOO_NEW':
        return {
          error: new ApiError('UNAVAILABLE', 'the database is unavailable; retry later'),
          internal: true,
        };
    }
  }
  if (e instanceof SignatureError)
    return { error: new ApiError('BAD_SIGNATURE', clip(e.message)), internal: false };
  if (e instanceof ManifestError || e instanceof CatalogError) {
    const tooLarge = e.code === 'MANIFEST_TOO_LARGE' || e.code === 'CATALOG_TOO_LARGE';
    return {
      error: new ApiError(tooLarge ? 'PAYLOAD_TOO_LARGE' : 'INVALID_DOCUMENT', clip(e.message)),
      internal: false,
    };
  }
  if (e instanceof PlatformError)
    return { error: new ApiError('BAD_REQUEST', clip(e.message)), internal: false };
  if (e instanceof SysattestError)
    return { error: new ApiError('BAD_REQUEST', clip(e.message)), internal: false };
  // Fastify's own errors (bad JSON, content type, body size, schema validation) carry a 4xx status.
  const f = e as { statusCode?: unknown; message?: unknown; validation?: unknown; code?: unknown };
  if (typeof f?.statusCode === 'number' && f.statusCode >= 400 && f.statusCode < 500) {
    let message = typeof f.message === 'string' ? f.message : 'bad request';
    if (f.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e instanceof SyntaxError)
      message = 'the body is not valid JSON';
    return { error: new ApiError(codeForStatus(f.statusCode), clip(message)), internal: false };
  }
  return { error: new ApiError('INTERNAL', 'internal error'), internal: true };
}

export function errorBody(e: ApiError): ErrorBody {
  return { error: { code: e.code, message: e.message } };
}
