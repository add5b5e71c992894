/**
 * Logging in with a token (reader or admin: a reporter token cannot log in) and out. The login
 * form carries a one-time CSRF value also set as a cookie; a session is a signed cookie
 * (session.ts) keyed by the server's secret and the token's binding.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { carriesCsrf, sameOrigin, SESSION_COOKIE } from '../access.js';
import type { Principal } from '../backend.js';
import type { DashboardContext } from '../context.js';
import { field, one, type Form, type Query } from '../input.js';
import { loginPage } from '../pages.js';
import { backTo, cookie, redirect, sendError, sendPage } from '../replies.js';
import { csrfToken, newNonce, parseCookies, sessionKey, signSession } from '../session.js';

const LOGIN_CSRF_COOKIE = 'sysattest_login_csrf';

/** Why a login is refused, as the form shows it again. */
const UNKNOWN_TOKEN = 'this token is unknown or revoked';

export async function authRoutes(app: FastifyInstance, ctx: DashboardContext): Promise<void> {
  app.get<{ Querystring: Query }>('/login', async (request, reply) =>
    loginForm(ctx, request, reply, one(request.query, 'next', 2000)),
  );

  app.post<{ Body: Form }>('/login', async (request, reply) => {
    const body = (request.body ?? {}) as Form;
    const next = typeof body.next === 'string' ? body.next : '';
    const cookieValue = parseCookies(request.headers.cookie).get(LOGIN_CSRF_COOKIE) ?? '';
    if (!sameOrigin(request) || !carriesCsrf(request, cookieValue)) {
      const stale = 'the login form is stale or did not come from this dashboard: try again';
      return loginForm(ctx, request, reply, next, stale, 403);
    }
    const principal = await ctx.backend.authenticate(field(body, 'token', 200).trim());
    if (principal === undefined) return loginForm(ctx, request, reply, next, UNKNOWN_TOKEN, 401);
    if (principal.role === 'reporter') {
      const reporter = 'a reporter token only sends its host’s reports: log in with a reader or admin token';
      return loginForm(ctx, request, reply, next, reporter, 403);
    }
    return startSession(ctx, request, reply, principal, next);
  });

  app.post<{ Body: Form }>('/logout', async (request, reply) => {
    const { claims, key } = ctx.state(request);
    if (claims !== undefined && key !== undefined && !carriesCsrf(request, csrfToken(claims, key))) {
      const stale = 'the form is stale (CSRF check failed): reload the page and try again';
      return sendError(ctx, request, reply, 403, stale);
    }
    void reply.header('set-cookie', cookie(ctx, request, SESSION_COOKIE, '', 0));
    return reply.code(303).header('location', `${ctx.base}/`).send();
  });
}

/** The login page, with a fresh CSRF value in its form and its cookie. */
function loginForm(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  next: string,
  error?: string,
  status = 200,
): FastifyReply {
  const token = newNonce();
  void reply.header('set-cookie', cookie(ctx, request, LOGIN_CSRF_COOKIE, token, 3600));
  return sendPage(reply, loginPage(ctx.state(request).view, token, next, error), status);
}

/** Sets the session cookie and goes on to `next` (a path inside the dashboard, else its root). */
async function startSession(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  principal: Principal,
  next: string,
): Promise<FastifyReply> {
  const found = await ctx.backend.sessionToken(principal.tokenId);
  if (found === undefined) return loginForm(ctx, request, reply, next, UNKNOWN_TOKEN, 401);
  const expires = Math.floor(ctx.now().getTime() / 1000) + ctx.sessionSeconds;
  const key = sessionKey(ctx.sessionSecret, principal.tokenId, found.binding);
  const value = signSession({ tokenId: principal.tokenId, expires, nonce: newNonce() }, key);
  void reply.header('set-cookie', [
    cookie(ctx, request, SESSION_COOKIE, value, ctx.sessionSeconds),
    cookie(ctx, request, LOGIN_CSRF_COOKIE, '', 0),
  ]);
  const target = next.startsWith(ctx.base) ? next.slice(ctx.base.length) : next;
  return redirect(reply, backTo(ctx, target === '' ? '/' : target, '/'));
}
