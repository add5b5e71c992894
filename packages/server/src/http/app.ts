/**
 * The HTTP API over a store (fastify; test it with `app.inject`), composed of plugins: identification,
 * rate limit and access first (access.ts), the OpenAPI document (openapi.ts), then the route
 * modules (routes/), each with the protocol's schemas (core `protocol/`), then the dashboard.
 * Every error has the body of errors.ts.
 */
import { randomBytes } from 'node:crypto';
import type { TrustedKeyring } from '@sysattest/core';
import type { Logger } from '@sysattest/core/log';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { registerDashboard } from '../dashboard/index.js';
import type { Store } from '../store/index.js';
import { logAccess } from './access-log.js';
import { accessPlugin, DEFAULT_RATE_LIMIT, type RateLimitOptions } from './access.js';
import { answerErrors } from './errors.js';
import { ServerMetrics } from './metrics.js';
import { openApiPlugin } from './openapi.js';
import type { ApiContext } from './route-kit.js';
import { adminRoutes } from './routes/admin.js';
import { catalogRoutes } from './routes/catalogs.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { keyRoutes } from './routes/keys.js';
import {
  DEFAULT_QUEUE_QUOTA,
  lookupRoutes,
  queuePolicyFor,
  type QueueQuotaOptions,
} from './routes/lookup.js';
import { hostRoutes } from './routes/hosts.js';
import { manifestRoutes } from './routes/manifests.js';
import { DEFAULT_REPORT_BODY_BYTES, reportRoutes } from './routes/reports.js';
import { reverseLookupRoutes } from './routes/reverse-lookup.js';

export { DEFAULT_RATE_LIMIT, type Caller, type RateLimitOptions } from './access.js';
export { DEFAULT_QUEUE_QUOTA, queuePolicyFor, type QueueQuotaOptions } from './routes/lookup.js';

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
  /** Body-size cap in bytes of a host's report upload (default DEFAULT_REPORT_BODY_BYTES, 32 MiB). */
  reportBodyLimit?: number;
  /**
   * Where the server logs (core's createLogger): an access line per request, notices and
   * unexpected errors. Default: no access log; notices and errors as one line on stderr.
   */
  logger?: Logger;
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

const DEFAULT_BODY_LIMIT = 64 * 1024 * 1024;

const stderrLine = (message: string): void => void process.stderr.write(`sysattest-server: ${message}\n`);

/** The route modules' context: the options with their defaults. */
function contextOf(options: AppOptions): ApiContext {
  const { store, logger } = options;
  const queueRules = {
    queueNeedsToken: options.queueNeedsToken ?? false,
    quota: options.anonymousQueueQuota ?? DEFAULT_QUEUE_QUOTA,
  };
  return {
    store,
    keyring: options.trustedKeyring ?? (() => store.trustedKeyring()),
    bodyLimit: (routeDefault) => options.bodyLimit ?? routeDefault,
    reportBodyBytes: options.reportBodyLimit ?? DEFAULT_REPORT_BODY_BYTES,
    metrics: options.metrics ?? new ServerMetrics(),
    queuePolicy: (caller, address) => queuePolicyFor(caller, address, queueRules),
    lookupDocumentBudget: options.lookupDocumentBudget,
    statsCacheSeconds: options.statsCacheSeconds ?? 10,
    onNotice:
      options.onNotice ??
      (logger === undefined ? stderrLine : (message) => logger.warn({ event: 'notice' }, message)),
    onInternalError:
      options.onInternalError ??
      ((e, r) => {
        const what = `${r.method} ${r.url.slice(0, 200)} failed`;
        if (logger !== undefined) logger.error({ event: 'internal-error', err: e }, what);
        else stderrLine(`${what}: ${e instanceof Error ? e.message : String(e)}`);
      }),
  };
}

export function buildApp(options: AppOptions): FastifyInstance {
  const ctx = contextOf(options);
  const sessionSecret = options.sessionSecret ?? randomBytes(32);
  if (sessionSecret.length < 32) throw new Error('the dashboard needs a session secret of at least 32 bytes');

  const app = Fastify({
    // Fastify's own two lines per request are replaced by one access line (access-log.ts).
    ...(options.logger === undefined
      ? { logger: false }
      : {
          loggerInstance: options.logger as FastifyBaseLogger,
          logController: new LogController({ disableRequestLogging: true }),
        }),
    bodyLimit: ctx.bodyLimit(DEFAULT_BODY_LIMIT),
    trustProxy: options.trustProxy ?? false,
    // Strict schemas: extra properties are refused (not silently removed), nothing is coerced.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false },
    },
    return503OnClosing: true,
  });
  // JSON only: fastify also parses text/plain by default, which no route takes.
  app.removeContentTypeParser('text/plain');
  answerErrors(app, ctx.onInternalError);

  const readsNeedToken = options.readsNeedToken ?? false;
  void app.register(accessPlugin, {
    store: ctx.store,
    readsNeedToken,
    rateLimit: options.rateLimit ?? DEFAULT_RATE_LIMIT,
    metrics: ctx.metrics,
  });
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.observe(
      request.routeOptions.url ?? 'unmatched',
      request.method,
      reply.statusCode,
      reply.elapsedTime,
    );
  });
  if (options.logger !== undefined) logAccess(app);
  void app.register(openApiPlugin);
  for (const routes of [
    healthRoutes,
    keyRoutes,
    manifestRoutes,
    catalogRoutes,
    lookupRoutes,
    reverseLookupRoutes,
    jobRoutes,
    reportRoutes,
    hostRoutes,
    adminRoutes,
  ]) {
    void app.register(routes, ctx);
  }

  // The dashboard (HTML pages for operators) at /dashboard/, with / redirecting there: see
  // src/dashboard/ and packages/dashboard. Its routes are public pages; changes need an admin login.
  registerDashboard(app, { store: ctx.store, metrics: ctx.metrics, readsNeedToken, sessionSecret });
  return app;
}
