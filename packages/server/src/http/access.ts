/**
 * Who is calling, how often, and whether they may: the plugin every route runs behind (wrapped
 * with fastify-plugin, so its hooks apply to the whole app). For each request, in this order:
 *  1. identify: the bearer token, looked up only on routes that check access;
 *  2. the rate limit, per token (else per address), before the access check so that guessing
 *     tokens counts;
 *  3. the route's access rule (`config.sysattest.access`, see route-kit.ts).
 * Only then is the body read (within the route's cap) and validated.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Store, TokenIdentity, TokenRole } from '../store/index.js';
import { ApiError } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import { RANK, type Access, type RouteDoc } from './route-kit.js';

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
  token?: TokenIdentity;
  refused?: ApiError;
}

/** Per-client rate limit: at most `max` requests per `windowSeconds` per token (or per IP without one). */
export interface RateLimitOptions {
  max: number;
  windowSeconds: number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 3000, windowSeconds: 60 };

/** Routes the rate limit never applies to: probes and scrapes. */
const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);

export interface AccessOptions {
  store: Store;
  readsNeedToken: boolean;
  /** false: no rate limit. */
  rateLimit: RateLimitOptions | false;
  metrics: ServerMetrics;
}

const accessOf = (request: FastifyRequest): Access =>
  request.routeOptions.config?.sysattest?.access ?? 'public';

function bearer(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const m = /^Bearer ([^\s]{1,200})$/.exec(header);
  if (m === null) throw new ApiError('UNAUTHORIZED', 'the Authorization header must be "Bearer <token>"');
  return m[1];
}

/** 1. Who is calling. Only routes that check access look tokens up (health probes never do). */
async function identify(store: Store, request: FastifyRequest): Promise<void> {
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
}

/** 2. The rate limit, per token (or per IP). */
async function limitRate(app: FastifyInstance, rl: RateLimitOptions, metrics: ServerMetrics): Promise<void> {
  await app.register(rateLimit, {
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
  type Limiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  let limiter: Limiter | undefined;
  app.addHook('onRequest', async (request, reply) => {
    limiter ??= app.rateLimit() as unknown as Limiter;
    await limiter(request, reply);
  });
}

/** 3. The route's access rule. */
function checkAccess(request: FastifyRequest, readsNeedToken: boolean): void {
  const access = accessOf(request);
  if (access === 'public') return;
  const caller = request.sysattestCaller ?? {};
  if (caller.refused !== undefined) throw caller.refused;
  if (access === 'reporter' || caller.token?.role === 'reporter') return checkReporter(access, caller);
  const needed: TokenRole | undefined = access === 'read' ? (readsNeedToken ? 'reader' : undefined) : access;
  if (needed === undefined) return;
  if (caller.token === undefined) {
    throw new ApiError('UNAUTHORIZED', 'this route needs a token: Authorization: Bearer <token>');
  }
  if (RANK[caller.token.role] < RANK[needed]) {
    throw new ApiError('FORBIDDEN', `this route needs a ${needed} token (this one is ${caller.token.role})`);
  }
}

/**
 * A reporter token (bound to one host) may send its host's reports and do nothing else, not even
 * what an anonymous caller may: it is a credential a host keeps on disk, and a compromised host
 * must gain nothing from it but its own history. Reports take a reporter token and no other.
 */
function checkReporter(access: Access, caller: Caller): void {
  if (access !== 'reporter') {
    throw new ApiError('FORBIDDEN', "a reporter token may only send its host's reports (POST /v1/reports)");
  }
  if (caller.token === undefined) {
    throw new ApiError(
      'UNAUTHORIZED',
      "this route needs the host's reporter token: Authorization: Bearer <token>",
    );
  }
  if (caller.token.role !== 'reporter') {
    throw new ApiError('FORBIDDEN', `this route needs a reporter token (this one is ${caller.token.role})`);
  }
}

export const accessPlugin = fp<AccessOptions>(
  async (app, options) => {
    app.addHook('onRequest', async (request) => identify(options.store, request));
    if (options.rateLimit !== false) await limitRate(app, options.rateLimit, options.metrics);
    app.addHook('onRequest', async (request) => checkAccess(request, options.readsNeedToken));
  },
  { name: 'sysattest-access' },
);
