import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { TEST_DIALECTS, TestGenerator, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';
import { ServerMetrics } from './metrics.js';

const AMD64 = 'debian/bookworm/amd64';
const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const lookup = { platform: AMD64, items: [{ name: 'jq', version: '1.6-2.1', arch: 'amd64' }] };

/** Parses Prometheus text into sample line → value, checking every line is well formed. */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') {
        assert.match(meta[3] ?? '', /^(counter|gauge|histogram)$/, line);
        assert.ok(!typed.has(meta[2] ?? ''), `one family per name: ${line}`);
        typed.add(meta[2] ?? '');
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$/.exec(
      line,
    );
    assert.ok(m, `not a sample line: ${JSON.stringify(line)}`);
    const family = (m[1] ?? '').replace(/_(bucket|sum|count)$/, '');
    assert.ok(typed.has(m[1] ?? '') || typed.has(family), `no TYPE before ${line}`);
    samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

for (const dialect of TEST_DIALECTS) {
  describe(`HTTP metrics and rate limits (${dialect})`, () => {
    let t: TestStore;
    let reader: string;
    let reader2: string;

    before(async () => {
      t = await openTestStore(dialect);
      reader = (await t.store.createToken('reader', 'one')).secret;
      reader2 = (await t.store.createToken('reader', 'two')).secret;
    });
    after(async () => t.close());

    it('/metrics: requests by route, method and status class; latency histogram; queue and database gauges', async () => {
      const gen = await TestGenerator.create();
      await t.store.ingestCatalog(
        await gen.catalog(AMD64, '2026-11-20T00:00:00Z', [{ name: 'jq', version: '1.6-2.1' }]),
      );
      let now = Date.parse('2026-11-25T12:00:00Z');
      const metrics = new ServerMetrics(() => now);
      const app: FastifyInstance = buildApp({
        store: t.store,
        metrics,
        rateLimit: false,
        statsCacheSeconds: 0,
      });
      try {
        for (let i = 0; i < 3; i++) {
          assert.equal(
            (await app.inject({ method: 'POST', url: '/v1/lookup', payload: lookup })).statusCode,
            200,
          );
        }
        assert.equal(
          (await app.inject({ method: 'POST', url: '/v1/lookup', payload: { platform: AMD64 } })).statusCode,
          400,
        );
        assert.equal((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode, 404);
        now += 5000;
        const res = await app.inject({ method: 'GET', url: '/metrics' });
        assert.equal(res.statusCode, 200, res.body);
        assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
        const s = parseExposition(res.body);
        assert.equal(
          s.get('sysattest_http_requests_total{route="/v1/lookup",method="POST",status="2xx"}'),
          3,
        );
        assert.equal(
          s.get('sysattest_http_requests_total{route="/v1/lookup",method="POST",status="4xx"}'),
          1,
        );
        assert.equal(s.get('sysattest_http_requests_total{route="unmatched",method="GET",status="4xx"}'), 1);
        assert.equal(s.get('sysattest_http_errors_total'), 2);
        assert.equal(s.get('sysattest_http_request_duration_seconds_count'), 5);
        assert.equal(s.get('sysattest_http_request_duration_seconds_bucket{le="+Inf"}'), 5);
        assert.equal(s.get('sysattest_http_rate_limited_total'), 0);
        // The lookup queued one job (jq is in the catalog without a manifest).
        assert.equal(s.get(`sysattest_jobs{platform="${AMD64}",state="pending"}`), 1);
        assert.ok((s.get('sysattest_jobs_oldest_due_age_seconds') ?? -1) >= 0);
        assert.equal(s.get(`sysattest_catalog_snapshots{platform="${AMD64}"}`), 1);
        assert.ok((s.get('sysattest_database_bytes') ?? 0) > 0);
        assert.equal(s.get('sysattest_process_uptime_seconds'), 5);
        // The standard process and Node runtime metrics, by prom-client's names, beside ours.
        assert.ok((s.get('process_resident_memory_bytes') ?? 0) > 10 * 1024 * 1024);
        assert.ok((s.get('nodejs_heap_size_used_bytes') ?? 0) > 0);
        assert.ok((s.get('process_cpu_seconds_total') ?? 0) > 0);
        assert.ok((s.get('process_open_fds') ?? 0) > 0);
        assert.ok(s.has('nodejs_eventloop_lag_seconds'));
        const started = s.get('process_start_time_seconds') ?? 0;
        assert.ok(Math.abs(started - (Date.now() / 1000 - process.uptime())) < 5, `started ${started}`);

        const snap = metrics.snapshot(60);
        assert.equal(snap.requests, 6); // the five above and the /metrics scrape
        assert.equal(snap.errors, 2);
        assert.equal(snap.errorRate, Math.round((2 / 6) * 10_000) / 10_000);
        assert.equal(snap.uptimeSeconds, 5);
        assert.ok(snap.latencyMs.p50 !== undefined && snap.latencyMs.p99 !== undefined);
        assert.ok(snap.latencyMs.p50 <= snap.latencyMs.p99);
        // Out of the window, requests no longer count; totals do.
        now += 120_000;
        const later = metrics.snapshot(60);
        assert.equal(later.requests, 0);
        assert.deepEqual(later.latencyMs, {});
        assert.equal(later.totalRequests, 6);
      } finally {
        await app.close();
      }
    });

    it('rate limit per token, then per IP: 429 in the error shape with Retry-After; health probes are not limited', async () => {
      const metrics = new ServerMetrics();
      const app = buildApp({ store: t.store, metrics, rateLimit: { max: 3, windowSeconds: 60 } });
      try {
        const post = (headers: Record<string, string> = {}) =>
          app.inject({ method: 'POST', url: '/v1/lookup', payload: lookup, headers });
        for (let i = 0; i < 3; i++) assert.equal((await post(auth(reader))).statusCode, 200);
        const limited = await post(auth(reader));
        assert.equal(limited.statusCode, 429, limited.body);
        const body = limited.json<{ error: { code: string; message: string } }>();
        assert.deepEqual(Object.keys(body), ['error']);
        assert.equal(body.error.code, 'TOO_MANY_REQUESTS');
        assert.match(body.error.message, /at most 3 requests per 60 s/);
        const retryAfter = Number(limited.headers['retry-after']);
        assert.ok(retryAfter >= 1 && retryAfter <= 60, String(limited.headers['retry-after']));
        // Another token has its own budget; so does the address without a token.
        assert.equal((await post(auth(reader2))).statusCode, 200);
        for (let i = 0; i < 3; i++) assert.equal((await post()).statusCode, 200);
        assert.equal((await post()).statusCode, 429);
        // Guessing tokens counts against the address: refused by the limit, not answered 401.
        assert.equal((await post(auth('sat_guess'))).statusCode, 429);
        // Probes and scrapes are never limited; other public pages and unknown URLs are, per address.
        for (let i = 0; i < 5; i++) {
          assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
          assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
          assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 200);
        }
        const nowhere = await app.inject({ method: 'GET', url: '/no/such/page' });
        assert.equal(nowhere.statusCode, 429, nowhere.body);
        assert.equal(metrics.snapshot().rateLimited, 4);
      } finally {
        await app.close();
      }
    });
  });
}
