/**
 * The access log, through the app as a client reaches it: one line per request, with the route,
 * status, duration and the token's name and role; the bearer token and the dashboard's session
 * cookie never written anywhere in the log, at any level.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '@sysattest/core/log';
import { openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';

describe('the access log', () => {
  let t: TestStore;
  let secret: string;
  const lines: string[] = [];
  let app: ReturnType<typeof buildApp>;

  before(async () => {
    t = await openTestStore('sqlite');
    secret = (await t.store.createToken('reader', 'nightly-ci')).secret;
    // trace: whatever fastify or a plugin logs, the secrets must not be in it.
    const logger = createLogger({
      service: 'sysattest-server',
      level: 'trace',
      format: 'json',
      destination: { write: (s) => lines.push(s) },
    });
    app = buildApp({ store: t.store, logger, readsNeedToken: true, rateLimit: false });
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  const accessLines = () =>
    lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'request');

  it('writes one line per request: method, route, path, status, duration, token name and role', async () => {
    lines.length = 0;
    const cookie = 'sysattest_session=v2.c2Vzc2lvbi1jb29raWUtc2VjcmV0.abcdef0123456789';
    const ok = await app.inject({
      method: 'GET',
      url: '/v1/keys',
      headers: { authorization: `Bearer ${secret}`, cookie },
    });
    assert.equal(ok.statusCode, 200, ok.body);
    const anonymous = await app.inject({ method: 'GET', url: '/v1/keys' });
    assert.equal(anonymous.statusCode, 401);
    const wrong = await app.inject({
      method: 'GET',
      url: '/v1/keys',
      headers: { authorization: 'Bearer not-a-token-but-still-secret' },
    });
    assert.equal(wrong.statusCode, 401);
    const dashboard = await app.inject({ method: 'GET', url: '/dashboard/', headers: { cookie } });
    assert.ok(dashboard.statusCode < 500);

    const access = accessLines();
    assert.equal(access.length, 4, lines.join(''));
    const [first, second, third, fourth] = access;
    assert.deepEqual(
      {
        ...first,
        time: undefined,
        pid: undefined,
        hostname: undefined,
        reqId: undefined,
        durationMs: undefined,
      },
      {
        level: 'info',
        time: undefined,
        pid: undefined,
        hostname: undefined,
        reqId: undefined,
        service: 'sysattest-server',
        event: 'request',
        method: 'GET',
        route: '/v1/keys',
        path: '/v1/keys',
        status: 200,
        durationMs: undefined,
        ip: '127.0.0.1',
        token: { name: 'nightly-ci', role: 'reader' },
        msg: `GET /v1/keys 200 ${String(first?.durationMs)} ms`,
      },
    );
    assert.equal(typeof first?.durationMs, 'number');
    assert.ok((first?.durationMs as number) >= 0);
    assert.equal(second?.status, 401);
    assert.equal(second?.token, undefined, 'no token, none named');
    assert.equal(third?.status, 401);
    assert.equal(third?.token, undefined, 'a refused token is not named');
    assert.equal(fourth?.path, '/dashboard/');

    const all = lines.join('');
    for (const value of [secret, 'not-a-token-but-still-secret', 'c2Vzc2lvbi1jb29raWUtc2VjcmV0'])
      assert.ok(!all.includes(value), `${value} is nowhere in the log`);
  });

  it('names a URL no route serves "unmatched", by its path only', async () => {
    lines.length = 0;
    const res = await app.inject({ method: 'GET', url: `/no/such/route?token=${secret}` });
    assert.equal(res.statusCode, 404);
    const [line] = accessLines();
    assert.equal(line?.route, 'unmatched');
    assert.equal(line?.path, '/no/such/route');
    assert.ok(!lines.join('').includes(secret), 'the query string is not written');
  });
});
