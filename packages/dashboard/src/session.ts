import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Stateless sessions that work across any number of server instances: the cookie carries
 * `v1.<tokenId>.<expires>.<nonce>.<mac>`, where mac is an HMAC-SHA256 keyed by a key derived from
 * the token's database-only secret (see DashboardBackend.sessionSecret). Every instance can check
 * it; nothing is stored per session; revoking the token invalidates every session made with it.
 *
 * CSRF: every form of a logged-in page carries HMAC(key, "csrf." + nonce), bound to the session;
 * the login form (no session yet) uses a double-submit cookie. Cookies are SameSite=Strict and
 * HttpOnly on top of that.
 */

const VERSION = 'v1';
const CONTEXT = 'sysattest-dashboard-session-v1';

export interface SessionClaims {
  tokenId: number;
  expires: number;
  nonce: string;
}

function sessionKey(secret: Uint8Array): Buffer {
  return createHmac('sha256', secret).update(CONTEXT).digest();
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

export function equalStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export function newNonce(): string {
  return randomBytes(18).toString('base64url');
}

export function signSession(claims: SessionClaims, secret: Uint8Array): string {
  const body = `${VERSION}.${claims.tokenId}.${claims.expires}.${claims.nonce}`;
  return `${body}.${mac(sessionKey(secret), body)}`;
}

/** The claims of a well-formed cookie value, before its MAC is checked (which needs the token's secret). */
export function parseSession(value: string | undefined): SessionClaims | undefined {
  if (value === undefined || value.length > 300) return undefined;
  const m = /^v1\.([1-9][0-9]{0,14})\.([0-9]{1,12})\.([A-Za-z0-9_-]{10,64})\.[A-Za-z0-9_-]{43}$/.exec(value);
  if (m === null) return undefined;
  return { tokenId: Number(m[1]), expires: Number(m[2]), nonce: m[3] as string };
}

export function verifySession(
  value: string,
  secret: Uint8Array,
  nowSeconds: number,
): SessionClaims | undefined {
  const claims = parseSession(value);
  if (claims === undefined || claims.expires <= nowSeconds) return undefined;
  return equalStrings(value, signSession(claims, secret)) ? claims : undefined;
}

export function csrfToken(claims: SessionClaims, secret: Uint8Array): string {
  return mac(sessionKey(secret), `csrf.${claims.nonce}`);
}

/** Cookies of a request, by name (the first of duplicates wins). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const name = part.slice(0, i).trim();
    if (!out.has(name)) out.set(name, part.slice(i + 1).trim());
  }
  return out;
}

export interface CookieOptions {
  path: string;
  secure: boolean;
  maxAgeSeconds?: number;
}

export function serializeCookie(name: string, value: string, o: CookieOptions): string {
  const parts = [`${name}=${value}`, `Path=${o.path}`, 'HttpOnly', 'SameSite=Strict'];
  if (o.maxAgeSeconds !== undefined) parts.push(`Max-Age=${o.maxAgeSeconds}`);
  if (o.secure) parts.push('Secure');
  return parts.join('; ');
}
