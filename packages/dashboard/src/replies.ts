/**
 * How the dashboard answers: an HTML page under its content security policy, a redirect (with a
 * one-shot notice carried by a cookie, the "flash"), a file to download, or the error page.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DashboardContext } from './context.js';
import type { Html } from './html.js';
import type { View } from './layout.js';
import { errorPage } from './pages.js';
import { serializeCookie } from './session.js';

export type Flash = NonNullable<View['flash']>;

const FLASH_COOKIE = 'sysattest_flash';

const CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function sendPage(reply: FastifyReply, page: Html, status = 200): FastifyReply {
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('content-security-policy', CSP)
    .header('cache-control', 'no-store')
    .send(page.text);
}

/** The error page for this request's view. */
export function sendError(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  message: string,
): FastifyReply {
  return sendPage(reply, errorPage(ctx.viewOf(request), status, message), status);
}

export function redirect(reply: FastifyReply, to: string): FastifyReply {
  return reply.code(303).header('location', to).header('cache-control', 'no-store').send();
}

/** A redirect whose next page shows `flash` once. */
export function redirectWithFlash(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  to: string,
  flash: Flash,
): FastifyReply {
  const value = Buffer.from(JSON.stringify(flash), 'utf8').toString('base64url');
  void reply.header('set-cookie', cookie(ctx, request, FLASH_COOKIE, value, 60));
  return redirect(reply, to);
}

/** The flash a GET carries, if any and well-formed; its cookie is cleared either way. */
export function takeFlash(
  ctx: DashboardContext,
  request: FastifyRequest,
  reply: FastifyReply,
  cookies: Map<string, string>,
): Flash | undefined {
  const value = cookies.get(FLASH_COOKIE);
  if (value === undefined || request.method !== 'GET') return undefined;
  void reply.header('set-cookie', cookie(ctx, request, FLASH_COOKIE, '', 0));
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as {
      kind?: unknown;
      text?: unknown;
    };
    if ((parsed.kind === 'info' || parsed.kind === 'error') && typeof parsed.text === 'string') {
      return { kind: parsed.kind, text: parsed.text.slice(0, 1000) };
    }
  } catch {
    // A mangled flash cookie is dropped.
  }
  return undefined;
}

/** A dashboard cookie (maxAgeSeconds 0 clears it); Secure when the browser came over HTTPS. */
export function cookie(
  ctx: DashboardContext,
  request: FastifyRequest,
  name: string,
  value: string,
  maxAgeSeconds: number,
): string {
  const secure = request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';
  return serializeCookie(name, value, { path: ctx.cookiePath, secure, maxAgeSeconds });
}

/** A path inside the dashboard to go back to after a form, or the dashboard's `fallback`. */
export function backTo(ctx: DashboardContext, target: string | undefined, fallback: string): string {
  const t = target ?? '';
  if (/^\/(?![/\\])[^\s\\]*$/.test(t) && t.length <= 2000) return `${ctx.base}${t}`;
  return `${ctx.base}${fallback}`;
}

/** A file to save (`fileName` is reduced to safe characters, its extension `extension`). */
export function sendDownload(
  reply: FastifyReply,
  file: { type: string; name: string; extension: string; body: Buffer | string; noStore?: boolean },
): FastifyReply {
  const name = file.name.replace(/[^A-Za-z0-9._+~-]/g, '_').slice(0, 200);
  void reply
    .header('content-type', file.type)
    .header('content-disposition', `attachment; filename="${name}${file.extension}"`);
  if (file.noStore === true) void reply.header('cache-control', 'no-store');
  return reply.send(file.body);
}
