import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { HostDetailAnswer, HostListAnswer, ReportReceipt, VerifyReport } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { StoreDashboardBackend } from '../dashboard/store-backend.js';
import { TEST_DIALECTS, countRows, openTestStore, type TestStore } from '../testkit/store.js';
import { fleetPackages, makeReport, reportWithVerdict } from '../testkit/hosts.js';
import { buildApp } from './app.js';
import { ERROR_CODES } from './errors.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function assertError(res: { statusCode: number; body: string }, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  assert.equal(body.error.code, code);
  assert.equal(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES], status);
}

const upload = (report: VerifyReport, over: Record<string, unknown> = {}) => ({
  reportId: randomUUID(),
  hostname: 'whatever-the-host-says',
  report,
  ...over,
});

for (const dialect of TEST_DIALECTS) {
  describe(`HTTP hosts and reports (${dialect})`, () => {
    let t: TestStore;
    let app: FastifyInstance;
    let admin: string;
    let reader: string;
    let generator: string;
    let webA: { id: number; secret: string };
    let webB: { id: number; secret: string };

    before(async () => {
      t = await openTestStore(dialect, { hosts: { keep: 2 } });
      admin = (await t.store.createToken('admin', 'operator')).secret;
      reader = (await t.store.createToken('reader', 'alerting')).secret;
      generator = (await t.store.createToken('generator', 'worker')).secret;
      webA = await t.store.createToken('reporter', 'web-a timer', 'web-a');
      webB = await t.store.createToken('reporter', 'web-b timer', 'web-b');
      app = buildApp({ store: t.store, rateLimit: false, reportBodyLimit: 256 * 1024 });
      await app.ready();
    });
    after(async () => {
      await app.close();
      await t.close();
    });

    const post = (token: string | undefined, payload: unknown) =>
      app.inject({
        method: 'POST',
        url: '/v1/reports',
        ...(token === undefined ? {} : { headers: auth(token) }),
        payload: payload as object,
      });
    const history = async (host: string) => (await t.store.hostDetail(host))?.history ?? [];

    it('a report lands under the token’s host, whatever the body says; a resend answers 200, stored once', async () => {
      const body = upload(reportWithVerdict('findings', fleetPackages(4)), { hostname: 'web-b' });
      const first = await post(webA.secret, body);
      assert.equal(first.statusCode, 201, first.body);
      const receipt = first.json<ReportReceipt>();
      assert.deepEqual(
        [receipt.host, receipt.reportId, receipt.verdict],
        ['web-a', body.reportId, 'findings'],
      );
      const again = await post(webA.secret, body);
      assert.equal(again.statusCode, 200, again.body);
      assert.deepEqual(again.json(), receipt);
      assert.equal((await history('web-a')).length, 1);
      assert.deepEqual(await history('web-b'), []);
      // The same reportId from another host is that host's own report.
      assert.equal((await post(webB.secret, body)).statusCode, 201);
      assert.equal((await history('web-b')).length, 1);
    });

    it('the same report sent five times at once is stored once: one 201, four 200, one answer', async () => {
      const body = upload(reportWithVerdict('clean', fleetPackages(50)));
      const answers = await Promise.all(Array.from({ length: 5 }, () => post(webB.secret, body)));
      assert.deepEqual(answers.map((a) => a.statusCode).sort(), [200, 200, 200, 200, 201]);
      assert.equal(new Set(answers.map((a) => a.body)).size, 1);
      assert.equal((await history('web-b')).filter((h) => h.reportId === body.reportId).length, 1);
    });

    it('a reporter token sends reports and nothing else; other tokens cannot send reports', async () => {
      const refused: [string, string, unknown?][] = [
        ['GET', '/v1/hosts'],
        ['GET', '/v1/hosts/web-a'],
        ['GET', `/v1/hosts/web-a/reports/${randomUUID()}`],
        ['DELETE', '/v1/admin/hosts/web-b'],
        ['POST', '/v1/lookup', { platform: 'debian/bookworm/amd64', items: [] }],
        ['POST', '/v1/reverse-lookup', { sha256: [] }],
        ['GET', `/v1/manifests/${'a'.repeat(64)}`],
        ['POST', '/v1/manifests', { manifest: '', signature: 'x' }],
        ['POST', '/v1/jobs/claim', { workerId: 'w', platforms: ['debian/bookworm/amd64'] }],
        ['GET', '/v1/jobs'],
        ['POST', '/v1/jobs/1/requeue'],
        ['GET', '/v1/keys'],
        ['POST', '/v1/admin/tokens', { role: 'reporter', name: 'x', host: 'web-b' }],
        ['GET', '/metrics'],
      ];
      for (const [method, url, payload] of refused) {
        const res = await app.inject({
          method: method as 'GET',
          url,
          headers: auth(webA.secret),
          ...(payload === undefined ? {} : { payload: payload as object }),
        });
        assertError(res, 403, 'FORBIDDEN');
      }
      const report = reportWithVerdict('clean', fleetPackages(2));
      assertError(await post(undefined, upload(report)), 401, 'UNAUTHORIZED');
      for (const token of [reader, generator, admin])
        assertError(await post(token, upload(report)), 403, 'FORBIDDEN');
      assert.equal(await t.store.authenticate(webA.secret).then((x) => x?.host), 'web-a');
      // Nor can it log in to the dashboard.
      assert.equal(await new StoreDashboardBackend(t.store).authenticate(webA.secret), undefined);
      assert.equal(await countRows(t.raw(), 'tokens'), 5);
    });

    it('refuses a malformed, inconsistent or oversized report with a coded error, and stores nothing', async () => {
      const before = await countRows(t.raw(), 'host_reports');
      const good = reportWithVerdict('clean', fleetPackages(3));
      const bad: unknown[] = [
        { ...upload(good), extra: true },
        upload(good, { reportId: 'not-a-uuid' }),
        upload(good, { reportId: randomUUID().toUpperCase() }),
        upload({ ...good, schemaVersion: 2 } as unknown as VerifyReport),
        upload({ ...good, summary: { ...good.summary, failures: 5 } }),
        upload({
          ...good,
          packages: [...good.packages, { ...good.packages[0], status: 'fine' }],
        } as VerifyReport),
        upload(
          makeReport(fleetPackages(1), [
            { class: 'modified', package: 'p', arch: 'a', detail: 'x'.repeat(9000), failure: true },
          ]),
        ),
        { reportId: randomUUID(), hostname: 'x' },
      ];
      for (const payload of bad) assertError(await post(webA.secret, payload), 400, 'BAD_REQUEST');
      const notJson = await app.inject({
        method: 'POST',
        url: '/v1/reports',
        headers: { ...auth(webA.secret), 'content-type': 'application/json' },
        payload: '{"reportId": ',
      });
      assertError(notJson, 400, 'BAD_REQUEST');
      // Over the 256 KiB cap this app was given.
      assertError(await post(webA.secret, upload(makeReport(fleetPackages(3000)))), 413, 'PAYLOAD_TOO_LARGE');
      assert.equal(await countRows(t.raw(), 'host_reports'), before);
    });

    it('fields the protocol does not know are not stored', async () => {
      const report = { ...reportWithVerdict('clean', fleetPackages(2)), smuggled: 'x'.repeat(1000) };
      const body = upload(report);
      assert.equal((await post(webB.secret, body)).statusCode, 201);
      const stored = await app.inject({
        method: 'GET',
        url: `/v1/hosts/web-b/reports/${body.reportId}`,
        headers: auth(reader),
      });
      assert.equal(stored.statusCode, 200, stored.body);
      assert.equal('smuggled' in stored.json<Record<string, unknown>>(), false);
      assert.deepEqual(stored.json(), reportWithVerdict('clean', fleetPackages(2)));
    });

    it('keeps the latest reports only (keep 2 here), newest first', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const body = upload(reportWithVerdict(i === 2 ? 'incomplete' : 'clean', fleetPackages(2)));
        assert.equal((await post(webB.secret, body)).statusCode, 201);
        ids.push(body.reportId);
        t.clock.advance(60);
      }
      const res = await app.inject({ method: 'GET', url: '/v1/hosts/web-b', headers: auth(reader) });
      assert.equal(res.statusCode, 200, res.body);
      const detail = res.json<HostDetailAnswer>();
      assert.deepEqual(
        detail.history.map((h) => h.reportId),
        [ids[2], ids[1]],
      );
      assert.equal(detail.host.verdict, 'incomplete');
    });

    it('lists hosts for scripts: filtered by verdict, paged by cursor, 400 on a bad filter', async () => {
      const list = async (query: string) => {
        const res = await app.inject({ method: 'GET', url: `/v1/hosts${query}`, headers: auth(reader) });
        assert.equal(res.statusCode, 200, res.body);
        return res.json<HostListAnswer>();
      };
      const all = await list('');
      assert.deepEqual(
        all.hosts.map((h) => [h.name, h.verdict]),
        [
          ['web-a', 'findings'],
          ['web-b', 'incomplete'],
        ],
      );
      const first = await list('?limit=1');
      assert.equal(first.next, 'web-a');
      assert.deepEqual(
        (await list(`?limit=1&after=${first.next}`)).hosts.map((h) => h.name),
        ['web-b'],
      );
      assert.deepEqual(
        (await list('?verdict=findings')).hosts.map((h) => h.name),
        ['web-a'],
      );
      for (const q of ['?verdict=dirty', '?limit=0', '?limit=abc', '?nope=1']) {
        assertError(
          await app.inject({ method: 'GET', url: `/v1/hosts${q}`, headers: auth(reader) }),
          400,
          'BAD_REQUEST',
        );
      }
      assertError(await app.inject({ method: 'GET', url: '/v1/hosts' }), 401, 'UNAUTHORIZED');
      assertError(
        await app.inject({ method: 'GET', url: '/v1/hosts/nobody', headers: auth(reader) }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/hosts/..%2Fx', headers: auth(reader) }),
        400,
        'BAD_REQUEST',
      );
    });

    it('the metrics count hosts by verdict, stale included', async () => {
      const scrape = async () =>
        (await app.inject({ method: 'GET', url: '/metrics', headers: auth(reader) })).body;
      assert.match(await scrape(), /^sysattest_hosts\{verdict="findings"\} 1$/m);
      assert.match(await scrape(), /^sysattest_hosts\{verdict="stale"\} 0$/m);
      t.clock.advance(49 * 3600);
      // A fresh app: /metrics caches database figures for a few seconds.
      const later = buildApp({ store: t.store, rateLimit: false });
      try {
        const body = (await later.inject({ method: 'GET', url: '/metrics', headers: auth(reader) })).body;
        assert.match(body, /^sysattest_hosts\{verdict="stale"\} 2$/m);
        assert.match(body, /^sysattest_hosts\{verdict="clean"\} 0$/m);
      } finally {
        await later.close();
      }
    });

    it('an admin forgets a host: its reports go, its tokens stop working', async () => {
      assertError(
        await app.inject({ method: 'DELETE', url: '/v1/admin/hosts/web-a', headers: auth(reader) }),
        403,
        'FORBIDDEN',
      );
      const res = await app.inject({ method: 'DELETE', url: '/v1/admin/hosts/web-a', headers: auth(admin) });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { host: 'web-a', reports: 1, tokensRevoked: 1 });
      assertError(
        await post(webA.secret, upload(reportWithVerdict('clean', fleetPackages(1)))),
        401,
        'UNAUTHORIZED',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/hosts/web-a', headers: auth(reader) }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'DELETE', url: '/v1/admin/hosts/web-a', headers: auth(admin) }),
        404,
        'NOT_FOUND',
      );
    });

    it('admins make reporter tokens bound to a host over the API; a reporter without a host is refused', async () => {
      const made = await app.inject({
        method: 'POST',
        url: '/v1/admin/tokens',
        headers: auth(admin),
        payload: { role: 'reporter', name: 'db timer', host: 'db-01' },
      });
      assert.equal(made.statusCode, 201, made.body);
      assert.equal(made.json<{ token: { host: string } }>().token.host, 'db-01');
      for (const payload of [
        { role: 'reporter', name: 'no host' },
        { role: 'reader', name: 'hosted', host: 'db-01' },
        { role: 'reporter', name: 'bad', host: '../db' },
      ]) {
        assertError(
          await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: auth(admin), payload }),
          400,
          'BAD_REQUEST',
        );
      }
    });
  });
}
