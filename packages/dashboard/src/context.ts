/**
 * What the dashboard's route modules share: the plugin's options with their defaults, and each
 * request's state (its view for the layout, and the session behind it) as the session hook
 * (access.ts `identify`) left it.
 */
import type { FastifyRequest } from 'fastify';
import type { DashboardBackend } from './backend.js';
import type { View } from './layout.js';
import type { SessionClaims } from './session.js';

export interface DashboardOptions {
  backend: DashboardBackend;
  /**
   * The secret session cookies are signed with (at least 32 bytes), kept outside the database:
   * whoever holds it and a copy of the database can log in as anyone. Every server instance that
   * should accept a session needs the same secret.
   */
  sessionSecret: Uint8Array;
  /** Reading needs a login with any token (mirrors the API's readsNeedToken). Default false. */
  readsNeedLogin?: boolean;
  /** How long a session lasts (default 12 hours). */
  sessionHours?: number;
  /** A catalog older than this is shown as stale (default 48 hours). */
  staleCatalogHours?: number;
  /** The clock (tests move it). */
  now?: () => Date;
  /** Called with unexpected errors; the page shows only "internal error". Default: stderr. */
  onInternalError?: (error: unknown, request: { method: string; url: string }) => void;
}

export interface RequestState {
  view: View;
  claims?: SessionClaims;
  /** The session's key (session.ts sessionKey), for its CSRF tokens. */
  key?: Buffer;
}

/** The options with their defaults applied, and the requests' states: see plugin.ts. */
export interface DashboardContext {
  backend: DashboardBackend;
  sessionSecret: Uint8Array;
  /** The dashboard's URL prefix (e.g. `/dashboard`, or `` at the root). */
  base: string;
  /** The path its cookies are scoped to. */
  cookiePath: string;
  now: () => Date;
  readsNeedLogin: boolean;
  sessionSeconds: number;
  staleHours: number;
  onInternalError: (error: unknown, request: { method: string; url: string }) => void;
  /** Records a request's state (the session hook, once per request). */
  remember(request: FastifyRequest, state: RequestState): void;
  /** A request's state; only routes ask, after the session hook ran. */
  state(request: FastifyRequest): RequestState;
  /** A request's view, or an anonymous one when it failed before the session hook (error pages). */
  viewOf(request: FastifyRequest): View;
}

const stderrReport = (e: unknown, r: { method: string; url: string }): void =>
  void process.stderr.write(
    `sysattest-server: dashboard ${r.method} ${r.url.slice(0, 200)} failed: ${e instanceof Error ? e.message : String(e)}\n`,
  );

export function contextOf(base: string, options: DashboardOptions): DashboardContext {
  const states = new WeakMap<FastifyRequest, RequestState>();
  const now = options.now ?? (() => new Date());
  const readsNeedLogin = options.readsNeedLogin ?? false;
  return {
    backend: options.backend,
    sessionSecret: options.sessionSecret,
    base,
    cookiePath: base === '' ? '/' : base,
    now,
    readsNeedLogin,
    sessionSeconds: Math.round((options.sessionHours ?? 12) * 3600),
    staleHours: options.staleCatalogHours ?? 48,
    onInternalError: options.onInternalError ?? stderrReport,
    remember: (request, state) => void states.set(request, state),
    state(request) {
      const s = states.get(request);
      if (s === undefined) throw new Error('dashboard request state missing');
      return s;
    },
    viewOf: (request) => states.get(request)?.view ?? { base, now: now(), readsNeedLogin, path: base },
  };
}
