import { randomBytes } from 'node:crypto';
import { verifyCatalog, verifyManifest, type TrustedKeyring } from '@sysattest/core';
import rateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  JOB_LIMITS,
  JOB_STATES,
  LOOKUP_LIMITS,
  type LookupResult,
  type QueuePolicy,
  type Store,
  type StoreStats,
  type TokenRole,
} from '../store/index.js';
import { registerDashboard } from '../dashboard/index.js';
import { registerAdminRoutes } from './admin-routes.js';
import { quotaClient } from './client-address.js';
import { ApiError, errorBody, toApiError } from './errors.js';
import { lookupAnswerStream } from './lookup-answer.js';
import { ServerMetrics, type Gauge } from './metrics.js';
import {
  CATALOG_INFO_SCHEMA,
  decodeBase64,
  ERROR_SCHEMA,
  FIELD,
  ID_PARAMS,
  JOB_LIST,
  NO_QUERY,
  ONE_JOB,
  PLATFORM,
  RANK,
  WORKER_ID,
  type Access,
  type RouteDoc,
} from './route-kit.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling (set before the rate limit and the access check run). */
    sysattestCaller?: Caller;
  }
  interface FastifyContextConfig {
    /** Present on every sysattest route: see route-kit.ts. */
    sysattest?: RouteDoc;
  }
}

/** The caller of a request: its token, or why its credentials were refused (enforced per route). */
export interface Caller {
  token?: { id: number; role: TokenRole; name: string };
  refused?: ApiError;
}

/** Per-client rate limit: at most `max` requests per `windowSeconds` per token (or per IP without one). */
export interface RateLimitOptions {
  max: number;
  windowSeconds: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 3000, windowSeconds: 60 };

/** What anonymous lookups of one client address (IPv6: one /64) may queue per window. */
export interface QueueQuotaOptions {
  /** New generation jobs, and separately newly tracked packages, per window. */
  max: number;
  windowSeconds: number;
}

/**
 * Enough for one new machine's first lookup on a fresh server (a Debian server has ~800
 * packages, a desktop 2,000–3,000), so an anonymous client is deferred only when it asks for far
 * more than one machine could.
 */
export const DEFAULT_QUEUE_QUOTA: QueueQuotaOptions = { max: 5000, windowSeconds: 3600 };

/** Routes the rate limit never applies to: probes and scrapes. */
const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);

export interface AppOptions {
  store: Store;
  /** The keys uploads must be signed by (default: the store's trusted keys, read per upload). */
  trustedKeyring?: () => Promise<TrustedKeyring>;
  /** Whether lookups need a reader token (default false: anyone may read). */
  readsNeedToken?: boolean;
  /**
   * Only lookups with a token (reader or above) queue jobs and track packages; anonymous ones are
   * still answered, with what needs a job `pending` and deferred (default false).
   */
  queueNeedsToken?: boolean;
  /** What anonymous lookups may queue per client address (default DEFAULT_QUEUE_QUOTA); false: no limit. */
  anonymousQueueQuota?: QueueQuotaOptions | false;
  /**
   * Most bytes of manifests (base64) and signatures in one lookup answer (default 64 MiB); past
   * it, `ok` items carry their digest only, for GET /v1/manifests/{digest}.
   */
  lookupDocumentBudget?: number;
  /**
   * The dashboard's session secret (at least 32 bytes; see session-secret.ts), never from the
   * database. Default: random for this app, so its sessions end with it: give every process of
   * one deployment the same secret.
   */
  sessionSecret?: Uint8Array;
  /**
   * Body-size cap in bytes for every route. Default: enough for the largest manifest (64 MiB) or
   * catalog (128 MiB) in base64 on the upload routes, 64 MiB elsewhere.
   */
  bodyLimit?: number;
  /** Fastify's logger (default off). */
  logger?: boolean;
  /** Measurements for /metrics and the dashboard (default: a new ServerMetrics). */
  metrics?: ServerMetrics;
  /** Per-client rate limit (default DEFAULT_RATE_LIMIT); false: none. */
  rateLimit?: RateLimitOptions | false;
  /**
   * Trust X-Forwarded-For from these proxies for the client address (rate limits per IP): fastify's
   * trustProxy (true, or addresses/CIDRs). Default false: the socket's address.
   */
  trustProxy?: boolean | string | string[];
  /** How long /metrics reuses the database figures it read (default 10 s). */
  statsCacheSeconds?: number;
  /**
   * Called with every unexpected error (the client only sees `INTERNAL` / `UNAVAILABLE` and a
   * fixed message). Default: one line on stderr.
   */
  onInternalError?: (error: unknown, request: { method: string; url: string }) => void;
  /** Called with operational notices (a client reaching its queue quota). Default: one line on stderr. */
  onNotice?: (message: string) => void;
}

/** base64 of n bytes, plus room for the signature and the JSON around them. */
const uploadLimit = (maxBytes: number): number => Math.ceil(maxBytes / 3) * 4 + 1024 * 1024;
const MANIFEST_BODY_LIMIT = uploadLimit(64 * 1024 * 1024);
const CATALOG_BODY_LIMIT = uploadLimit(128 * 1024 * 1024);
const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

const MAX_SIGNATURE = 64 * 1024;

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

/** How much a lookup may queue: a token holder anything; an anonymous client within its quota, or nothing. */
export function queuePolicyFor(
  caller: Caller | undefined,
  address: string,
  rules: { queueNeedsToken: boolean; quota: QueueQuotaOptions | false },
): QueuePolicy {
  if (caller?.token !== undefined) return { kind: 'open' };
  if (rules.queueNeedsToken) return { kind: 'closed' };
  if (rules.quota === false) return { kind: 'open' };
  return { kind: 'quota', client: quotaClient(address), ...rules.quota };
}

/** `config` of a route: who may call it, and what the OpenAPI document says about it. */
function doc(
  access: Access,
  summary: string,
  responses: Record<number, unknown>,
  produces?: string,
): { sysattest: RouteDoc } {
  return { sysattest: { access, summary, responses, ...(produces === undefined ? {} : { produces }) } };
}

const MANIFEST_UPLOADED = {
  type: 'object',
  required: ['outcome', 'platform', 'name', 'version', 'arch', 'signerFingerprint'],
  properties: {
    outcome: { type: 'string', enum: ['stored', 'duplicate'] },
    platform: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    arch: { type: 'string' },
    signerFingerprint: { type: 'string' },
  },
} as const;

const MANIFEST_DOCUMENT = {
  type: 'object',
  required: ['digest', 'platform', 'name', 'version', 'arch', 'manifest', 'signature'],
  properties: {
    digest: { type: 'string' },
    platform: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    arch: { type: 'string' },
    manifest: { type: 'string', contentEncoding: 'base64', description: 'the exact signed bytes' },
    signature: { type: 'string', description: 'armored detached OpenPGP signature' },
  },
} as const;

/** `{digest}` in a path: the sha256 of a stored document's signed bytes, lower-case hex. */
const DIGEST_PARAMS = {
  type: 'object',
  additionalProperties: false,
  required: ['digest'],
  properties: { digest: { type: 'string', pattern: '^[0-9a-f]{64}$' } },
} as const;

const CATALOG_DOCUMENT = {
  type: 'object',
  required: ['digest', 'platform', 'generatedAt', 'catalog', 'signature'],
  properties: {
    digest: { type: 'string' },
    platform: { type: 'string' },
    generatedAt: { type: 'string' },
    catalog: { type: 'string', contentEncoding: 'base64', description: 'the exact signed bytes' },
    signature: { type: 'string', description: 'armored detached OpenPGP signature' },
  },
} as const;

const CATALOG_UPLOADED = {
  type: 'object',
  required: ['snapshot', 'duplicate', 'latest', 'added', 'withdrawn', 'unchanged', 'newestChanged'],
  properties: {
    snapshot: CATALOG_INFO_SCHEMA,
    duplicate: { type: 'boolean' },
    latest: { type: 'boolean' },
    added: { type: 'integer' },
    withdrawn: { type: 'integer' },
    unchanged: { type: 'integer' },
    newestChanged: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          arch: { type: 'string' },
          from: { type: ['string', 'null'] },
          to: { type: ['string', 'null'] },
        },
      },
    },
  },
} as const;

const LOOKUP_ANSWER = {
  type: 'object',
  required: ['platform', 'foreignCatalogs', 'items'],
  properties: {
    platform: { type: 'string' },
    catalog: CATALOG_INFO_SCHEMA,
    foreignCatalogs: { type: 'array', items: CATALOG_INFO_SCHEMA },
    items: {
      type: 'array',
      description: 'one per item asked, in the same order',
      items: {
        type: 'object',
        required: ['name', 'version', 'arch', 'status'],
        properties: {
          name: { type: 'string' },
          version: { type: 'string' },
          arch: { type: 'string' },
          status: { type: 'string', enum: ['ok', 'pending', 'not-in-catalog', 'unknown-platform'] },
          newestVersion: { type: 'string' },
          manifest: {
            type: 'object',
            description:
              'status ok: the digest, and the signed bytes (base64) with the detached signature unless the ' +
              'lookup asked documents: false or the answer reached its document budget (see documentsOmitted): ' +
              'then fetch GET /v1/manifests/{digest}',
            required: ['digest'],
            properties: {
              digest: { type: 'string' },
              bytes: { type: 'string', contentEncoding: 'base64' },
              signature: { type: 'string' },
            },
          },
          job: {
            type: 'object',
            description: 'status pending: the generation job',
            properties: { id: { type: 'integer' }, state: { type: 'string', enum: [...JOB_STATES] } },
          },
          deferred: {
            type: 'string',
            enum: ['quota', 'token-required'],
            description:
              'status pending without a job: nothing was queued, because this anonymous client reached its ' +
              'queue quota or the server queues work for token holders only; a later lookup queues it',
          },
          withdrawnAt: { type: 'string', format: 'date-time' },
        },
      },
    },
    documentsOmitted: {
      type: 'integer',
      description:
        'documents: true, and the answer reached its document budget: this many ok items carry their digest only',
    },
  },
} as const;

const REVERSE_ANSWER = {
  type: 'object',
  required: ['results'],
  properties: {
    results: {
      type: 'array',
      items: {
        type: 'object',
        required: ['sha256', 'hits'],
        properties: {
          sha256: { type: 'string' },
          truncated: { type: 'boolean' },
          hits: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                platform: { type: 'string' },
                name: { type: 'string' },
                version: { type: 'string' },
                arch: { type: 'string' },
                path: { type: 'string' },
              },
            },
          },
        },
      },
    },
  },
} as const;

const PUBLIC_KEYS = {
  type: 'object',
  required: ['keys'],
  properties: {
    keys: {
      type: 'array',
      items: {
        type: 'object',
        required: ['fingerprint', 'armored'],
        additionalProperties: false,
        properties: {
          fingerprint: { type: 'string', pattern: '^[0-9A-F]{40}$' },
          armored: { type: 'string' },
        },
      },
    },
  },
} as const;

/** Database figures for /metrics, in Prometheus families. */
function storeFamilies(stats: StoreStats, now: Date): Gauge[] {
  const jobs: Gauge['samples'] = [];
  for (const p of stats.platforms) {
    for (const [state, value] of Object.entries(p.jobs)) {
      jobs.push({ labels: { platform: p.platform, state }, value });
    }
  }
  const oldest =
    stats.oldestDueJobSince === undefined
      ? 0
      : Math.max(0, (now.getTime() - Date.parse(stats.oldestDueJobSince)) / 1000);
  return [
    {
      name: 'sysattest_jobs',
      help: 'Generation jobs by the platform that builds them and state (retrying: pending ones that failed before).',
      samples: jobs,
    },
    {
      name: 'sysattest_jobs_oldest_due_age_seconds',
      help: 'How long the longest-waiting claimable pending job has been due (0: none waiting).',
      samples: [{ value: Math.round(oldest) }],
    },
    {
      name: 'sysattest_manifests',
      help: 'Manifests stored, by platform.',
      samples: stats.platforms.map((p) => ({ labels: { platform: p.platform }, value: p.manifests })),
    },
    {
      name: 'sysattest_catalog_snapshots',
      help: 'Catalog snapshots stored, by platform.',
      samples: stats.platforms.map((p) => ({ labels: { platform: p.platform }, value: p.catalogSnapshots })),
    },
    {
      name: 'sysattest_manifests_total_stored',
      help: 'Manifests stored, all platforms.',
      samples: [{ value: stats.manifests }],
    },
    {
      name: 'sysattest_manifest_conflicts',
      help: 'Uploads refused because other bytes were stored for the same version.',
      samples: [{ value: stats.conflicts }],
    },
    {
      name: 'sysattest_database_bytes',
      help: 'Bytes the database occupies.',
      samples: [{ value: stats.databaseBytes }],
    },
  ];
}

/**
 * The HTTP API over a store (fastify; test it with `app.inject`). Every route has a strict JSON
 * schema; every error has the body of errors.ts; writes need a token with the right role; every
 * client is rate limited (per token, or per IP without one).
 *
 * Request life: onRequest hooks run `identify` (whose token is this?), the rate limit (keyed by
 * that), then the access check of the route's `config.sysattest.access`; only then is the body
 * read (bounded by the route's body limit) and validated.
 */
export function buildApp(options: AppOptions): FastifyInstance {
  const { store } = options;
  const keyring = options.trustedKeyring ?? (() => store.trustedKeyring());
  const limit = (dflt: number): number => options.bodyLimit ?? dflt;
  const metrics = options.metrics ?? new ServerMetrics();
  const sessionSecret = options.sessionSecret ?? randomBytes(32);
  if (sessionSecret.length < 32) throw new Error('the dashboard needs a session secret of at least 32 bytes');
  const queueRules = {
    queueNeedsToken: options.queueNeedsToken ?? false,
    quota: options.anonymousQueueQuota ?? DEFAULT_QUEUE_QUOTA,
  };
  const onNotice =
    options.onNotice ?? ((message: string) => process.stderr.write(`sysattest-server: ${message}\n`));
  const onInternalError =
    options.onInternalError ??
    ((e: unknown, r: { method: string; url: string }) =>
      process.stderr.write(
        `sysattest-server: ${r.method} ${r.url.slice(0, 200)} failed: ${e instanceof Error ? e.message : String(e)}\n`,
      ));

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limit(DEFAULT_BODY_LIMIT),
    trustProxy: options.trustProxy ?? false,
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

  const accessOf = (request: FastifyRequest): Access =>
    request.routeOptions.config?.sysattest?.access ?? 'public';

  // 1. Who is calling. Only routes that check access look tokens up (health probes never do).
  app.addHook('onRequest', async (request) => {
    const caller: Caller = {};
    request.sysattestCaller = caller;
    if (accessOf(request) === 'public') return;
    let secret: string | undefined;
    try {
      secret = bearer(request);
    } catch (e) {
      caller.refused = e as ApiError;
      return;
    }
    if (secret === undefined) return;
    const token = await store.authenticate(secret);
    if (token === undefined) caller.refused = new ApiError('UNAUTHORIZED', 'the token is unknown or revoked');
    else caller.token = token;
  });

  // 2. The rate limit, per token (or per IP), before the access check so that guessing tokens counts.
  if (options.rateLimit !== false) {
    const rl = options.rateLimit ?? DEFAULT_RATE_LIMIT;
    void app.register(rateLimit, {
      global: false,
      max: rl.max,
      timeWindow: rl.windowSeconds * 1000,
      keyGenerator: (request) => {
        const token = request.sysattestCaller?.token;
        return token === undefined ? `ip ${request.ip}` : `token ${token.id}`;
      },
      // Health probes and metrics scrapes are never limited; everything else is, dashboard and unknown URLs included.
      allowList: (request) => UNLIMITED.has(request.routeOptions.url ?? ''),
      onExceeded: () => metrics.rateLimited(),
      errorResponseBuilder: (_request, context) =>
        new ApiError(
          'TOO_MANY_REQUESTS',
          `rate limit: at most ${context.max} requests per ${rl.windowSeconds} s per client; retry in ${context.after}`,
        ),
    });
    let limiter: ((request: FastifyRequest, reply: FastifyReply) => Promise<void>) | undefined;
    app.addHook('onRequest', async (request, reply) => {
      limiter ??= app.rateLimit() as unknown as (
        request: FastifyRequest,
        reply: FastifyReply,
      ) => Promise<void>;
      await limiter(request, reply);
    });
  }

  // 3. The route's access rule.
  app.addHook('onRequest', async (request) => {
    const access = accessOf(request);
    if (access === 'public') return;
    const caller = request.sysattestCaller ?? {};
    if (caller.refused !== undefined) throw caller.refused;
    const needed: TokenRole | undefined =
      access === 'read' ? (options.readsNeedToken ? 'reader' : undefined) : access;
    if (needed === undefined) return;
    if (caller.token === undefined) {
      throw new ApiError('UNAUTHORIZED', 'this route needs a token: Authorization: Bearer <token>');
    }
    if (RANK[caller.token.role] < RANK[needed]) {
      throw new ApiError(
        'FORBIDDEN',
        `this route needs a ${needed} token (this one is ${caller.token.role})`,
      );
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(
      request.routeOptions.url ?? 'unmatched',
      request.method,
      reply.statusCode,
      reply.elapsedTime,
    );
  });

  // The OpenAPI document, assembled from the routes' own schemas and docs as they are added.
  const paths: Record<string, Record<string, unknown>> = {};
  app.addHook('onRoute', (route) => {
    // The API is described; the dashboard's HTML pages (and `/`, which redirects to them) are not.
    if (route.url === '/v1/openapi.json' || route.url === '/' || route.url.startsWith('/dashboard')) return;
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const schema = (route.schema ?? {}) as { body?: unknown; querystring?: unknown; params?: unknown };
    const routeDoc = (route.config as { sysattest?: RouteDoc } | undefined)?.sysattest;
    const responses: Record<string, unknown> = {};
    for (const [status, body] of Object.entries(routeDoc?.responses ?? {})) {
      responses[status] = {
        description: Number(status) === 201 ? 'created' : 'ok',
        content: { [routeDoc?.produces ?? 'application/json']: { schema: body } },
      };
    }
    responses.default = {
      description: 'an error: { error: { code, message } } (codes: see errors.ts)',
      content: { 'application/json': { schema: ERROR_SCHEMA } },
    };
    const access = routeDoc?.access ?? 'public';
    for (const method of methods) {
      (paths[path] ??= {})[method.toLowerCase()] = {
        ...(routeDoc === undefined ? {} : { summary: routeDoc.summary }),
        'x-sysattest-access': access,
        ...(access === 'public' || access === 'read' ? {} : { security: [{ bearer: [] }] }),
        ...(schema.body === undefined
          ? {}
          : { requestBody: { required: true, content: { 'application/json': { schema: schema.body } } } }),
        parameters: [...parametersOf(schema.params, 'path'), ...parametersOf(schema.querystring, 'query')],
        responses,
      };
    }
  });
  app.get('/v1/openapi.json', async () => ({
    openapi: '3.1.0',
    info: {
      title: 'sysattest-server',
      version: '1',
      description:
        'x-sysattest-access says who may call a route: public, read (anyone, or a reader token when the ' +
        'server requires tokens for reads), or a token role and above (admin > generator > reader).',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  }));

  app.get(
    '/healthz',
    {
      config: doc('public', 'the process answers', {
        200: { type: 'object', properties: { status: { const: 'ok' } } },
      }),
    },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    {
      config: doc('public', 'the database answers and its schema is current', {
        200: {
          type: 'object',
          properties: {
            status: { const: 'ready' },
            schema: {
              type: 'object',
              properties: { applied: { type: 'integer' }, known: { type: 'integer' } },
            },
          },
        },
      }),
    },
    async (_request, reply: FastifyReply) => {
      try {
        const v = await store.schemaVersion();
        return { status: 'ready', schema: v };
      } catch (e) {
        onInternalError(e, { method: 'GET', url: '/readyz' });
        const error = new ApiError('UNAVAILABLE', 'the database does not answer');
        return reply.code(error.statusCode).send(errorBody(error));
      }
    },
  );

  // Database figures are read at most once per statsCacheSeconds, however often /metrics is scraped.
  let cachedStats: { at: number; stats: Promise<StoreStats> } | undefined;
  const statsMaxAge = (options.statsCacheSeconds ?? 10) * 1000;
  app.get(
    '/metrics',
    {
      config: doc(
        'read',
        'Prometheus metrics (text exposition format 0.0.4)',
        { 200: { type: 'string' } },
        'text/plain; version=0.0.4',
      ),
    },
    async (_request, reply) => {
      const now = Date.now();
      if (cachedStats === undefined || now - cachedStats.at > statsMaxAge) {
        cachedStats = { at: now, stats: store.stats() };
        cachedStats.stats.catch(() => (cachedStats = undefined));
      }
      const stats = await cachedStats.stats;
      return reply
        .type('text/plain; version=0.0.4; charset=utf-8')
        .send(metrics.render(storeFamilies(stats, new Date())));
    },
  );

  app.get(
    '/v1/keys',
    {
      schema: { querystring: NO_QUERY },
      config: doc('read', 'the generator public keys this server trusts', { 200: PUBLIC_KEYS }),
    },
    async () => ({
      keys: (await store.listTrustedKeys()).map((k) => ({ fingerprint: k.fingerprint, armored: k.armored })),
    }),
  );

  app.post<{ Body: { manifest: string; signature: string } }>(
    '/v1/manifests',
    {
      bodyLimit: limit(MANIFEST_BODY_LIMIT),
      schema: uploadSchema('manifest', MANIFEST_BODY_LIMIT),
      config: doc('generator', 'upload a signed manifest', {
        201: MANIFEST_UPLOADED,
        200: MANIFEST_UPLOADED,
      }),
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

  app.get<{ Params: { digest: string } }>(
    '/v1/manifests/:digest',
    {
      schema: { params: DIGEST_PARAMS },
      config: doc('read', 'one stored manifest by the sha256 of its signed bytes', {
        200: MANIFEST_DOCUMENT,
      }),
    },
    async (request) => {
      const m = await store.getManifest({ digest: request.params.digest });
      if (m === undefined) throw new ApiError('NOT_FOUND', `no manifest ${request.params.digest}`);
      return {
        digest: m.digest,
        platform: m.platform,
        name: m.name,
        version: m.version,
        arch: m.arch,
        manifest: Buffer.from(m.bytes).toString('base64'),
        signature: m.signature,
      };
    },
  );

  // A client verifies `outdated` against the signed snapshot a lookup named, never the server's word.
  app.get<{ Params: { digest: string } }>(
    '/v1/catalogs/:digest',
    {
      schema: { params: DIGEST_PARAMS },
      config: doc('read', 'one stored catalog snapshot by the sha256 of its signed bytes', {
        200: CATALOG_DOCUMENT,
      }),
    },
    async (request) => {
      const c = await store.getCatalogSnapshot({ digest: request.params.digest });
      if (c === undefined) throw new ApiError('NOT_FOUND', `no catalog snapshot ${request.params.digest}`);
      return {
        digest: c.digest,
        platform: c.platform,
        generatedAt: c.generatedAt,
        catalog: Buffer.from(c.bytes).toString('base64'),
        signature: c.signature,
      };
    },
  );

  app.post<{ Body: { catalog: string; signature: string } }>(
    '/v1/catalogs',
    {
      bodyLimit: limit(CATALOG_BODY_LIMIT),
      schema: uploadSchema('catalog', CATALOG_BODY_LIMIT),
      config: doc('generator', 'upload a signed catalog snapshot', {
        201: CATALOG_UPLOADED,
        200: CATALOG_UPLOADED,
      }),
    },
    async (request, reply) => {
      const bytes = decodeBase64(request.body.catalog, 'catalog');
      const verified = await verifyCatalog(bytes, request.body.signature, await keyring());
      const result = await store.ingestCatalog(verified);
      return reply.code(result.duplicate ? 200 : 201).send(result);
    },
  );

  app.post<{
    Body: { platform: string; items: { name: string; version: string; arch: string }[]; documents?: boolean };
  }>(
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
            documents: {
              type: 'boolean',
              description:
                'false: answer ok items with their digest only (a client with a manifest cache fetches the ' +
                'ones it lacks from GET /v1/manifests/{digest}); default true',
            },
          },
        },
      },
      config: doc('read', "a whole machine's packages: manifests, pending jobs, newest versions", {
        200: LOOKUP_ANSWER,
      }),
    },
    async (request, reply) => {
      const queue = queuePolicyFor(request.sysattestCaller, request.ip, queueRules);
      const result = await store.lookup(request.body.platform, request.body.items, {
        includeDocuments: request.body.documents ?? true,
        queue,
        ...(options.lookupDocumentBudget === undefined
          ? {}
          : { documentBudget: options.lookupDocumentBudget }),
      });
      recordLookup(result, queue);
      return reply.type('application/json; charset=utf-8').send(lookupAnswerStream(result));
    },
  );

  /** Metrics for what a lookup deferred or omitted; a notice when a client used up its quota. */
  function recordLookup(result: LookupResult, queue: QueuePolicy): void {
    if (result.documentsOmitted !== undefined) metrics.documentsOmitted(result.documentsOmitted);
    const d = result.deferred;
    if (d !== undefined) metrics.lookupDeferred(d.reason, d.jobs, d.tracked);
    if (result.quotaReached === true && queue.kind === 'quota') {
      onNotice(
        `anonymous client ${queue.client} reached its queue quota (${queue.max} new jobs and ${queue.max} ` +
          `newly tracked packages per ${queue.windowSeconds} s): its lookups queue nothing more this window`,
      );
    }
  }

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
      config: doc('read', 'the package versions and paths that contain each sha256', { 200: REVERSE_ANSWER }),
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
      config: doc('admin', 'list generation jobs (id order, paginated by afterId)', { 200: JOB_LIST }),
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
      config: doc('generator', 'lease up to max due jobs of these platforms', { 200: JOB_LIST }),
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
    {
      schema: { params: ID_PARAMS, body: workerBody },
      config: doc('generator', "renew a running job's lease", { 200: ONE_JOB }),
    },
    async (request) => ({ job: await store.heartbeat(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: { id: string }; Body: { workerId: string } }>(
    '/v1/jobs/:id/complete',
    {
      schema: { params: ID_PARAMS, body: workerBody },
      config: doc('generator', 'confirm a job whose manifest was uploaded', { 200: ONE_JOB }),
    },
    async (request) => ({ job: await store.completeJob(Number(request.params.id), request.body.workerId) }),
  );

  app.post<{ Params: { id: string }; Body: { workerId: string; error: string } }>(
    '/v1/jobs/:id/fail',
    {
      schema: {
        params: ID_PARAMS,
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
      config: doc('generator', 'report a failed job (retried after a backoff, then dead)', { 200: ONE_JOB }),
    },
    async (request) => ({
      job: await store.failJob(Number(request.params.id), request.body.workerId, request.body.error),
    }),
  );

  registerAdminRoutes(app, { store, doc });

  // The dashboard (HTML pages for operators) at /dashboard/, with / redirecting there: see
  // src/dashboard/ and packages/dashboard. Its routes are public pages; changes need an admin login.
  registerDashboard(app, { store, metrics, readsNeedToken: options.readsNeedToken ?? false, sessionSecret });

  return app;
}
