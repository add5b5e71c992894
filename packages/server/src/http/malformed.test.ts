import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { TEST_DIALECTS, TestGenerator, countRows, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';
import { ERROR_CODES } from './errors.js';

/**
 * The bad-input suite: hundreds of generated malformed requests across every route. Each must get
 * a 4xx with the one error shape (no stack, no 5xx), and the server must still be ready afterwards
 * with nothing written.
 */

const AMD64 = 'debian/bookworm/amd64';
const HASH = 'a'.repeat(64);

type Body = Record<string, unknown>;

interface RouteCase {
  url: string;
  valid: Body;
}

const ROUTES: RouteCase[] = [
  { url: '/v1/manifests', valid: { manifest: 'e30=', signature: 'sig' } },
  { url: '/v1/catalogs', valid: { catalog: 'e30=', signature: 'sig' } },
  { url: '/v1/lookup', valid: { platform: AMD64, items: [{ name: 'jq', version: '1.6', arch: 'amd64' }] } },
  { url: '/v1/reverse-lookup', valid: { sha256: [HASH] } },
  { url: '/v1/jobs/claim', valid: { workerId: 'w1', platforms: [AMD64], max: 1, leaseSeconds: 60 } },
  { url: '/v1/jobs/1/heartbeat', valid: { workerId: 'w1' } },
  { url: '/v1/jobs/1/complete', valid: { workerId: 'w1' } },
  { url: '/v1/jobs/1/fail', valid: { workerId: 'w1', error: 'it broke' } },
  { url: '/v1/admin/tokens', valid: { role: 'reader', name: 'laptop' } },
  { url: '/v1/admin/keys', valid: { armored: '-----BEGIN PGP PUBLIC KEY BLOCK-----' } },
  { url: '/v1/admin/tracked', valid: { platform: AMD64, names: ['jq'], source: 'config' } },
  { url: '/v1/admin/tracked/untrack', valid: { platform: AMD64, names: ['jq'] } },
];

const TRAVERSAL = [
  '../../etc',
  '../../../../etc/passwd',
  '/etc/shadow',
  '..\\..\\windows',
  '%2e%2e%2f',
  'a/../../b',
];
const INJECTION = [
  "'; DROP TABLE manifests; --",
  '" OR 1=1 --',
  "1' UNION SELECT secret_hash FROM tokens --",
  'robert\u0000tables',
  '$(rm -rf /)',
  '<script>alert(1)</script>',
];
const WRONG_TYPES: unknown[] = [null, 0, -1, 1.5, true, [], {}, ['x'], { nested: { deeper: 1 } }];

const RAW_BAD_JSON = [
  '',
  '{',
  '}',
  '[',
  '{"a":',
  '{"a":1}}',
  "{'a':1}",
  '{"a":NaN}',
  '{"a":undefined}',
  '{"a":1,}',
  '\u0000',
  'null',
  'true',
  '42',
  '"a string"',
  '[]',
  '[{"platform":"x"}]',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '['.repeat(100_000),
  '{"a":'.repeat(20_000) + '1' + '}'.repeat(20_000),
  JSON.stringify({ a: JSON.parse('['.repeat(500) + ']'.repeat(500)) }),
  '\uFEFF{"a":1',
  '{"a":"\\ud800"',
];

function malformedRequests(token: string): { label: string; request: InjectOptions }[] {
  const out: { label: string; request: InjectOptions }[] = [];
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const post = (label: string, url: string, payload: string, extra: Record<string, string> = {}) =>
    out.push({ label, request: { method: 'POST', url, headers: { ...headers, ...extra }, payload } });

  for (const route of ROUTES) {
    const { url, valid } = route;
    // Not JSON, or JSON of the wrong shape.
    for (const raw of RAW_BAD_JSON) post(`${url} raw ${JSON.stringify(raw.slice(0, 20))}`, url, raw);
    // Missing fields, one at a time and all at once.
    for (const field of Object.keys(valid)) {
      const body = { ...valid };
      delete body[field];
      if (
        Object.keys(body).length < Object.keys(valid).length &&
        !['max', 'leaseSeconds', 'source'].includes(field)
      ) {
        post(`${url} without ${field}`, url, JSON.stringify(body));
      }
    }
    post(`${url} empty object`, url, '{}');
    // Extra fields.
    for (const extra of ['extra', '__proto__', 'constructor', 'admin']) {
      post(
        `${url} extra ${extra}`,
        url,
        JSON.stringify({ ...valid, [extra]: 1 }).replace('"extra"', `"${extra}"`),
      );
    }
    // Wrong types for every field.
    for (const field of Object.keys(valid)) {
      for (const wrong of WRONG_TYPES) {
        if (typeof valid[field] === typeof wrong && Array.isArray(valid[field]) === Array.isArray(wrong))
          continue;
        post(`${url} ${field}=${JSON.stringify(wrong)}`, url, JSON.stringify({ ...valid, [field]: wrong }));
      }
    }
    // Huge strings in every string field.
    for (const field of Object.keys(valid)) {
      if (typeof valid[field] === 'string') {
        post(`${url} huge ${field}`, url, JSON.stringify({ ...valid, [field]: 'A'.repeat(300_000) + '!' }));
      }
    }
    // Wrong content types.
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
    ]) {
      post(`${url} as ${type}`, url, JSON.stringify(valid), { 'content-type': type });
    }
  }

  // Uploads: invalid base64 and signatures.
  for (const [url, field] of [
    ['/v1/manifests', 'manifest'],
    ['/v1/catalogs', 'catalog'],
  ] as const) {
    for (const bad of [
      'abc',
      'a===',
      '!!!!',
      'YQ==\n',
      ' YQ==',
      'YQ==YQ==',
      'Y Q==',
      '-_-_',
      ...TRAVERSAL,
      ...INJECTION,
    ]) {
      post(`${url} ${field}=${JSON.stringify(bad)}`, url, JSON.stringify({ [field]: bad, signature: 'sig' }));
    }
    for (const sig of [
      'not a signature',
      '-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n',
      ...INJECTION,
    ]) {
      post(
        `${url} signature ${JSON.stringify(sig.slice(0, 20))}`,
        url,
        JSON.stringify({ [field]: 'e30=', signature: sig }),
      );
    }
    post(
      `${url} signature too long`,
      url,
      JSON.stringify({ [field]: 'e30=', signature: 'x'.repeat(70_000) }),
    );
  }

  // Lookup: bad platforms (path tricks, injection), bad items, too many items.
  for (const platform of [
    ...TRAVERSAL,
    ...INJECTION,
    '',
    'debian',
    'debian/bookworm',
    'debian/bookworm/amd64/extra',
    'x'.repeat(201),
  ]) {
    post(
      `lookup platform ${JSON.stringify(platform.slice(0, 20))}`,
      '/v1/lookup',
      JSON.stringify({ platform, items: [] }),
    );
  }
  for (const item of [
    {},
    { name: 'jq' },
    { name: 'jq', version: '1' },
    { name: '', version: '1', arch: 'amd64' },
    { name: 'jq', version: '1', arch: 'amd64', extra: true },
    { name: 'x'.repeat(257), version: '1', arch: 'amd64' },
    { name: 'jq', version: 1, arch: 'amd64' },
    'jq',
    null,
    [],
  ]) {
    post(
      `lookup item ${JSON.stringify(item).slice(0, 30)}`,
      '/v1/lookup',
      JSON.stringify({ platform: AMD64, items: [item] }),
    );
  }
  const tooManyItems = Array.from({ length: 100_001 }, () => ({ name: 'a', version: '1', arch: 'amd64' }));
  post('lookup 100,001 items', '/v1/lookup', JSON.stringify({ platform: AMD64, items: tooManyItems }));

  // Reverse lookup: bad hashes, too many.
  for (const h of [
    'A'.repeat(64),
    'a'.repeat(63),
    'a'.repeat(65),
    'g'.repeat(64),
    '',
    ...TRAVERSAL,
    ...INJECTION,
  ]) {
    post(`reverse ${JSON.stringify(h.slice(0, 20))}`, '/v1/reverse-lookup', JSON.stringify({ sha256: [h] }));
  }
  post('reverse 100,001 hashes', '/v1/reverse-lookup', JSON.stringify({ sha256: Array(100_001).fill(HASH) }));

  // Jobs: claim bounds, bad ids in the path, bad queries.
  for (const claim of [
    { workerId: 'w', platforms: [] },
    { workerId: 'w', platforms: Array(257).fill(AMD64) },
    { workerId: 'w', platforms: [AMD64], max: 0 },
    { workerId: 'w', platforms: [AMD64], max: 1001 },
    { workerId: 'w', platforms: [AMD64], leaseSeconds: 0 },
    { workerId: 'w', platforms: [AMD64], leaseSeconds: 86_401 },
    { workerId: '', platforms: [AMD64] },
    { workerId: 'w'.repeat(201), platforms: [AMD64] },
    ...TRAVERSAL.map((p) => ({ workerId: 'w', platforms: [p] })),
  ]) {
    post(`claim ${JSON.stringify(claim).slice(0, 40)}`, '/v1/jobs/claim', JSON.stringify(claim));
  }
  for (const id of [
    '0',
    '-1',
    'abc',
    '1.5',
    '99999999999999999999',
    '..%2F..%2Fetc',
    '%00',
    "1'%20OR%20'1'='1",
    '1e3',
  ]) {
    for (const action of ['heartbeat', 'complete', 'fail']) {
      post(`job ${id} ${action}`, `/v1/jobs/${id}/${action}`, JSON.stringify({ workerId: 'w', error: 'e' }));
    }
  }
  // Ids in the paths of the admin routes (token 1 is the suite's own: it must survive).
  for (const id of [
    '0',
    '-1',
    'abc',
    '1.5',
    '99999999999999999999',
    '..%2F..%2Fetc',
    '%00',
    "1'%20OR%20'1'='1",
  ]) {
    post(`requeue ${id}`, `/v1/jobs/${id}/requeue`, '{}');
    post(`revoke ${id}`, `/v1/admin/tokens/${id}/revoke`, '{}');
    out.push({
      label: `conflict document ${id}`,
      request: { method: 'GET', url: `/v1/admin/conflicts/${id}/document`, headers },
    });
  }
  for (const fpr of [
    '0',
    'G'.repeat(40),
    'A'.repeat(39),
    'A'.repeat(41),
    '..%2F..%2Fetc',
    "'%20OR%201=1",
    '%00',
  ]) {
    out.push({
      label: `DELETE key ${fpr}`,
      request: { method: 'DELETE', url: `/v1/admin/keys/${fpr}`, headers },
    });
  }
  for (const digest of [
    'A'.repeat(64),
    'a'.repeat(63),
    'a'.repeat(65),
    '..%2F..%2Fetc%2Fpasswd',
    '%00',
    'x',
  ]) {
    out.push({
      label: `GET manifest ${digest.slice(0, 20)}`,
      request: { method: 'GET', url: `/v1/manifests/${digest}`, headers },
    });
  }
  for (const [route, q] of [
    ['/v1/admin/conflicts', 'limit=0'],
    ['/v1/admin/conflicts', 'limit=20000'],
    ['/v1/admin/conflicts', 'limit=x'],
    ['/v1/admin/conflicts', 'extra=1'],
    ['/v1/admin/keys', 'all=maybe'],
    ['/v1/admin/keys', 'all=1'],
    ['/v1/admin/tracked', `platform=${'x'.repeat(300)}`],
    ['/v1/admin/tracked', 'platform=..%2F..%2Fetc'],
    ['/v1/admin/tokens', 'secret=1'],
    ['/v1/keys', 'all=true'],
  ] as const) {
    out.push({
      label: `GET ${route}?${q.slice(0, 20)}`,
      request: { method: 'GET', url: `${route}?${q}`, headers },
    });
  }
  for (const names of [Array(10_001).fill('jq'), ['x'.repeat(257)], [''], [null], 'jq']) {
    post(
      `track ${JSON.stringify(names).slice(0, 30)}`,
      '/v1/admin/tracked',
      JSON.stringify({ platform: AMD64, names }),
    );
  }
  for (const platform of [...TRAVERSAL, ...INJECTION, 'debian']) {
    post(
      `track on ${JSON.stringify(platform.slice(0, 20))}`,
      '/v1/admin/tracked',
      JSON.stringify({ platform, names: ['jq'] }),
    );
  }
  for (const q of [
    'state=exploded',
    'limit=0',
    'limit=-5',
    'limit=abc',
    'afterId=x',
    'extra=1',
    `platform=${'x'.repeat(300)}`,
  ]) {
    out.push({
      label: `GET /v1/jobs?${q.slice(0, 20)}`,
      request: { method: 'GET', url: `/v1/jobs?${q}`, headers },
    });
  }
  // Paths that do not exist, tricks included.
  for (const path of [
    '/v1/../../etc/passwd',
    '/v1/manifests/../../etc',
    '/v2/lookup',
    '/v1/%2e%2e/%2e%2e/etc',
    '/v1/lookup/extra',
  ]) {
    out.push({ label: `GET ${path}`, request: { method: 'GET', url: path, headers } });
  }
  // Authorization header tricks (the route needs a generator).
  for (const authorization of [
    '',
    'Bearer',
    'Bearer ',
    'Basic YTpi',
    `Bearer ${'x'.repeat(500)}`,
    "Bearer ' OR 1=1 --",
    'Bearer sat_forged',
  ]) {
    out.push({
      label: `auth ${JSON.stringify(authorization.slice(0, 20))}`,
      request: {
        method: 'POST',
        url: '/v1/manifests',
        headers: { authorization, 'content-type': 'application/json' },
        payload: JSON.stringify(ROUTES[0]?.valid),
      },
    });
  }
  return out;
}

for (const dialect of TEST_DIALECTS) {
  describe(`HTTP API bad input (${dialect})`, () => {
    let t: TestStore;
    let app: FastifyInstance;
    let token: string;

    before(async () => {
      t = await openTestStore(dialect);
      const gen = await TestGenerator.create();
      await t.store.addTrustedKey(gen.armoredPublicKey);
      token = (await t.store.createToken('admin', 'bad input suite')).secret;
      app = buildApp({ store: t.store });
      await app.ready();
    });
    after(async () => {
      await app.close();
      await t.close();
    });

    it('every malformed request gets a 4xx with the error shape, and the server stays ready', async (ctx) => {
      const cases = malformedRequests(token);
      assert.ok(cases.length >= 200, `only ${cases.length} cases`);
      const failures: string[] = [];
      const statuses = new Map<string, number>();
      for (const { label, request } of cases) {
        const res = await app.inject(request);
        let body: { error?: { code?: string; message?: string } } | undefined;
        try {
          body = JSON.parse(res.body) as typeof body;
        } catch {
          body = undefined;
        }
        const code = body?.error?.code;
        const message = body?.error?.message;
        const ok =
          res.statusCode >= 400 &&
          res.statusCode < 500 &&
          body !== undefined &&
          Object.keys(body).length === 1 &&
          typeof code === 'string' &&
          ERROR_CODES[code as keyof typeof ERROR_CODES] === res.statusCode &&
          typeof message === 'string' &&
          message.length > 0 &&
          message.length <= 600 &&
          !/\n\s+at /.test(message);
        const key = `${res.statusCode} ${code ?? '?'}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (!ok) failures.push(`${label}: ${res.statusCode} ${res.body.slice(0, 200)}`);
      }
      ctx.diagnostic(
        `${cases.length} malformed requests: ${[...statuses].map(([k, n]) => `${k} ×${n}`).join(', ')}`,
      );
      assert.deepEqual(failures, [], `${failures.length} of ${cases.length} requests answered badly`);

      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(ready.statusCode, 200, ready.body);
      const raw = t.raw();
      assert.equal(await countRows(raw, 'manifests'), 0);
      assert.equal(await countRows(raw, 'catalog_snapshots'), 0);
      assert.equal(await countRows(raw, 'jobs'), 0);
      assert.equal(await countRows(raw, 'tracked_packages'), 0);
      assert.equal(await countRows(raw, 'trusted_keys'), 1);
      assert.equal((await t.store.listTokens()).length, 1);
      assert.equal((await t.store.listTokens())[0]?.revokedAt, undefined);
    });

    it('injection and traversal strings in package names are data, not commands', async () => {
      for (const name of [...TRAVERSAL, ...INJECTION]) {
        const res = await app.inject({
          method: 'POST',
          url: '/v1/lookup',
          payload: { platform: AMD64, items: [{ name, version: name, arch: 'amd64' }] },
        });
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json<{ items: { status: string }[] }>().items[0]?.status, 'unknown-platform');
      }
      const tokens = await t.store.listTokens();
      assert.equal(tokens.length, 1);
      assert.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);
    });
  });
}
