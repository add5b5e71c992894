import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Stateless sessions that work across any number of server instances: the cookie carries
 * `v2.<tokenId>.<expires>.<nonce>.<mac>`, where mac is an HMAC-SHA256 under a key derived from
 * the server's session secret and the token's binding (see sessionKey). Every instance holding the
 * same secret can check it; nothing is stored per session; revoking the token ends its sessions.
 *
 * The session secret is never in the database: a copy of the database (a backup, a replica) holds
 * every token's binding, and with v1 cookies, keyed by that binding alone, it was enough to mint
 * an admin session. v1 cookies are refused.
 *
 * CSRF: every form of a logged-in page carries HMAC(key, "csrf." + nonce), bound to the session;
 * the login form (no session yet) uses a double-submit cookie. Cookies are SameSite=Strict and
 * HttpOnly on top of that.
 */

const VERSION = 'v2';
const CONTEXT = 'sysattest-dashboard-session-v2';

/** Shortest session secret accepted (256 bits). */
export const MIN_SESSION_SECRET_BYTES = 32;

export interface SessionClaims {
  tokenId: number;
  expires: number;
  nonce: string;
}

/**
 * The key one token's sessions and CSRF tokens are signed with: keyed by the server's session
 * secret (kept outside the database), over the token id and its binding (a value stable for the
 * token's life, e.g. its stored hash), so a session names exactly one token.
 */
export function sessionKey(serverSecret: Uint8Array, tokenId: number, binding: Uint8Array): Buffer {
  if (serverSecret.length < MIN_SESSION_SECRET_BYTES) {
    throw new Error(`a session secret has at least ${MIN_SESSION_SECRET_BYTES} bytes`);
  }
  return createHmac('sha256', serverSecret)
    .update(`${CONTEXT}\u0000${tokenId}\u0000`)
    .update(binding)
    .digest();
}

function mac(key: Uint8Array, text: string): string {
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

/** A cookie value for these claims; `key` is sessionKey(…) of the claims' token. */
export function signSession(claims: SessionClaims, key: Uint8Array): string {
  const body = `${VERSION}.${claims.tokenId}.${claims.expires}.${claims.nonce}`;
  return `${body}.${mac(key, body)}`;
}

/** The claims of a well-formed cookie value, before its MAC is checked (which needs the token's key). */
export function parseSession(value: string | undefined): SessionClaims | undefined {
  if (value === undefined || value.length > 300) return undefined;
  const m = /^v2\.([1-9][0-9]{0,14})\.([0-9]{1,12})\.([A-Za-z0-9_-]{10,64})\.[A-Za-z0-9_-]{43}$/.exec(value);
  if (m === null) return undefined;
  return { tokenId: Number(m[1]), expires: Number(m[2]), nonce: m[3] as string };
}

export function verifySession(value: string, key: Uint8Array, nowSeconds: number): SessionClaims | undefined {
  const claims = parseSession(value);
  if (claims === undefined || claims.expires <= nowSeconds) return undefined;
  return equalStrings(value, signSession(claims, key)) ? claims : undefined;
}

export function csrfToken(claims: SessionClaims, key: Uint8Array): string {
  return mac(key, `csrf.${claims.nonce}`);
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
