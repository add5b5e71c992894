/**
 * Who is asking and what they may do: the session a request's cookie proves (identify, the
 * plugin's onRequest hook), and the access rules routes name as their preHandler. Reading is
 * public unless reads need a login; host pages always need one; admin pages need an admin
 * session, and admin actions that session's CSRF token from a page of this dashboard too.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardContext, RequestState } from './context.js';
import { url } from './html.js';
import type { Form } from './input.js';
import type { View } from './layout.js';
import { redirect, sendError, takeFlash } from './replies.js';
import { csrfToken, equalStrings, parseCookies, parseSession, sessionKey, verifySession } from './session.js';

export const SESSION_COOKIE = 'sysattest_session';

type AccessRule = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

/** The request's state: its view, and the session its cookie proves, if any. */
export async function identify(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<RequestState> {
  const cookies = parseCookies(request.headers.cookie);
  const view: View = {
    base: ctx.base,
    now: ctx.now(),
    readsNeedLogin: ctx.readsNeedLogin,
    path: request.url.slice(0, 2000),
  };
  const state: RequestState = { view, ...(await verifiedSession(ctx, cookies.get(SESSION_COOKIE), view)) };
  const flash = takeFlash(ctx, request, reply, cookies);
  if (flash !== undefined) view.flash = flash;
  return state;
}

/** A session cookie's claims and key when its signature holds; sets the view's principal and CSRF token. */
async function verifiedSession(
  ctx: DashboardContext,
  cookie: string | undefined,
  view: View,
): Promise<Omit<RequestState, 'view'>> {
  const claims = parseSession(cookie);
  if (claims === undefined) return {};
  const found = await ctx.backend.sessionToken(claims.tokenId);
  // A reporter token never has a session (refused at login); checked again in case one is forged.
  if (found === undefined || found.principal.role === 'reporter') return {};
  const key = sessionKey(ctx.sessionSecret, claims.tokenId, found.binding);
  const verified = verifySession(cookie as string, key, view.now.getTime() / 1000);
  if (verified === undefined) return {};
  view.principal = found.principal;
  view.csrf = csrfToken(verified, key);
  return { claims: verified, key };
}

function toLogin(ctx: DashboardContext, reply: FastifyReply, view: View): FastifyReply {
  return redirect(reply, url(`${ctx.base}/login`, { next: view.path }));
}

/** Reading pages: public, or any logged-in token when reads need a login. */
export function readable(ctx: DashboardContext): AccessRule {
  return async (request, reply) => {
    const { view } = ctx.state(request);
    if (ctx.readsNeedLogin && view.principal === undefined) await toLogin(ctx, reply, view);
  };
}

/**
 * Host pages: a login with any token, even when other reads are public, as the API's
 * `GET /v1/hosts` needs a reader token: a fleet's weak spots are not public.
 */
export function hostsReadable(ctx: DashboardContext): AccessRule {
  return async (request, reply) => {
    const { view } = ctx.state(request);
    if (view.principal === undefined) await toLogin(ctx, reply, view);
  };
}

/** Admin pages: redirect to the login page, or refuse a non-admin session. */
export function adminView(ctx: DashboardContext): AccessRule {
  return async (request, reply) => {
    const { view } = ctx.state(request);
    if (view.principal === undefined) {
      await toLogin(ctx, reply, view);
    } else if (view.principal.role !== 'admin') {
      const message = `this page needs an admin token (you are logged in as ${view.principal.role})`;
      await sendError(ctx, request, reply, 403, message);
    }
  };
}

/** State-changing forms: an admin session whose CSRF token the form carries. */
export function adminAction(ctx: DashboardContext): AccessRule {
  return async (request, reply) => {
    const refusal = adminActionRefusal(request, ctx.state(request));
    if (refusal !== undefined) await sendError(ctx, request, reply, refusal.status, refusal.message);
  };
}

function adminActionRefusal(
  request: FastifyRequest,
  { view, claims, key }: RequestState,
): { status: number; message: string } | undefined {
  if (view.principal === undefined || claims === undefined || key === undefined)
    return { status: 401, message: 'this action needs an admin login: log in with an admin token first' };
  if (view.principal.role !== 'admin')
    return {
      status: 403,
      message: `this action needs an admin token (you are logged in as ${view.principal.role})`,
    };
  if (!sameOrigin(request) || !carriesCsrf(request, csrfToken(claims, key)))
    return {
      status: 403,
      message:
        'the form is stale or did not come from this dashboard (CSRF check failed): reload the page and try again',
    };
  return undefined;
}

/** Does the posted form carry `expected` as its `csrf` field? */
export function carriesCsrf(request: FastifyRequest, expected: string): boolean {
  const body = (request.body ?? {}) as Form;
  const token = typeof body.csrf === 'string' ? body.csrf : '';
  return token !== '' && expected !== '' && equalStrings(token, expected);
}

/** Same-origin check on top of the CSRF token: a browser's Origin, when sent, must be this site. */
export function sameOrigin(request: FastifyRequest): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  if (origin === 'null') return false;
  let host: string;
  try {
    host = new URL(origin).host;
  } catch {
    return false;
  }
  // Behind a proxy that rewrites Host, the browser's host arrives as X-Forwarded-Host.
  const forwarded = request.headers['x-forwarded-host'];
  return (
    host === request.headers.host ||
    (typeof forwarded === 'string' && host === forwarded.split(',')[0]?.trim())
  );
}
