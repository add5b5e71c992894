import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { TEST_DIALECTS, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';

interface Operation {
  summary?: string;
  'x-sysattest-access'?: string;
  security?: unknown[];
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

/** Every route fastify serves, from its own route tree: [path in OpenAPI form, method]. */
function servedRoutes(app: FastifyInstance): [string, string][] {
  const out: [string, string][] = [];
  const stack: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    const at = line.indexOf('── ');
    if (at < 0) continue;
    const m = /^(\S+) \(([A-Z, ]+)\)$/.exec(line.slice(at + 3));
    if (!m) continue;
    const depth = Math.floor((at - 1) / 4);
    stack.length = depth;
    const full = (stack[depth - 1] ?? '') + (m[1] ?? '');
    stack[depth] = full;
    for (const method of (m[2] ?? '').split(', ')) {
      if (method === 'HEAD') continue;
      out.push([full.replace(/:([A-Za-z]+)/g, '{$1}'), method.toLowerCase()]);
    }
  }
  return out;
}

describe('OpenAPI document', () => {
  let t: TestStore;
  let app: FastifyInstance;

  before(async () => {
    t = await openTestStore(TEST_DIALECTS[0] ?? 'sqlite');
    app = buildApp({ store: t.store });
    await app.ready();
  });
  after(async () => {
    await app.close();
    await t.close();
  });

  it('describes every route the server serves, with who may call it and its answers', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
    assert.equal(res.statusCode, 200, res.body);
    const doc = res.json<{ openapi: string; paths: Record<string, Record<string, Operation>> }>();
    assert.equal(doc.openapi, '3.1.0');
    const routes = servedRoutes(app);
    assert.ok(routes.length >= 25, `only ${routes.length} routes found`);
    const undocumented: string[] = [];
    for (const [path, method] of routes) {
      if (path === '/v1/openapi.json') continue;
      const api = path.startsWith('/v1/') || ['/healthz', '/readyz', '/metrics'].includes(path);
      // The dashboard's HTML pages are not part of the API and are not described.
      if (!api) {
        assert.equal(doc.paths[path], undefined, `the page ${path} is described as an API route`);
        continue;
      }
      const op = doc.paths[path]?.[method];
      assert.ok(op, `${method} ${path} is served but not in the document`);
      const ok = Object.entries(op.responses).find(([status]) => /^2\d\d$/.test(status));
      const schema = ok?.[1].content && Object.values(ok[1].content)[0]?.schema;
      if (!op.summary || !op['x-sysattest-access'] || schema === undefined)
        undocumented.push(`${method} ${path}`);
      assert.ok(op.responses.default, `${method} ${path} has no error answer`);
      if (!['public', 'read'].includes(op['x-sysattest-access'] ?? '')) {
        assert.deepEqual(op.security, [{ bearer: [] }], `${method} ${path} needs a token but says not`);
      }
    }
    assert.deepEqual(undocumented, []);
    // And nothing is documented that is not served.
    const served = new Set(routes.map(([p, m]) => `${m} ${p}`));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const twin = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
        assert.ok(served.has(`${method} ${path}`) || served.has(`${method} ${twin}`), `${method} ${path}`);
      }
    }
    for (const [path, method, access] of [
      ['/v1/admin/tokens', 'post', 'admin'],
      ['/v1/jobs/{id}/requeue', 'post', 'admin'],
      ['/v1/manifests', 'post', 'generator'],
      ['/v1/lookup', 'post', 'read'],
      ['/v1/keys', 'get', 'read'],
      ['/v1/catalogs/{digest}', 'get', 'read'],
      ['/healthz', 'get', 'public'],
    ] as const) {
      assert.equal(doc.paths[path]?.[method]?.['x-sysattest-access'], access, `${method} ${path}`);
    }
  });
});
