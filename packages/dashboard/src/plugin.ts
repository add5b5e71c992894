/**
 * Composed like the server's API (server `http/app.ts`): what every page shares is set up here,
 * then the route modules (routes/) are registered, each given the DashboardContext (context.ts).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { identify } from './access.js';
import { DashboardError } from './backend.js';
import { contextOf, type DashboardContext, type DashboardOptions } from './context.js';
import { parseForm } from './input.js';
import { sendError } from './replies.js';
import { adminRoutes } from './routes/admin.js';
import { authRoutes } from './routes/auth.js';
import { fleetRoutes } from './routes/fleet.js';
import { healthRoutes } from './routes/health.js';
import { hostRoutes } from './routes/hosts.js';
import { jobRoutes } from './routes/jobs.js';
import { upgradeRoutes } from './routes/upgrades.js';
import { MIN_SESSION_SECRET_BYTES } from './session.js';

export type { DashboardOptions } from './context.js';

const MAX_FORM_BYTES = 1024 * 1024;

/**
 * The dashboard as a fastify plugin: register it with a prefix (`app.register(dashboardPlugin,
 * { prefix: '/dashboard', backend })`). Pages are HTML rendered here, from the backend's data;
 * styles, script and charts come from this package (no CDN, nothing external). Read-only pages are
 * public unless `readsNeedLogin`; everything that changes state needs an admin session and the
 * session's CSRF token.
 */
export async function dashboardPlugin(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { sessionSecret } = options;
  if (!(sessionSecret instanceof Uint8Array) || sessionSecret.length < MIN_SESSION_SECRET_BYTES) {
    throw new Error(`the dashboard needs a session secret of at least ${MIN_SESSION_SECRET_BYTES} bytes`);
  }
  const ctx = contextOf(app.prefix, options);
  // Forms post application/x-www-form-urlencoded (only inside this plugin).
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
    (_request, body, done) => done(null, parseForm(body as string)),
  );
  app.addHook('onRequest', async (request, reply) => {
    ctx.remember(request, await identify(ctx, request, reply));
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'same-origin');
    void reply.header('x-frame-options', 'DENY');
  });
  app.setErrorHandler(async (e, request, reply) => errorAnswer(ctx, e, request, reply));
  app.setNotFoundHandler(async (request, reply) => sendError(ctx, request, reply, 404, 'no such page'));
  assetRoutes(app);
  for (const routes of [
    fleetRoutes,
    upgradeRoutes,
    hostRoutes,
    healthRoutes,
    jobRoutes,
    authRoutes,
    adminRoutes,
  ]) {
    void app.register(routes, ctx);
  }
}

/** The error page for a failed request: a refusal's own message, never an internal error's. */
function errorAnswer(
  ctx: DashboardContext,
  e: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  if (e instanceof DashboardError) return sendError(ctx, request, reply, e.status, e.message);
  const status = (e as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const message = status === 413 ? 'the form is too large' : 'the request is malformed';
    return sendError(ctx, request, reply, status, message);
  }
  try {
    ctx.onInternalError(e, { method: request.method, url: request.url });
  } catch {
    // A failing reporter must not turn an error page into no answer.
  }
  const message = 'internal error: the server could not answer; the details are in its log';
  return sendError(ctx, request, reply, 500, message);
}

function asset(name: string): Buffer {
  // dist/plugin.js → ../assets/NAME: the files ship with the package, nothing is fetched.
  return readFileSync(new URL(`../assets/${name}`, import.meta.url));
}

/** The stylesheet and the script, read once at start and cached by browsers for an hour. */
function assetRoutes(app: FastifyInstance): void {
  const css = asset('dashboard.css');
  const js = asset('dashboard.js');
  app.get('/assets/dashboard.css', async (_request, reply) =>
    reply
      .header('content-type', 'text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(css),
  );
  app.get('/assets/dashboard.js', async (_request, reply) =>
    reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(js),
  );
}
