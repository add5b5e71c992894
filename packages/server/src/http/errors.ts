import {
  API_ERROR_CODES,
  CatalogError,
  ManifestError,
  PlatformError,
  SignatureError,
  SysattestError,
  type ApiErrorBody,
  type ApiErrorCode,
} from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { isStoreError } from '../store/index.js';

/**
 * The API's error codes and their statuses are the protocol's (core `protocol/errors.ts`): every
 * error body is `{ "error": { "code": "STABLE_CODE", "message": "…" } }`.
 */
export const ERROR_CODES = API_ERROR_CODES;
export type ErrorCode = ApiErrorCode;
export type ErrorBody = ApiErrorBody;

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

/**
 * Every answer that is not a success has the one error body: what a handler or hook threw, and
 * any URL no route serves. Unexpected errors go to `onInternalError`; the client sees a fixed message.
 */
export function answerErrors(
  app: FastifyInstance,
  onInternalError: (error: unknown, request: { method: string; url: string }) => void,
): void {
  app.setErrorHandler((e, request, reply) => {
    const { error, internal } = toApiError(e);
    if (internal) {
      try {
        onInternalError(e, { method: request.method, url: request.url });
      } catch {
        // A failing reporter must not turn an error answer into no answer.
      }
    }
    void reply.code(error.statusCode).type('application/json').send(errorBody(error));
  });
  app.setNotFoundHandler((request, reply) => {
    const error = new ApiError('NOT_FOUND', `no route ${request.method} ${request.url.slice(0, 200)}`);
    void reply.code(error.statusCode).send(errorBody(error));
  });
}
