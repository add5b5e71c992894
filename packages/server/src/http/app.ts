import { verifyCatalog, verifyManifest, type TrustedKeyring } from '@sysattest/core';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  JOB_LIMITS,
  JOB_STATES,
  LOOKUP_LIMITS,
  type LookupItemResult,
  type Store,
  type TokenRole,
} from '../store/index.js';
import { ApiError, errorBody, toApiError } from './errors.js';

export interface AppOptions {
  store: Store;
  /** The keys uploads must be signed by (default: the store's trusted keys, read per upload). */
  trustedKeyring?: () => Promise<TrustedKeyring>;
  /** Whether lookups need a reader token (default false: anyone may read). */
  readsNeedToken?: boolean;
  /**
   * Body-size cap in bytes for every route. Default: enough for the largest manifest (64 MiB) or
   * catalog (128 MiB) in base64 on the upload routes, 64 MiB elsewhere.
   */
  bodyLimit?: number;
  /** Fastify's logger (default off). */
  logger?: boolean;
  /**
   * Called with every unexpected error (the client only sees `INTERNAL` / `UNAVAILABLE` and a
   * fixed message). Default: one line on stderr.
   */
  onInternalError?: (error: unknown, request: { method: string; url: string }) => void;
}

const RANK: Record<TokenRole, number> = { reader: 1, generator: 2, admin: 3 };

/** base64 of n bytes, plus room for the signature and the JSON around them. */
const uploadLimit = (maxBytes: number): number => Math.ceil(maxBytes / 3) * 4 + 1024 * 1024;
const MANIFEST_BODY_LIMIT = uploadLimit(64 * 1024 * 1024);
const CATALOG_BODY_LIMIT = uploadLimit(128 * 1024 * 1024);
const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

const MAX_SIGNATURE = 64 * 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const FIELD = { type: 'string', minLength: 1, maxLength: LOOKUP_LIMITS.maxFieldLength } as const;
const PLATFORM = { type: 'string', minLength: 1, maxLength: 200 } as const;
const WORKER_ID = { type: 'string', minLength: 1, maxLength: JOB_LIMITS.maxWorkerIdLength } as const;
const JOB_ID_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', pattern: '^[1-9][0-9]{0,14}$' } },
} as const;

function uploadSchema(field: 'manifest' | 'catalog', maxBase64: number) {
  return {
    body: {
      type: 'object',
      additionalProperties: false,
      required: [field, 'signature'],
      properties: {
        [field]: { type: 'string', minLength: 1, maxLength: maxBase64 },
        signature: { type: 'string', minLength: 1, maxLength: MAX_SIGNATURE },
      },
    },
  };
}

/** Decodes strict base64 (padding required, no whitespace) or refuses with BAD_REQUEST. */
function decodeBase64(text: string, field: string): Buffer {
  if (text.length % 4 !== 0 || !BASE64.test(text)) {
    throw new ApiError('BAD_REQUEST', `body/${field} must be base64 (RFC 4648, padded, no whitespace)`);
  }
  return Buffer.from(text, 'base64');
}

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer ([^\s]{1,200})$/.exec(header);
  if (m === null) throw new ApiError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return m[1];
}

/** OpenAPI parameters from a route's params / querystring object schema. */
function parametersOf(schema: unknown, where: 'path' | 'query'): unknown[] {
  const o = schema as { properties?: Record<string, unknown>; required?: string[] } | undefined;
  return Object.entries(o?.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (o?.required ?? []).includes(name),
    schema: s,
  }));
}

function lookupItemJson(r: LookupItemResult): unknown {
  if (r.status !== 'ok') return r;
  const { bytes, ...manifest } = r.manifest;
  return {
    ...r,
    manifest: { ...manifest, ...(bytes === undefined ? {} : { bytes: bytes.toString('base64') }) },
  };
}

/**
 * The HTTP API over a store (fastify; test it with `app.inject`). Every route has a strict JSON
 * schema; every error has the body of errors.ts; writes need a token with the right role.
 */
export function buildApp(options: AppOptions): FastifyInstance {
  const { store } = options;
  const keyring = options.trustedKeyring ?? (() => store.trustedKeyring());
  const limit = (dflt: number): number => options.bodyLimit ?? dflt;
  const onInternalError =
    options.onInternalError ??
    ((e: unknown, r: { method: string; url: string }) =>
      process.stderr.write(
        `sysattest-server: ${r.method} ${r.url.slice(0, 200)} failed: ${e instanceof Error ? e.message : String(e)}\n`,
      ));

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limit(DEFAULT_BODY_LIMIT),
    // Strict schemas: extra properties are refused (not silently removed), nothing is coerced.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    return503OnClosing: true,
  });

  // JSON only: fastify also parses text/plain by default, which no route takes.
  app.removeContentTypeParser('text/plain');

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

  /** An onRequest hook (before the body is read) that admits tokens of `role` or above (`undefined`: reads, per readsNeedToken). */
  function requireRole(role: TokenRole | undefined) {
    return async (request: FastifyRequest): Promise<void> => {
      const secret = bearer(request);
      const needed = role ?? (options.readsNeedToken ? 'reader' : undefined);
      if (secret === undefined) {
        if (needed === undefined) return;
        throw new ApiError('UNAUTHORIZED', 'this route needs a token: Authorization: Bearer <token>');
      }
      const token = await store.authenticate(secret);
      if (token === undefined) throw new ApiError('UNAUTHORIZED', 'the token is unknown or revoked');
      if (needed !== undefined && RANK[token.role] < RANK[needed]) {
        throw new ApiError('FORBIDDEN', `this route needs a ${needed} token (this one is ${token.role})`);
      }
    };
  }

  // The OpenAPI document, assembled from the routes' own schemas as they are added.
  const paths: Record<string, Record<string, unknown>> = {};
  app.addHook('onRoute', (route) => {
    if (route.url === '/v1/openapi.json') return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const schema = (route.schema ?? {}) as { body?: unknown; querystring?: unknown; params?: unknown };
    for (const method of methods) {
      (paths[path] ??= {})[method.toLowerCase()] = {
        ...(schema.body === undefined
          ? {}
          : { requestBody: { required: true, content: { 'application/json': { schema: schema.body } } } }),
        parameters: [...parametersOf(schema.params, 'path'), ...parametersOf(schema.querystring, 'query')],
        responses: { default: { description: 'JSON; errors are { error: { code, message } }' } },
      };
    }
  });
  app.get('/v1/openapi.json', async () => ({
    openapi: '3.1.0',
    info: { title: 'sysattest-server', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  }));

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply: FastifyReply) => {
    try {
      const v = await store.schemaVersion();
      return { status: 'ready', schema: v };
    } catch (e) {
      onInternalError(e, { method: 'GET', url: '/readyz' });
      const error = new ApiError('UNAVAILABLE', 'the database does not answer');
      return reply.code(error.statusCode).send(errorBody(error));
    }
  });

  app.post<{ Body: { manifest: string; signature: string } }>(
    '/v1/manifests',
    {
      bodyLimit: limit(MANIFEST_BODY_LIMIT),
      schema: uploadSchema('manifest', MANIFEST_BODY_LIMIT),
      onRequest: requireRole('generator'),
    },
    async (request, reply) => {
      const bytes = decodeBase64(request.body.manifest, 'manifest');
      const verified = await verifyManifest(bytes, request.body.signature, await keyring());
      const outcome = await store.ingestManifest(verified);
      const m = verified.content;
      return reply.code(outcome === 'stored' ? 201 : 200).send({
        outcome,
        platform: m.platform,
        name: m.package.name,
        version: m.package.version,
        arch: m.package.architecture,
        signerFingerprint: verified.signerFingerprint,
      });
    },
  );

  app.post<{ Body: { catalog: string; signature: string } }>(
    '/v1/catalogs',
    {
      bodyLimit: limit(CATALOG_BODY_LIMIT),
      schema: uploadSchema('catalog', CATALOG_BODY_LIMIT),
      onRequest: requireRole('generator'),
    },
    async (request, reply) => {
      const bytes = decodeBase64(request.body.catalog, 'catalog');
      const verified = await verifyCatalog(bytes, request.body.signature, await keyring());
      const result = await store.ingestCatalog(verified);
      return reply.code(result.duplicate ? 200 : 201).send(result);
    },
  );

  app.post<{ Body: { platform: string; items: { name: string; version: string; arch: string }[] } }>(
    '/v1/lookup',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['platform', 'items'],
          properties: {
            platform: PLATFORM,
            items: {
              type: 'array',
              maxItems: LOOKUP_LIMITS.maxItems,
              items: {
                type: 'object',
                additionalProperties: false,
                required: ['name', 'version', 'arch'],
                properties: { name: FIELD, version: FIELD, arch: FIELD },
              },
            },
          },
        },
      },
      onRequest: requireRole(undefined),
    },
    async (request) => {
      const result = await store.lookup(request.body.platform, request.body.items);
      return { ...result, items: result.items.map(lookupItemJson) };
    },
  );

  app.post<{ Body: { sha256: string[] } }>(
    '/v1/reverse-lookup',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['sha256'],
          properties: {
            sha256: {
              type: 'array',
              maxItems: LOOKUP_LIMITS.maxHashes,
              items: { type: 'string', pattern: '^[0-9a-f]{64}$' },
            },
          },
        },
      },
      onRequest: requireRole(undefined),
    },
    async (request) => ({ results: await store.reverseLookup(request.body.sha256) }),
  );

  app.get<{ Querystring: { platform?: string; state?: string; afterId?: string; limit?: string } }>(
    '/v1/jobs',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            platform: PLATFORM,
            state: { type: 'string', enum: [...JOB_STATES] },
            afterId: { type: 'string', pattern: '^[0-9]{1,15}$' },
            limit: { type: 'string', pattern: '^[1-9][0-9]{0,4}$' },
          },
        },
      },
      onRequest: requireRole('admin'),
    },
    async (request) => {
      const q = request.query;
      const jobs = await store.listJobs({
        ...(q.platform === undefined ? {} : { platform: q.platform }),
        ...(q.state === undefined ? {} : { state: q.state as (typeof JOB_STATES)[number] }),
        ...(q.afterId === undefined ? {} : { afterId: Number(q.afterId) }),
        ...(q.limit === undefined ? {} : { limit: Number(q.limit) }),
      });
      return { jobs };
    },
  );

  app.post<{ Body: { workerId: string; platforms: string[]; max?: number; leaseSeconds?: number } }>(
    '/v1/jobs/claim',
    {
      schema: {
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['workerId', 'platforms'],
          properties: {
            workerId: WORKER_ID,
            platforms: { type: 'array', minItems: 1, maxItems: JOB_LIMITS.maxPlatforms, items: PLATFORM },
            max: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxClaim },
            leaseSeconds: { type: 'integer', minimum: 1, maximum: JOB_LIMITS.maxLeaseSeconds },
          },
        },
      },
      onRequest: requireRole('generator'),
    },
    async (request) => {
      const b = request.body;
      const jobs = await store.claimJobs(b.workerId, b.platforms, b.max ?? 1, b.leaseSeconds ?? 600);
      return { jobs };
    },
  );

  const workerBody = {
    type: 'object',
    additionalProperties: false,
    required: ['workerId'],
    properties: { workerId: WORKER_ID },
  } as const;

  app.post<{ Params: { id: string }; Body: { workerId: string } }>(
    '/v1/jobs/:id/heartbeat',
    { schema: { params: JOB_ID_PARAMS, body: workerBody }, onRequest: requireRole('generator') },
    async (request) => ({ job: await store.heartbeat(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: { id: string }; Body: { workerId: string } }>(
    '/v1/jobs/:id/complete',
    { schema: { params: JOB_ID_PARAMS, body: workerBody }, onRequest: requireRole('generator') },
    async (request) => ({ job: await store.completeJob(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: { id: string }; Body: { workerId: string; error: string } }>(
    '/v1/jobs/:id/fail',
    {
      schema: {
        params: JOB_ID_PARAMS,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['workerId', 'error'],
          properties: {
            workerId: WORKER_ID,
            error: { type: 'string', minLength: 1, maxLength: JOB_LIMITS.maxErrorLength },
          },
        },
      },
      onRequest: requireRole('generator'),
    },
    async (request) => ({
      job: await store.failJob(Number(request.params.id), request.body.workerId, request.body.error),
    }),
  );

  return app;
}
