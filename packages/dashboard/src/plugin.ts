import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  DashboardError,
  HOST_VERDICTS,
  JOB_VIEWS,
  ROLES,
  UPGRADE_WINDOWS,
  type DashboardBackend,
  type HostVerdict,
  type JobView,
  type PageRequest,
  type Role,
  type UpgradeWindow,
} from './backend.js';
import { url, type Html } from './html.js';
import { hostPage, hostsBehindPage, hostsPage } from './host-pages.js';
import type { View } from './layout.js';
import {
  adminPage,
  errorPage,
  fleetPage,
  healthPage,
  jobPage,
  jobsPage,
  loginPage,
  manifestPage,
  packagePage,
  packagesPage,
  upgradesPage,
} from './pages.js';
import {
  csrfToken,
  equalStrings,
  MIN_SESSION_SECRET_BYTES,
  newNonce,
  parseCookies,
  parseSession,
  serializeCookie,
  sessionKey,
  signSession,
  verifySession,
  type SessionClaims,
} from './session.js';

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

const SESSION_COOKIE = 'sysattest_session';
const LOGIN_CSRF_COOKIE = 'sysattest_login_csrf';
const FLASH_COOKIE = 'sysattest_flash';
const PAGE_SIZE = 50;
const FILES_PAGE_SIZE = 200;
const HOSTS_PAGE_SIZE = 100;
/** Longest host name accepted in a URL (a DNS name; the server's own bound may be tighter). */
const MAX_HOST_NAME = 253;
const REPORT_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MAX_OFFSET = 10_000_000;
const MAX_FORM_BYTES = 1024 * 1024;

const CSP =
  "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function asset(name: string): Buffer {
  // dist/plugin.js → ../assets/NAME: the files ship with the package, nothing is fetched.
  return readFileSync(new URL(`../assets/${name}`, import.meta.url));
}

interface RequestState {
  view: View;
  claims?: SessionClaims;
  /** The session's key (session.ts sessionKey), for its CSRF tokens. */
  key?: Buffer;
}

type Query = Record<string, string | string[] | undefined>;
type Form = Record<string, string>;

function one(q: Query, key: string, max: number): string {
  const v = q[key];
  const s = Array.isArray(v) ? v[0] : v;
  if (s === undefined) return '';
  if (s.length > max) throw new DashboardError(400, `${key} is longer than ${max} characters`);
  return s;
}

function offsetOf(q: Query, key = 'offset'): number {
  const s = one(q, key, 12);
  if (s === '') return 0;
  if (!/^[0-9]+$/.test(s) || Number(s) > MAX_OFFSET) {
    throw new DashboardError(400, `offset must be a whole number from 0 to ${MAX_OFFSET}`);
  }
  return Number(s);
}

function field(f: Form, key: string, max: number, required = true): string {
  const v = f[key];
  if (typeof v !== 'string' || (required && v.trim() === '')) {
    if (!required) return '';
    throw new DashboardError(400, `the form has no ${key}`);
  }
  if (v.length > max) throw new DashboardError(400, `${key} is longer than ${max} characters`);
  return v;
}

/** Is `v` one of `options`? */
function oneOf<T extends string>(v: string, options: readonly T[]): v is T {
  return (options as readonly string[]).includes(v);
}

/**
 * The dashboard as a fastify plugin: register it with a prefix (`app.register(dashboardPlugin,
 * { prefix: '/dashboard', backend })`). Pages are HTML rendered here, from the backend's data;
 * styles, script and charts come from this package (no CDN, nothing external). Read-only pages are
 * public unless `readsNeedLogin`; everything that changes state needs an admin session and the
 * session's CSRF token.
 */
export async function dashboardPlugin(app: FastifyInstance, options: DashboardOptions): Promise<void> {
  const { backend, sessionSecret } = options;
  if (!(sessionSecret instanceof Uint8Array) || sessionSecret.length < MIN_SESSION_SECRET_BYTES) {
    throw new Error(`the dashboard needs a session secret of at least ${MIN_SESSION_SECRET_BYTES} bytes`);
  }
  const base = app.prefix;
  const cookiePath = base === '' ? '/' : base;
  const now = options.now ?? (() => new Date());
  const readsNeedLogin = options.readsNeedLogin ?? false;
  const sessionSeconds = Math.round((options.sessionHours ?? 12) * 3600);
  const staleHours = options.staleCatalogHours ?? 48;
  const onInternalError =
    options.onInternalError ??
    ((e: unknown, r: { method: string; url: string }) =>
      process.stderr.write(
        `sysattest-server: dashboard ${r.method} ${r.url.slice(0, 200)} failed: ${e instanceof Error ? e.message : String(e)}\n`,
      ));
  const css = asset('dashboard.css');
  const js = asset('dashboard.js');
  const states = new WeakMap<FastifyRequest, RequestState>();

  // Forms post application/x-www-form-urlencoded (only inside this plugin).
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
    (_request, body, done) => {
      const form: Form = {};
      for (const [k, v] of new URLSearchParams(body as string)) if (!(k in form)) form[k] = v;
      done(null, form);
    },
  );

  const secure = (request: FastifyRequest): boolean =>
    request.protocol === 'https' || request.headers['x-forwarded-proto'] === 'https';

  function state(request: FastifyRequest): RequestState {
    const s = states.get(request);
    if (s === undefined) throw new Error('dashboard request state missing');
    return s;
  }

  app.addHook('onRequest', async (request, reply) => {
    const cookies = parseCookies(request.headers.cookie);
    const view: View = { base, now: now(), readsNeedLogin, path: request.url.slice(0, 2000) };
    const s: RequestState = { view };
    const claims = parseSession(cookies.get(SESSION_COOKIE));
    if (claims !== undefined) {
      const found = await backend.sessionToken(claims.tokenId);
      // A reporter token never has a session (refused at login); checked again in case one is forged.
      if (found !== undefined && found.principal.role !== 'reporter') {
        const key = sessionKey(sessionSecret, claims.tokenId, found.binding);
        const verified = verifySession(cookies.get(SESSION_COOKIE) as string, key, view.now.getTime() / 1000);
        if (verified !== undefined) {
          s.claims = verified;
          s.key = key;
          view.principal = found.principal;
          view.csrf = csrfToken(verified, key);
        }
      }
    }
    const flash = cookies.get(FLASH_COOKIE);
    if (flash !== undefined && request.method === 'GET') {
      try {
        const parsed = JSON.parse(Buffer.from(flash, 'base64url').toString('utf8')) as {
          kind?: unknown;
          text?: unknown;
        };
        if ((parsed.kind === 'info' || parsed.kind === 'error') && typeof parsed.text === 'string') {
          view.flash = { kind: parsed.kind, text: parsed.text.slice(0, 1000) };
        }
      } catch {
        // A mangled flash cookie is dropped.
      }
      void reply.header(
        'set-cookie',
        serializeCookie(FLASH_COOKIE, '', { path: cookiePath, secure: secure(request), maxAgeSeconds: 0 }),
      );
    }
    states.set(request, s);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'same-origin');
    void reply.header('x-frame-options', 'DENY');
  });

  function send(reply: FastifyReply, page: Html, status = 200): FastifyReply {
    return reply
      .code(status)
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', CSP)
      .header('cache-control', 'no-store')
      .send(page.text);
  }

  function redirect(
    reply: FastifyReply,
    to: string,
    flash?: { kind: 'info' | 'error'; text: string },
    request?: FastifyRequest,
  ): FastifyReply {
    if (flash !== undefined) {
      const value = Buffer.from(JSON.stringify(flash), 'utf8').toString('base64url');
      void reply.header(
        'set-cookie',
        serializeCookie(FLASH_COOKIE, value, {
          path: cookiePath,
          secure: request !== undefined && secure(request),
          maxAgeSeconds: 60,
        }),
      );
    }
    return reply.code(303).header('location', to).header('cache-control', 'no-store').send();
  }

  /** A path inside the dashboard to go back to after a form, or the dashboard's root. */
  function backTo(target: string | undefined, fallback: string): string {
    const t = target ?? '';
    if (/^\/(?![/\\])[^\s\\]*$/.test(t) && t.length <= 2000) return `${base}${t}`;
    return `${base}${fallback}`;
  }

  /** Reading pages: public, or any logged-in token when reads need a login. */
  async function readable(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const s = state(request);
    if (readsNeedLogin && s.view.principal === undefined) {
      await redirect(reply, url(`${base}/login`, { next: s.view.path }));
    }
  }

  /**
   * Host pages: a login with any token, even when other reads are public, as the API's
   * `GET /v1/hosts` needs a reader token: a fleet's weak spots are not public.
   */
  async function hostsReadable(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const s = state(request);
    if (s.view.principal === undefined) await redirect(reply, url(`${base}/login`, { next: s.view.path }));
  }

  /** Admin pages: redirect to the login page, or refuse a non-admin session. */
  async function adminView(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const s = state(request);
    if (s.view.principal === undefined) {
      await redirect(reply, url(`${base}/login`, { next: s.view.path }));
    } else if (s.view.principal.role !== 'admin') {
      await send(
        reply,
        errorPage(
          s.view,
          403,
          `this page needs an admin token (you are logged in as ${s.view.principal.role})`,
        ),
        403,
      );
    }
  }

  /** Same-origin check on top of the CSRF token: a browser's Origin, when sent, must be this site. */
  function sameOrigin(request: FastifyRequest): boolean {
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

  /** State-changing forms: an admin session whose CSRF token the form carries. */
  async function adminAction(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const s = state(request);
    const body = (request.body ?? {}) as Form;
    if (s.view.principal === undefined || s.claims === undefined || s.key === undefined) {
      await send(
        reply,
        errorPage(s.view, 401, 'this action needs an admin login: log in with an admin token first'),
        401,
      );
      return;
    }
    if (s.view.principal.role !== 'admin') {
      await send(
        reply,
        errorPage(
          s.view,
          403,
          `this action needs an admin token (you are logged in as ${s.view.principal.role})`,
        ),
        403,
      );
      return;
    }
    const token = typeof body.csrf === 'string' ? body.csrf : '';
    if (!sameOrigin(request) || token === '' || !equalStrings(token, csrfToken(s.claims, s.key))) {
      await send(
        reply,
        errorPage(
          s.view,
          403,
          'the form is stale or did not come from this dashboard (CSRF check failed): reload the page and try again',
        ),
        403,
      );
    }
  }

  app.setErrorHandler(async (e, request, reply) => {
    const s = states.get(request);
    const view: View = s?.view ?? { base, now: now(), readsNeedLogin, path: base };
    if (e instanceof DashboardError) return send(reply, errorPage(view, e.status, e.message), e.status);
    const status = (e as { statusCode?: unknown }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return send(
        reply,
        errorPage(view, status, status === 413 ? 'the form is too large' : 'the request is malformed'),
        status,
      );
    }
    try {
      onInternalError(e, { method: request.method, url: request.url });
    } catch {
      // A failing reporter must not turn an error page into no answer.
    }
    return send(
      reply,
      errorPage(view, 500, 'internal error: the server could not answer; the details are in its log'),
      500,
    );
  });
  app.setNotFoundHandler(async (request, reply) => {
    const view: View = states.get(request)?.view ?? { base, now: now(), readsNeedLogin, path: base };
    return send(reply, errorPage(view, 404, 'no such page'), 404);
  });

  // --- assets ------------------------------------------------------------------------------------

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

  // --- read-only pages ---------------------------------------------------------------------------

  app.get('/', { preHandler: readable }, async (request, reply) => {
    const v = state(request).view;
    const rows = await backend.fleet();
    // Hosts per platform only for a login (hostsReadable).
    const shown = v.principal === undefined ? rows.map(({ hosts: _, ...r }) => r) : rows;
    return send(reply, fleetPage(v, shown, staleHours));
  });

  app.get<{ Querystring: Query }>('/packages', { preHandler: readable }, async (request, reply) => {
    const q = one(request.query, 'q', 200).trim();
    const page: PageRequest = { offset: offsetOf(request.query), limit: PAGE_SIZE };
    const results = q === '' ? undefined : await backend.searchPackages(q, page);
    return send(reply, packagesPage(state(request).view, q, results));
  });

  app.get<{ Params: { name: string } }>(
    '/packages/:name',
    { preHandler: readable },
    async (request, reply) => {
      const name = request.params.name;
      if (name.length === 0 || name.length > 200)
        throw new DashboardError(400, 'a package name has 1 to 200 characters');
      return send(reply, packagePage(state(request).view, name, await backend.packageDetail(name)));
    },
  );

  const checkDigest = (digest: string): string => {
    if (!/^[0-9a-f]{64}$/.test(digest))
      throw new DashboardError(404, 'no such manifest (a digest is 64 hex digits)');
    return digest;
  };

  app.get<{ Params: { digest: string }; Querystring: Query }>(
    '/manifests/:digest',
    { preHandler: readable },
    async (request, reply) => {
      const digest = checkDigest(request.params.digest);
      const filter = one(request.query, 'path', 4096);
      const m = await backend.manifest(digest);
      const files =
        m === undefined
          ? undefined
          : await backend.manifestFiles(digest, filter, {
              offset: offsetOf(request.query),
              limit: FILES_PAGE_SIZE,
            });
      if (m === undefined || files === undefined)
        throw new DashboardError(404, 'no manifest with this digest');
      return send(reply, manifestPage(state(request).view, m, filter, files));
    },
  );

  const downloadName = (s: string): string => s.replace(/[^A-Za-z0-9._+~-]/g, '_').slice(0, 200);

  app.get<{ Params: { digest: string } }>(
    '/manifests/:digest/manifest.json',
    { preHandler: readable },
    async (request, reply) => {
      const doc = await backend.manifestDocument(checkDigest(request.params.digest));
      if (doc === undefined) throw new DashboardError(404, 'no manifest with this digest');
      return reply
        .header('content-type', 'application/json')
        .header('content-disposition', `attachment; filename="${downloadName(doc.baseName)}.json"`)
        .send(Buffer.from(doc.bytes));
    },
  );

  app.get<{ Params: { digest: string } }>(
    '/manifests/:digest/manifest.json.asc',
    { preHandler: readable },
    async (request, reply) => {
      const doc = await backend.manifestDocument(checkDigest(request.params.digest));
      if (doc === undefined) throw new DashboardError(404, 'no manifest with this digest');
      return reply
        .header('content-type', 'application/pgp-signature')
        .header('content-disposition', `attachment; filename="${downloadName(doc.baseName)}.json.asc"`)
        .send(doc.signature);
    },
  );

  app.get<{ Querystring: Query }>('/upgrades', { preHandler: readable }, async (request, reply) => {
    const w = one(request.query, 'window', 10) || '7d';
    if (!oneOf<UpgradeWindow>(w, UPGRADE_WINDOWS))
      throw new DashboardError(400, `window must be one of ${UPGRADE_WINDOWS.join(', ')}`);
    const platform = one(request.query, 'platform', 200) || undefined;
    const platforms = await backend.platforms();
    if (platform !== undefined && !platforms.includes(platform))
      throw new DashboardError(404, `no platform ${platform}`);
    const report = await backend.upgrades(w, platform, { offset: offsetOf(request.query), limit: PAGE_SIZE });
    const v = state(request).view;
    // Hosts behind each upgrade only for a login (hostsReadable).
    const shown =
      v.principal !== undefined
        ? report
        : {
            ...report,
            events: { ...report.events, items: report.events.items.map(({ hostsBehind: _, ...e }) => e) },
          };
    return send(reply, upgradesPage(v, w, platform, platforms, shown));
  });

  // --- hosts (issue 19) --------------------------------------------------------------------------

  const hostName = (s: string): string => {
    if (s.length === 0 || s.length > MAX_HOST_NAME) throw new DashboardError(404, 'no such host');
    return s;
  };

  app.get<{ Querystring: Query }>('/hosts', { preHandler: hostsReadable }, async (request, reply) => {
    const verdict = one(request.query, 'verdict', 20) || undefined;
    if (verdict !== undefined && !oneOf<HostVerdict>(verdict, HOST_VERDICTS))
      throw new DashboardError(400, `verdict must be one of ${HOST_VERDICTS.join(', ')}`);
    const platform = one(request.query, 'platform', 200) || undefined;
    const after = one(request.query, 'after', MAX_HOST_NAME) || undefined;
    const filter = {
      ...(verdict === undefined ? {} : { verdict }),
      ...(platform === undefined ? {} : { platform }),
      ...(after === undefined ? {} : { after }),
    };
    const view = await backend.hosts({ ...filter, limit: HOSTS_PAGE_SIZE });

    return send(reply, hostsPage(state(request).view, view, filter));
  });

  app.get<{ Params: { name: string } }>(
    '/hosts/:name',
    { preHandler: hostsReadable },
    async (request, reply) => {
      const name = hostName(request.params.name);
      const detail = await backend.host(name);
      if (detail === undefined) throw new DashboardError(404, `no host ${name}`);
      const v = state(request).view;
      // An admin sees the host's reporter tokens, to revoke one without forgetting the host.
      const tokens =
        v.principal?.role === 'admin'
          ? (await backend.tokens()).filter((t) => t.role === 'reporter' && t.host === name)
          : undefined;
      return send(reply, hostPage(v, detail, tokens));
    },
  );

  app.get<{ Params: { name: string; file: string } }>(
    '/hosts/:name/reports/:file',
    { preHandler: hostsReadable },
    async (request, reply) => {
      const name = hostName(request.params.name);
      const id = request.params.file.replace(/\.json$/, '');
      if (!REPORT_ID.test(id)) throw new DashboardError(404, 'no such report (a report id is a UUID)');
      const bytes = await backend.hostReport(name, id);
      if (bytes === undefined) throw new DashboardError(404, `no report ${id} of host ${name}`);
      return reply
        .header('content-type', 'application/json')
        .header('content-disposition', `attachment; filename="${downloadName(`${name}_${id}`)}.json"`)
        .header('cache-control', 'no-store')
        .send(Buffer.from(bytes));
    },
  );

  app.get<{ Querystring: Query }>(
    '/upgrades/hosts',
    { preHandler: hostsReadable },
    async (request, reply) => {
      const ref = {
        platform: one(request.query, 'platform', 200),
        name: one(request.query, 'name', 200),
        arch: one(request.query, 'arch', 50),
        version: one(request.query, 'version', 200),
      };
      if (Object.values(ref).some((x) => x === ''))
        throw new DashboardError(400, 'name the platform, package, architecture and version');
      const page = await backend.hostsBehind(ref, {
        offset: offsetOf(request.query),
        limit: HOSTS_PAGE_SIZE,
      });
      return send(reply, hostsBehindPage(state(request).view, ref, page));
    },
  );

  app.get('/health', { preHandler: readable }, async (request, reply) =>
    send(reply, healthPage(state(request).view, await backend.health())),
  );

  app.get<{ Querystring: Query }>('/jobs', { preHandler: readable }, async (request, reply) => {
    const v = one(request.query, 'view', 20) || 'queue';
    if (!oneOf<JobView>(v, JOB_VIEWS))
      throw new DashboardError(400, `view must be one of ${JOB_VIEWS.join(', ')}`);
    const page = await backend.jobs(v, { offset: offsetOf(request.query), limit: PAGE_SIZE });
    return send(reply, jobsPage(state(request).view, v, page, await backend.queueCounts()));
  });

  const jobId = (s: string): number => {
    if (!/^[1-9][0-9]{0,14}$/.test(s)) throw new DashboardError(404, 'no such job');
    return Number(s);
  };

  app.get<{ Params: { id: string } }>('/jobs/:id', { preHandler: readable }, async (request, reply) => {
    const job = await backend.job(jobId(request.params.id));
    if (job === undefined) throw new DashboardError(404, `no job ${request.params.id}`);
    return send(reply, jobPage(state(request).view, job));
  });

  // --- login -------------------------------------------------------------------------------------

  function loginForm(
    request: FastifyRequest,
    reply: FastifyReply,
    next: string,
    error?: string,
    status = 200,
  ): FastifyReply {
    const token = newNonce();
    void reply.header(
      'set-cookie',
      serializeCookie(LOGIN_CSRF_COOKIE, token, {
        path: cookiePath,
        secure: secure(request),
        maxAgeSeconds: 3600,
      }),
    );
    return send(reply, loginPage(state(request).view, token, next, error), status);
  }

  app.get<{ Querystring: Query }>('/login', async (request, reply) =>
    loginForm(request, reply, one(request.query, 'next', 2000)),
  );

  app.post<{ Body: Form }>('/login', async (request, reply) => {
    const body = (request.body ?? {}) as Form;
    const next = typeof body.next === 'string' ? body.next : '';
    const cookie = parseCookies(request.headers.cookie).get(LOGIN_CSRF_COOKIE) ?? '';
    const sent = typeof body.csrf === 'string' ? body.csrf : '';
    if (!sameOrigin(request) || cookie === '' || sent === '' || !equalStrings(cookie, sent)) {
      return loginForm(
        request,
        reply,
        next,
        'the login form is stale or did not come from this dashboard: try again',
        403,
      );
    }
    const secret = field(body, 'token', 200).trim();
    const principal = await backend.authenticate(secret);
    if (principal === undefined)
      return loginForm(request, reply, next, 'this token is unknown or revoked', 401);
    if (principal.role === 'reporter')
      return loginForm(
        request,
        reply,
        next,
        'a reporter token only sends its host’s reports: log in with a reader or admin token',
        403,
      );
    const found = await backend.sessionToken(principal.tokenId);
    if (found === undefined) return loginForm(request, reply, next, 'this token is unknown or revoked', 401);
    const expires = Math.floor(now().getTime() / 1000) + sessionSeconds;
    const key = sessionKey(sessionSecret, principal.tokenId, found.binding);
    const value = signSession({ tokenId: principal.tokenId, expires, nonce: newNonce() }, key);
    const target = next.startsWith(base) ? next.slice(base.length) : next;
    void reply.header('set-cookie', [
      serializeCookie(SESSION_COOKIE, value, {
        path: cookiePath,
        secure: secure(request),
        maxAgeSeconds: sessionSeconds,
      }),
      serializeCookie(LOGIN_CSRF_COOKIE, '', { path: cookiePath, secure: secure(request), maxAgeSeconds: 0 }),
    ]);
    return reply
      .code(303)
      .header('location', backTo(target === '' ? '/' : target, '/'))
      .header('cache-control', 'no-store')
      .send();
  });

  app.post<{ Body: Form }>('/logout', async (request, reply) => {
    const s = state(request);
    const body = (request.body ?? {}) as Form;
    if (s.claims !== undefined && s.key !== undefined) {
      const token = typeof body.csrf === 'string' ? body.csrf : '';
      if (token === '' || !equalStrings(token, csrfToken(s.claims, s.key))) {
        return send(
          reply,
          errorPage(s.view, 403, 'the form is stale (CSRF check failed): reload the page and try again'),
          403,
        );
      }
    }
    void reply.header(
      'set-cookie',
      serializeCookie(SESSION_COOKIE, '', { path: cookiePath, secure: secure(request), maxAgeSeconds: 0 }),
    );
    return reply.code(303).header('location', `${base}/`).send();
  });

  // --- admin -------------------------------------------------------------------------------------

  async function renderAdmin(
    request: FastifyRequest,
    reply: FastifyReply,
    offsets: { tracked: number; reporters: number },
    createdSecret?: { id: number; secret: string },
  ): Promise<FastifyReply> {
    const [platforms, tokens, keys, tracked] = await Promise.all([
      backend.platforms(),
      backend.tokens(),
      backend.trustedKeys(),
      backend.trackedPackages({ offset: offsets.tracked, limit: PAGE_SIZE }),
    ]);
    const reporters = tokens
      .filter((t) => t.role === 'reporter')
      .sort((a, b) =>
        (a.host ?? '') < (b.host ?? '') ? -1 : (a.host ?? '') > (b.host ?? '') ? 1 : a.id - b.id,
      );
    const at = offsets.reporters;
    return send(
      reply,
      adminPage(state(request).view, {
        platforms,
        tokens: tokens.filter((t) => t.role !== 'reporter'),
        reporters: {
          items: reporters.slice(at, at + PAGE_SIZE),
          offset: at,
          limit: PAGE_SIZE,
          total: reporters.length,
          hasMore: at + PAGE_SIZE < reporters.length,
        },
        keys,
        tracked,
        canSync: backend.requestCatalogSync !== undefined,
        ...(createdSecret === undefined ? {} : { createdSecret }),
      }),
    );
  }

  app.get<{ Querystring: Query }>('/admin', { preHandler: adminView }, async (request, reply) =>
    renderAdmin(request, reply, {
      tracked: offsetOf(request.query),
      reporters: offsetOf(request.query, 'reporters'),
    }),
  );

  /** Runs an admin action; a DashboardError comes back to the page as an error notice. */
  async function act(
    request: FastifyRequest,
    reply: FastifyReply,
    back: string,
    work: () => Promise<string>,
  ): Promise<FastifyReply> {
    try {
      return redirect(reply, back, { kind: 'info', text: await work() }, request);
    } catch (e) {
      if (e instanceof DashboardError)
        return redirect(reply, back, { kind: 'error', text: e.message }, request);
      throw e;
    }
  }

  app.post<{ Params: { id: string }; Body: Form }>(
    '/jobs/:id/requeue',
    { preHandler: adminAction },
    async (request, reply) => {
      const id = jobId(request.params.id);
      return act(request, reply, backTo(request.body.back, `/jobs/${id}`), async () => {
        const job = await backend.requeueJob(id);
        return `job ${job.id} (${job.name} ${job.version}) is queued again`;
      });
    },
  );

  app.post<{ Body: Form }>('/tracked', { preHandler: adminAction }, async (request, reply) => {
    const platform = field(request.body, 'platform', 200);
    const name = field(request.body, 'name', 200).trim();
    return act(request, reply, backTo(request.body.back, '/admin'), async () => {
      const { jobsQueued } = await backend.trackPackage(platform, name);
      return `${name} is tracked on ${platform}${jobsQueued > 0 ? `; ${jobsQueued} job(s) queued for its newest version` : ''}`;
    });
  });

  app.post<{ Body: Form }>('/tracked/remove', { preHandler: adminAction }, async (request, reply) => {
    const platform = field(request.body, 'platform', 200);
    const name = field(request.body, 'name', 200);
    return act(request, reply, backTo(request.body.back, '/admin'), async () => {
      const removed = await backend.untrackPackage(platform, name);
      return removed > 0
        ? `${name} is no longer tracked on ${platform}`
        : `${name} was not tracked on ${platform} by an operator`;
    });
  });

  app.post<{ Body: Form }>('/tokens', { preHandler: adminAction }, async (request, reply) => {
    const name = field(request.body, 'name', 200).trim();
    const role = field(request.body, 'role', 20);
    if (!oneOf<Role>(role, ROLES)) throw new DashboardError(400, `role must be one of ${ROLES.join(', ')}`);
    const host = field(request.body, 'host', MAX_HOST_NAME, false).trim();
    if (role === 'reporter' && host === '')
      throw new DashboardError(400, 'a reporter token is for one host: name the host');
    if (role !== 'reporter' && host !== '')
      throw new DashboardError(400, `a ${role} token is not bound to a host: leave the host empty`);
    try {
      const created = await backend.createToken(role, name, host === '' ? undefined : host);
      // Shown on this answer only (no redirect): the secret must not travel in a URL or a cookie.
      return renderAdmin(request, reply, { tracked: 0, reporters: 0 }, created);
    } catch (e) {
      if (e instanceof DashboardError)
        return redirect(reply, `${base}/admin`, { kind: 'error', text: e.message }, request);
      throw e;
    }
  });

  app.post<{ Params: { id: string }; Body: Form }>(
    '/tokens/:id/revoke',
    { preHandler: adminAction },
    async (request, reply) => {
      const id = jobId(request.params.id);
      return act(request, reply, backTo(request.body.back, '/admin'), async () => {
        const t = await backend.revokeToken(id);
        return `token ${t.id} (${t.name}) is revoked`;
      });
    },
  );

  app.post<{ Params: { name: string }; Body: Form }>(
    '/hosts/:name/forget',
    { preHandler: adminAction },
    async (request, reply) => {
      const name = hostName(request.params.name);
      return act(request, reply, `${base}/hosts`, async () => {
        const { reports, tokensRevoked } = await backend.forgetHost(name);
        return `host ${name} is forgotten: ${reports} report(s) deleted, ${tokensRevoked} reporter token(s) revoked`;
      });
    },
  );

  app.post<{ Body: Form }>('/keys', { preHandler: adminAction }, async (request, reply) => {
    const armored = field(request.body, 'armored', 512 * 1024);
    return act(request, reply, `${base}/admin`, async () => {
      const k = await backend.trustKey(armored);
      return `key ${k.fingerprint} is trusted`;
    });
  });

  app.post<{ Params: { fingerprint: string }; Body: Form }>(
    '/keys/:fingerprint/remove',
    { preHandler: adminAction },
    async (request, reply) => {
      const fp = request.params.fingerprint;
      if (!/^[0-9A-Fa-f]{16,64}$/.test(fp)) throw new DashboardError(404, 'no such key');
      return act(request, reply, `${base}/admin`, async () => {
        await backend.distrustKey(fp);
        return `key ${fp} is no longer trusted`;
      });
    },
  );

  const sync = backend.requestCatalogSync;
  if (sync !== undefined) {
    app.post<{ Body: Form }>('/sync', { preHandler: adminAction }, async (request, reply) => {
      const platform = field(request.body, 'platform', 200);
      return act(request, reply, `${base}/admin`, () => sync.call(backend, platform));
    });
  }
}
