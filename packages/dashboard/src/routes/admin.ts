/**
 * The admin page and every action that changes state: tracked packages, tokens, trusted keys,
 * catalog syncs, requeueing a job and forgetting a host. The page needs an admin session
 * (adminView); an action that session's CSRF token too (adminAction). An action goes back to a
 * page with a notice of what it did, or of the refusal (a DashboardError), as a flash.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { adminAction, adminView } from '../access.js';
import { DashboardError, ROLES, type Page, type Role, type TokenRow } from '../backend.js';
import type { DashboardContext } from '../context.js';
import {
  field,
  hostName,
  keyFingerprint,
  MAX_HOST_NAME,
  offsetOf,
  oneOf,
  PAGE_SIZE,
  recordId,
  type Form,
  type Query,
} from '../input.js';
import { adminPage } from '../admin-page.js';
import { backTo, redirectWithFlash, sendPage } from '../replies.js';

type Action = { Body: Form };
type ActionOn<K extends string> = { Params: Record<K, string>; Body: Form };

export async function adminRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  app.get<{ Querystring: Query }>('/admin', { preHandler: adminView(ctx) }, async (request, reply) =>
    renderAdmin(ctx, request, reply, {
      tracked: offsetOf(request.query),
      reporters: offsetOf(request.query, 'reporters'),
    }),
  );
  await trackedRoutes(app, ctx);
  await tokenRoutes(app, ctx);
  await keyRoutes(app, ctx);
  await fleetActions(app, ctx);
}

/** The admin page; `createdSecret` is a new token's secret, shown on this answer only. */
async function renderAdmin(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  offsets: { tracked: number; reporters: number },
  createdSecret?: { id: number; secret: string },
): Promise<FastifyReply> {
  const { backend } = ctx;
  const [platforms, tokens, keys, tracked] = await Promise.all([
    backend.platforms(),
    backend.tokens(),
    backend.trustedKeys(),
    backend.trackedPackages({ offset: offsets.tracked, limit: PAGE_SIZE }),
  ]);
  return sendPage(
    reply,
    adminPage(ctx.state(request).view, {
      platforms,
      tokens: tokens.filter((t) => t.role !== 'reporter'),
      reporters: reportersPage(tokens, offsets.reporters),
      keys,
      tracked,
      canSync: backend.requestCatalogSync !== undefined,
      ...(createdSecret === undefined ? {} : { createdSecret }),
    }),
  );
}

/** The reporter tokens by host (then id), a page of PAGE_SIZE from `at`. */
function reportersPage(tokens: readonly TokenRow[], at: number): Page<TokenRow> {
  const reporters = tokens
    .filter((t) => t.role === 'reporter')
    .sort((a, b) =>
      (a.host ?? '') < (b.host ?? '') ? -1 : (a.host ?? '') > (b.host ?? '') ? 1 : a.id - b.id,
    );
  return {
    items: reporters.slice(at, at + PAGE_SIZE),
    offset: at,
    limit: PAGE_SIZE,
    total: reporters.length,
    hasMore: at + PAGE_SIZE < reporters.length,
  };
}

/** Runs an admin action and goes `back` with its notice; a DashboardError comes back as an error notice. */
async function act(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  back: string,
  work: () => Promise<string>,
): Promise<FastifyReply> {
  try {
    return redirectWithFlash(ctx, request, reply, back, { kind: 'info', text: await work() });
  } catch (e) {
    if (e instanceof DashboardError)
      return redirectWithFlash(ctx, request, reply, back, { kind: 'error', text: e.message });
    throw e;
  }
}

async function trackedRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = adminAction(ctx);

  app.post<Action>('/tracked', { preHandler }, async (request, reply) => {
    const platform = field(request.body, 'platform', 200);
    const name = field(request.body, 'name', 200).trim();
    return act(ctx, request, reply, backTo(ctx, request.body.back, '/admin'), async () => {
      const { jobsQueued } = await backend.trackPackage(platform, name);
      return `${name} is tracked on ${platform}${jobsQueued > 0 ? `; ${jobsQueued} job(s) queued for its newest version` : ''}`;
    });
  });

  app.post<Action>('/tracked/remove', { preHandler }, async (request, reply) => {
    const platform = field(request.body, 'platform', 200);
    const name = field(request.body, 'name', 200);
    return act(ctx, request, reply, backTo(ctx, request.body.back, '/admin'), async () => {
      const removed = await backend.untrackPackage(platform, name);
      return removed > 0
        ? `${name} is no longer tracked on ${platform}`
        : `${name} was not tracked on ${platform} by an operator`;
    });
  });
}

/** A new token's role and host from the form: a reporter token is bound to one host, no other is. */
function tokenRequest(body: Form): { name: string; role: Role; host: string | undefined } {
  const name = field(body, 'name', 200).trim();
  const role = field(body, 'role', 20);
  if (!oneOf<Role>(role, ROLES)) throw new DashboardError(400, `role must be one of ${ROLES.join(', ')}`);
  const host = field(body, 'host', MAX_HOST_NAME, false).trim();
  if (role === 'reporter' && host === '')
    throw new DashboardError(400, 'a reporter token is for one host: name the host');
  if (role !== 'reporter' && host !== '')
    throw new DashboardError(400, `a ${role} token is not bound to a host: leave the host empty`);
  return { name, role, host: host === '' ? undefined : host };
}

async function tokenRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = adminAction(ctx);

  app.post<Action>('/tokens', { preHandler }, async (request, reply) => {
    const { name, role, host } = tokenRequest(request.body);
    try {
      const created = await backend.createToken(role, name, host);
      // Shown on this answer only (no redirect): the secret must not travel in a URL or a cookie.
      return renderAdmin(ctx, request, reply, { tracked: 0, reporters: 0 }, created);
    } catch (e) {
      if (e instanceof DashboardError)
        return redirectWithFlash(ctx, request, reply, `${ctx.base}/admin`, {
          kind: 'error',
          text: e.message,
        });
      throw e;
    }
  });

  app.post<ActionOn<'id'>>('/tokens/:id/revoke', { preHandler }, async (request, reply) => {
    const id = recordId(request.params.id, 'token');
    return act(ctx, request, reply, backTo(ctx, request.body.back, '/admin'), async () => {
      const t = await backend.revokeToken(id);
      return `token ${t.id} (${t.name}) is revoked`;
    });
  });
}

async function keyRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = adminAction(ctx);

  app.post<Action>('/keys', { preHandler }, async (request, reply) => {
    const armored = field(request.body, 'armored', 512 * 1024);
    return act(ctx, request, reply, `${ctx.base}/admin`, async () => {
      const k = await backend.trustKey(armored);
      return `key ${k.fingerprint} is trusted`;
    });
  });

  app.post<ActionOn<'fingerprint'>>('/keys/:fingerprint/remove', { preHandler }, async (request, reply) => {
    const fp = keyFingerprint(request.params.fingerprint);
    return act(ctx, request, reply, `${ctx.base}/admin`, async () => {
      await backend.distrustKey(fp);
      return `key ${fp} is no longer trusted`;
    });
  });
}

/** Actions on the fleet's jobs, hosts and catalogs. */
async function fleetActions(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  const { backend } = ctx;
  const preHandler = adminAction(ctx);

  app.post<ActionOn<'id'>>('/jobs/:id/requeue', { preHandler }, async (request, reply) => {
    const id = recordId(request.params.id, 'job');
    return act(ctx, request, reply, backTo(ctx, request.body.back, `/jobs/${id}`), async () => {
      const job = await backend.requeueJob(id);
      return `job ${job.id} (${job.name} ${job.version}) is queued again`;
    });
  });

  app.post<ActionOn<'name'>>('/hosts/:name/forget', { preHandler }, async (request, reply) => {
    const name = hostName(request.params.name);
    return act(ctx, request, reply, `${ctx.base}/hosts`, async () => {
      const { reports, tokensRevoked } = await backend.forgetHost(name);
      return `host ${name} is forgotten: ${reports} report(s) deleted, ${tokensRevoked} reporter token(s) revoked`;
    });
  });

  const sync = backend.requestCatalogSync;
  if (sync !== undefined) {
    app.post<Action>('/sync', { preHandler }, async (request, reply) => {
      const platform = field(request.body, 'platform', 200);
      return act(ctx, request, reply, `${ctx.base}/admin`, () => sync.call(backend, platform));
    });
  }
}
