import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import type {
  DashboardBackend,
  HostDetail,
  HostSummary,
  HostsView,
  HostsRequest,
  Principal,
  Role,
  TokenRow,
} from './backend.js';
import { DashboardError } from './backend.js';
import { hostPage, hostsBehindPage, hostsPage } from './host-pages.js';
import { adminPage } from './admin-page.js';
import { dashboardPlugin } from './plugin.js';

const NOW = new Date('2026-12-06T12:00:00Z');
const view = { base: '/dashboard', now: NOW, readsNeedLogin: false, path: '/dashboard/hosts' };
const HOSTILE = `<script>window.__pwned=1</script>"'&`;

function summary(name: string, o: Partial<HostSummary> = {}): HostSummary {
  return {
    name,
    platform: 'debian/bookworm/amd64',
    lastReportAt: '2026-12-06T09:00:00.000Z',
    verdict: 'clean',
    exitCode: 0,
    packages: 800,
    verified: 790,
    unverified: 10,
    outdated: 3,
    failures: 0,
    findingsByClass: { modified: 0, unowned: 0, outdated: 3, unverified: 10 },
    ...o,
  };
}

function hostsView(o: Partial<HostsView> = {}): HostsView {
  return {
    counts: { clean: 900, findings: 40, incomplete: 30, 'trust-failure': 5, stale: 25 },
    platforms: ['debian/bookworm/amd64', 'debian/bookworm/arm64'],
    staleAfterHours: 48,
    hosts: [summary('web-01')],
    next: 'web-01',
    ...o,
  };
}

/** Rendered text of an element's content, tags dropped (what a reader sees). */
const visible = (s: string): string =>
  s
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();

describe('hosts page', () => {
  it('counts hosts per verdict at the top, each a link that names the view, and pages 1,000 hosts', () => {
    const out = hostsPage(view, hostsView(), {}).text;
    assert.match(
      out,
      /href="\/dashboard\/hosts\?verdict=stale"[^>]*>\s*<span class="badge muted">stale<\/span> <span class="count">25<\/span>/,
    );
    assert.match(
      out,
      /href="\/dashboard\/hosts\?verdict=trust-failure"[^>]*>\s*<span class="badge bad">trust failure<\/span> <span class="count">5<\/span>/,
    );
    assert.match(
      out,
      /href="\/dashboard\/hosts"\s+aria-current="page"\s*>all <span class="count">1,000<\/span>/,
    );
    assert.match(visible(out), /1 of 1,000 hosts, from the first/);
    assert.match(out, /rel="next" href="\/dashboard\/hosts\?after=web-01"/);
    assert.doesNotMatch(out, /rel="first"/);
    assert.match(visible(out), /a host is stale when it has sent nothing for 2 d\./);
  });

  it('keeps the platform in the verdict links and the filters in the pager', () => {
    const out = hostsPage(view, hostsView({ hosts: [summary('b')], next: 'b' }), {
      verdict: 'findings',
      platform: 'debian/bookworm/arm64',
      after: 'a',
    }).text;
    assert.match(out, /href="\/dashboard\/hosts\?verdict=clean&amp;platform=debian%2Fbookworm%2Farm64"/);
    assert.match(
      out,
      /rel="first" href="\/dashboard\/hosts\?verdict=findings&amp;platform=debian%2Fbookworm%2Farm64"/,
    );
    assert.match(
      out,
      /rel="next" href="\/dashboard\/hosts\?verdict=findings&amp;platform=debian%2Fbookworm%2Farm64&amp;after=b"/,
    );
    assert.match(visible(out), /1 of 40 hosts, after a/);
    assert.match(out, /<option value="debian\/bookworm\/arm64"\s+selected>/);
  });

  it('shows each host with platform, "3 h ago" and the exact time on hover, verdict, classes, outdated', () => {
    const h = summary('db-02', {
      verdict: 'findings',
      exitCode: 1,
      failures: 4,
      findingsByClass: { modified: 3, unowned: 1, metadata: 0, outdated: 7, unverified: 2 },
      outdated: 7,
      unverified: 2,
    });
    const out = hostsPage(view, hostsView({ hosts: [h], next: undefined }), {}).text;
    const row = visible(/<tr>\s*<td data-label="Host".*?<\/tr>/s.exec(out)?.[0] ?? '');
    assert.equal(row, 'db-02 debian/bookworm/amd64 3 h ago findings modified 3 · unowned 1 800 2 7');
    assert.match(
      out,
      /<time datetime="2026-12-06T09:00:00.000Z" title="2026-12-06 09:00 UTC \(2026-12-06T09:00:00.000Z\)">3 h ago<\/time>/,
    );
    assert.match(out, /href="\/dashboard\/hosts\/db-02"/);
    assert.match(out, /href="\/dashboard\/hosts\?platform=debian%2Fbookworm%2Famd64"/);
  });

  it('renders a hostile host name and platform as text', () => {
    const h = summary(HOSTILE, { platform: HOSTILE });
    const out = hostsPage(view, hostsView({ platforms: [HOSTILE], hosts: [h] }), { platform: HOSTILE }).text;
    assert.ok(!out.includes('<script>window'), 'no script element from data');
    assert.ok(out.includes('&lt;script&gt;window.__pwned=1&lt;/script&gt;&quot;&#39;&amp;'));
    assert.match(out, /href="\/dashboard\/hosts\/%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E%22&#39;%26"/);
  });

  it('says why the list is empty', () => {
    const empty = hostsView({ hosts: [], next: undefined });
    assert.match(visible(hostsPage(view, empty, {}).text), /No host has reported yet/);
    assert.match(visible(hostsPage(view, empty, { verdict: 'stale' }).text), /No host stale\./);
  });
});

function detail(o: Partial<HostDetail> = {}): HostDetail {
  return {
    host: summary('web-01', { verdict: 'findings', exitCode: 3, failures: 2 }),
    history: [
      {
        reportId: '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10',
        receivedAt: '2026-12-06T09:00:00.000Z',
        verdict: 'findings',
        exitCode: 3,
        failures: 2,
      },
      {
        reportId: '0b6a3c1e-2f5d-4e7a-8b9c-1d2e3f4a5b6c',
        receivedAt: '2026-12-05T09:00:00.000Z',
        verdict: 'clean',
        exitCode: 0,
        failures: 0,
      },
    ],
    latest: {
      reportId: '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10',
      receivedAt: '2026-12-06T09:00:00.000Z',
      root: '/',
      platform: 'debian/bookworm/amd64',
      findings: [
        {
          class: 'modified',
          title: 'Modified content',
          total: 3,
          failures: 3,
          items: [
            {
              class: 'modified',
              package: 'coreutils',
              arch: 'amd64',
              path: `/usr/bin/${HOSTILE}`,
              expected: 'aa',
              actual: 'bb',
              detail: `content differs ${HOSTILE}`,
              failure: true,
            },
          ],
        },
        {
          class: 'unowned',
          title: 'Unowned (no installed package owns it)',
          total: 1,
          failures: 0,
          items: [
            {
              class: 'unowned',
              package: '',
              arch: '',
              path: '/usr/local/bin/x',
              detail: 'no package owns it',
              failure: false,
            },
          ],
        },
      ],
      unverified: {
        total: 1,
        items: [
          {
            name: 'docker-ce',
            version: '27.0',
            arch: 'amd64',
            status: 'unverified',
            reason: 'foreign-origin',
            origin: 'Docker',
          },
        ],
      },
      outdated: {
        total: 2,
        items: [
          {
            name: 'openssl',
            version: '3.0.13-1~deb12u1',
            arch: 'amd64',
            status: 'verified',
            newestVersion: '3.0.15-1~deb12u1',
          },
          {
            name: 'curl',
            version: '7.88.1-10',
            arch: 'amd64',
            status: 'verified',
            newestVersion: '7.88.1-10+deb12u5',
            newestClaimed: true,
          },
        ],
      },
      notes: { total: 1, items: ['catalog fresh'] },
    },
    ...o,
  };
}

describe('host page', () => {
  it('says the report is the host’s own claim', () => {
    const out = visible(hostPage(view, detail()).text);
    assert.match(
      out,
      /This is the host's own claim\..*a host whose root account is compromised can send a clean report/,
    );
  });

  it('groups findings by class with the client’s headings, shows what is capped and links the whole report', () => {
    const out = hostPage(view, detail()).text;
    const text = visible(out);
    assert.match(text, /Modified content \(3\) 3 failing/);
    assert.match(text, /Unowned \(no installed package owns it\) \(1\) information/);
    assert.ok(text.indexOf('Modified content') < text.indexOf('Unowned ('), 'client order');
    assert.match(text, /Showing 1 of 3 modified findings; the whole report has them all/);
    assert.match(
      out,
      /href="\/dashboard\/hosts\/web-01\/reports\/3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10.json" download/,
    );
  });

  it('lists unverified packages with their reasons, outdated packages with both versions, the history', () => {
    const text = visible(hostPage(view, detail()).text);
    assert.match(
      text,
      /Unverified packages \(1\) .*docker-ce \(amd64\) 27\.0 unverified foreign-origin \(origin Docker\)/,
    );
    assert.match(
      text,
      /Outdated packages \(2\) .*openssl \(amd64\) 3\.0\.13-1~deb12u1 3\.0\.15-1~deb12u1 curl \(amd64\) 7\.88\.1-10 7\.88\.1-10\+deb12u5 \(the server's unsigned claim\)/,
    );
    assert.match(
      text,
      /History of verdicts .*2026-12-06 09:00 UTC findings 3 2 JSON 2026-12-05 09:00 UTC clean 0 0 JSON/,
    );
  });

  it('renders a finding path and detail with markup as text', () => {
    const out = hostPage(view, detail()).text;
    assert.ok(!out.includes('<script>'), 'no script element from a report');
    assert.ok(out.includes('/usr/bin/&lt;script&gt;window.__pwned=1&lt;/script&gt;'));
  });

  it('offers "forget" to an admin only, as a POST with the CSRF token', () => {
    assert.doesNotMatch(hostPage(view, detail()).text, /Forget this host/);
    const admin = {
      ...view,
      principal: { tokenId: 1, name: 'root', role: 'admin' as const },
      csrf: 'CSRF-TOKEN',
    };
    const out = hostPage(admin, detail()).text;
    assert.match(
      out,
      /<form\s+method="post"\s+action="\/dashboard\/hosts\/web-01\/forget"[^>]*data-confirm="Forget web-01\?/,
    );
    assert.match(out, /name="csrf" value="CSRF-TOKEN"/);
  });

  it('says no findings when the report has none', () => {
    const d = detail();
    const clean = { ...d, latest: { ...d.latest!, findings: [] } };
    assert.match(visible(hostPage(view, clean).text), /no findings every checked file matched/);
  });
});

describe('tokens of a fleet', () => {
  const token = (id: number, o: Partial<TokenRow> = {}): TokenRow => ({
    id,
    name: `t${id}`,
    role: 'reporter',
    host: `host-${String(id).padStart(4, '0')}`,
    createdAt: '2026-12-01T00:00:00.000Z',
    ...o,
  });

  it('the admin page pages reporter tokens apart from the others', () => {
    const admin = { ...view, principal: { tokenId: 1, name: 'root', role: 'admin' as const }, csrf: 'C' };
    const reporters = Array.from({ length: 120 }, (_, i) => token(i + 10));
    const out = adminPage(admin, {
      platforms: [],
      tokens: [token(1, { role: 'admin', name: 'root' })],
      reporters: { items: reporters.slice(50, 100), offset: 50, limit: 50, total: 120, hasMore: true },
      keys: [],
      tracked: { items: [], offset: 0, limit: 50, hasMore: false },
      canSync: false,
    }).text;
    assert.equal((out.match(/action="\/dashboard\/tokens\/\d+\/revoke"/g) ?? []).length, 51);
    assert.match(visible(out), /Reporter tokens \(120\)/);
    assert.match(out, /rel="next" href="\/dashboard\/admin\?reporters=100"/);
    assert.match(out, /rel="prev"\s+href="\/dashboard\/admin"/);
    assert.match(out, /reporter for <a href="\/dashboard\/hosts\/host-0060">host-0060<\/a>/);
    assert.doesNotMatch(out, /host-0009"|host-0110"/, 'only this page of reporter tokens');
  });

  it('a host page lists its reporter tokens for an admin, each revoked back to the host', () => {
    const admin = { ...view, principal: { tokenId: 1, name: 'root', role: 'admin' as const }, csrf: 'C' };
    const out = hostPage(admin, detail(), [token(7, { host: 'web-01' })]).text;
    assert.match(out, /action="\/dashboard\/tokens\/7\/revoke"/);
    assert.match(out, /name="back" value="\/hosts\/web-01"/);
    assert.doesNotMatch(hostPage(view, detail()).text, /Reporter tokens/);
  });
});

describe('hosts behind an upgrade', () => {
  it('lists the hosts with their installed version and links them', () => {
    const out = hostsBehindPage(
      view,
      { platform: 'debian/bookworm/amd64', name: 'openssl', arch: 'amd64', version: '3.0.15-1~deb12u1' },
      {
        items: [
          {
            host: 'web-01',
            version: '3.0.13-1~deb12u1',
            verdict: 'clean',
            lastReportAt: '2026-12-06T11:00:00.000Z',
          },
        ],
        offset: 0,
        limit: 100,
        hasMore: false,
      },
    ).text;
    assert.match(visible(out), /web-01 3\.0\.13-1~deb12u1 clean 1 h ago/);
    assert.match(out, /href="\/dashboard\/hosts\/web-01"/);
  });
});

// --- the plugin's host routes over a fake backend --------------------------------------------------

const SECRETS: Record<string, Principal> = {
  sat_admin: { tokenId: 1, name: 'admin', role: 'admin' },
  sat_reader: { tokenId: 2, name: 'reader', role: 'reader' },
  sat_reporter: { tokenId: 3, name: 'web-01 reporter', role: 'reporter' },
};

interface Calls {
  hosts: HostsRequest[];
  forgotten: string[];
  created: [Role, string, string | undefined][];
}

function fakeBackend(calls: Calls): DashboardBackend {
  const principal = (id: number) => Object.values(SECRETS).find((p) => p.tokenId === id);
  const backend: Partial<DashboardBackend> = {
    authenticate: async (secret) => SECRETS[secret],
    sessionToken: async (id) => {
      const p = principal(id);
      return p === undefined ? undefined : { principal: p, binding: Buffer.alloc(32, id) };
    },
    hosts: async (request) => {
      calls.hosts.push(request);
      return hostsView();
    },
    host: async (name) => (name === 'web-01' ? detail() : undefined),
    hostReport: async (name, id) =>
      name === 'web-01' && id === '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10'
        ? Buffer.from('{"schema":"x"}')
        : undefined,
    forgetHost: async (name) => {
      if (name !== 'web-01') throw new DashboardError(404, `no host ${name}`);
      calls.forgotten.push(name);
      return { reports: 2, tokensRevoked: 1 };
    },
    createToken: async (role, name, host) => {
      calls.created.push([role, name, host]);
      return { id: 9, secret: 'sat_new' };
    },
    platforms: async () => [],
    tokens: async () => [],
    trustedKeys: async () => [],
    trackedPackages: async (p) => ({ items: [], offset: p.offset, limit: p.limit, hasMore: false }),
  };
  return backend as DashboardBackend;
}

async function app(calls: Calls): Promise<FastifyInstance> {
  const a = Fastify();
  await a.register(dashboardPlugin, {
    prefix: '/dashboard',
    backend: fakeBackend(calls),
    sessionSecret: Buffer.alloc(32, 5),
    now: () => NOW,
  });
  await a.ready();
  return a;
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Logs in through the form; the session cookie and a CSRF token from a page. */
async function login(
  a: FastifyInstance,
  secret: string,
): Promise<{ status: number; cookie: string; csrf: string }> {
  const form = await a.inject({ method: 'GET', url: '/dashboard/login' });
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
  const loginCookie = String(form.headers['set-cookie']).split(';')[0] as string;
  const res = await a.inject({
    method: 'POST',
    url: '/dashboard/login',
    headers: { ...FORM, cookie: loginCookie },
    payload: new URLSearchParams({ csrf, token: secret, next: '/dashboard/hosts' }).toString(),
  });
  const cookie =
    ([] as string[])
      .concat(res.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('sysattest_session='))
      ?.split(';')[0] ?? '';
  const page = await a.inject({ method: 'GET', url: '/dashboard/hosts/web-01', headers: { cookie } });
  return { status: res.statusCode, cookie, csrf: /name="csrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '' };
}

describe('host routes', () => {
  const calls = (): Calls => ({ hosts: [], forgotten: [], created: [] });

  it('need a login even when reads are public, as GET /v1/hosts needs a reader token', async () => {
    const c = calls();
    const a = await app(c);
    for (const url of [
      '/dashboard/hosts',
      '/dashboard/hosts/web-01',
      '/dashboard/hosts/web-01/reports/3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10.json',
      '/dashboard/upgrades/hosts?platform=p&name=n&arch=a&version=1',
    ]) {
      const res = await a.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 303, url);
      assert.match(String(res.headers.location), /^\/dashboard\/login\?next=/);
    }
    assert.deepEqual(c.hosts, []);
    const reader = await login(a, 'sat_reader');
    const res = await a.inject({
      method: 'GET',
      url: '/dashboard/hosts',
      headers: { cookie: reader.cookie },
    });
    assert.equal(res.statusCode, 200);
    await a.close();
  });

  it('pass the verdict and platform filters and the cursor, and refuse an unknown verdict', async () => {
    const c = calls();
    const a = await app(c);
    const { cookie } = await login(a, 'sat_reader');
    const ok = await a.inject({
      headers: { cookie },
      method: 'GET',
      url: '/dashboard/hosts?verdict=stale&platform=debian%2Fbookworm%2Farm64&after=host-0099',
    });
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(c.hosts, [
      { verdict: 'stale', platform: 'debian/bookworm/arm64', after: 'host-0099', limit: 100 },
    ]);
    const bad = await a.inject({
      method: 'GET',
      url: '/dashboard/hosts?verdict=%3Cb%3E',
      headers: { cookie },
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.body, /verdict must be one of clean, findings, incomplete, trust-failure, stale/);
    assert.equal(c.hosts.length, 1);
    await a.close();
  });

  it('answer 404 for an unknown host or report, and serve a stored report as a download', async () => {
    const a = await app(calls());
    const headers = { cookie: (await login(a, 'sat_reader')).cookie };
    assert.equal((await a.inject({ method: 'GET', url: '/dashboard/hosts/nope', headers })).statusCode, 404);
    const id = '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10';
    const json = await a.inject({
      method: 'GET',
      url: `/dashboard/hosts/web-01/reports/${id}.json`,
      headers,
    });
    assert.equal(json.statusCode, 200);
    assert.equal(json.body, '{"schema":"x"}');
    assert.match(String(json.headers['content-disposition']), /attachment; filename="web-01_3f1c8a52/);
    assert.equal(
      (await a.inject({ method: 'GET', url: '/dashboard/hosts/web-01/reports/x.json', headers })).statusCode,
      404,
    );
    await a.close();
  });

  it('refuse a reporter token at login: it only sends reports', async () => {
    const a = await app(calls());
    const r = await login(a, 'sat_reporter');
    assert.equal(r.status, 403);
    assert.equal(r.cookie, '');
    await a.close();
  });

  it('forget a host only for an admin session with its CSRF token', async () => {
    const c = calls();
    const a = await app(c);
    const post = (cookie: string, csrf: string) =>
      a.inject({
        method: 'POST',
        url: '/dashboard/hosts/web-01/forget',
        headers: { ...FORM, cookie },
        payload: new URLSearchParams({ csrf }).toString(),
      });
    assert.equal((await post('', 'x')).statusCode, 401);
    const reader = await login(a, 'sat_reader');
    assert.equal((await post(reader.cookie, reader.csrf)).statusCode, 403);
    const admin = await login(a, 'sat_admin');
    assert.equal((await post(admin.cookie, 'A'.repeat(43))).statusCode, 403);
    assert.deepEqual(c.forgotten, []);
    const ok = await post(admin.cookie, admin.csrf);
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/dashboard/hosts');
    assert.deepEqual(c.forgotten, ['web-01']);
    await a.close();
  });

  it('create a reporter token only with a host, and other roles only without one', async () => {
    const c = calls();
    const a = await app(c);
    const admin = await login(a, 'sat_admin');
    const create = (fields: Record<string, string>) =>
      a.inject({
        method: 'POST',
        url: '/dashboard/tokens',
        headers: { ...FORM, cookie: admin.cookie },
        payload: new URLSearchParams({ csrf: admin.csrf, ...fields }).toString(),
      });
    const noHost = await create({ name: 'r', role: 'reporter', host: ' ' });
    assert.equal(noHost.statusCode, 400);
    assert.match(noHost.body, /a reporter token is for one host/);
    assert.equal((await create({ name: 'r', role: 'reader', host: 'web-01' })).statusCode, 400);
    const ok = await create({ name: 'web-01 timer', role: 'reporter', host: 'web-01' });
    assert.equal(ok.statusCode, 200);
    assert.match(ok.body, /sat_new/);
    assert.deepEqual(c.created, [['reporter', 'web-01 timer', 'web-01']]);
    await a.close();
  });

  it('answer 404 "no such token" for a malformed token id to revoke', async () => {
    const a = await app(calls());
    const admin = await login(a, 'sat_admin');
    const res = await a.inject({
      method: 'POST',
      url: '/dashboard/tokens/0x1/revoke',
      headers: { ...FORM, cookie: admin.cookie },
      payload: new URLSearchParams({ csrf: admin.csrf }).toString(),
    });
    assert.equal(res.statusCode, 404);
    assert.match(res.body, /no such token/);
    await a.close();
  });
});
