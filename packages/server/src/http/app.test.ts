import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { signCatalog, signManifest, verifyCatalog, verifyManifest, type Manifest } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { Store } from '../store/index.js';
import { TEST_DIALECTS, TestGenerator, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';
import { ERROR_CODES } from './errors.js';

const AMD64 = 'debian/bookworm/amd64';
const T1 = '2026-11-20T00:00:00Z';

interface Tokens {
  admin: string;
  generator: string;
  reader: string;
}

async function makeTokens(store: Store): Promise<Tokens> {
  return {
    admin: (await store.createToken('admin', 'test admin')).secret,
    generator: (await store.createToken('generator', 'test generator')).secret,
    reader: (await store.createToken('reader', 'test reader')).secret,
  };
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

async function signedManifest(gen: TestGenerator, content: Manifest) {
  const s = await signManifest(content, gen.key);
  return { manifest: Buffer.from(s.bytes).toString('base64'), signature: s.signature };
}

function assertError(res: { statusCode: number; body: string }, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code);
  assert.equal(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES], status);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
}

for (const dialect of TEST_DIALECTS) {
  describe(`HTTP API (${dialect})`, () => {
    let gen: TestGenerator;
    let other: TestGenerator;
    let t: TestStore;
    let app: FastifyInstance;
    let tokens: Tokens;

    before(async () => {
      gen = await TestGenerator.create();
      other = await TestGenerator.create('an unpinned generator');
      t = await openTestStore(dialect);
      await t.store.addTrustedKey(gen.armoredPublicKey);
      tokens = await makeTokens(t.store);
      app = buildApp({ store: t.store });
      await app.ready();
    });
    after(async () => {
      await app.close();
      await t.close();
    });

    it('serves an OpenAPI document listing every route', async () => {
      const res = await app.inject({ method: 'GET', url: '/v1/openapi.json' });
      assert.equal(res.statusCode, 200, res.body);
      const doc = res.json<{ openapi: string; paths: Record<string, Record<string, unknown>> }>();
      assert.equal(doc.openapi, '3.1.0');
      for (const [path, method] of [
        ['/v1/manifests', 'post'],
        ['/v1/catalogs', 'post'],
        ['/v1/lookup', 'post'],
        ['/v1/reverse-lookup', 'post'],
        ['/v1/jobs', 'get'],
        ['/v1/jobs/claim', 'post'],
        ['/v1/jobs/{id}/heartbeat', 'post'],
        ['/v1/jobs/{id}/complete', 'post'],
        ['/v1/jobs/{id}/fail', 'post'],
        ['/healthz', 'get'],
        ['/readyz', 'get'],
      ] as const) {
        assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
      }
    });

    it('answers /healthz and /readyz', async () => {
      const h = await app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(h.statusCode, 200);
      const r = await app.inject({ method: 'GET', url: '/readyz' });
      assert.equal(r.statusCode, 200, r.body);
      assert.equal(r.json<{ status: string }>().status, 'ready');
    });

    it('manifest upload: 401 without token, 403 reader, 201 generator, 200 again, 409 other bytes, 422 unpinned', async () => {
      const body = await signedManifest(gen, gen.manifestContent(AMD64, { name: 'jq', version: '1.6-2.1' }));
      const post = (payload: unknown, token?: string) =>
        app.inject({
          method: 'POST',
          url: '/v1/manifests',
          payload: payload as object,
          ...(token === undefined ? {} : { headers: auth(token) }),
        });
      assertError(await post(body), 401, 'UNAUTHORIZED');
      assertError(await post(body, 'sat_not-a-real-token'), 401, 'UNAUTHORIZED');
      assertError(await post(body, tokens.reader), 403, 'FORBIDDEN');
      const first = await post(body, tokens.generator);
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.json<{ outcome: string }>().outcome, 'stored');
      const again = await post(body, tokens.generator);
      assert.equal(again.statusCode, 200, again.body);
      assert.equal(again.json<{ outcome: string }>().outcome, 'duplicate');
      // An admin may upload too (admin ⊇ generator): still a duplicate.
      assert.equal((await post(body, tokens.admin)).statusCode, 200);

      const differing = await signedManifest(
        gen,
        gen.manifestContent(AMD64, { name: 'jq', version: '1.6-2.1' }, [
          { path: '/usr/bin/jq', content: 'x' },
        ]),
      );
      assertError(await post(differing, tokens.generator), 409, 'CONFLICT');
      assert.equal((await t.store.listConflicts()).length, 1);

      const unpinned = await signedManifest(
        other,
        other.manifestContent(AMD64, { name: 'curl', version: '7.88' }),
      );
      assertError(await post(unpinned, tokens.generator), 422, 'BAD_SIGNATURE');
      // Signature of other bytes.
      assertError(
        await post({ ...body, signature: unpinned.signature }, tokens.generator),
        422,
        'BAD_SIGNATURE',
      );
      assert.equal(
        await t.store.getManifest({ platform: AMD64, name: 'curl', version: '7.88', arch: 'amd64' }),
        undefined,
      );
    });

    it('signed bytes that are not a valid, canonical manifest or catalog: 422 INVALID_DOCUMENT', async () => {
      const good = gen.manifestContent(AMD64, { name: 'bad', version: '1' });
      const documents = [
        '{"not":"a manifest"}',
        'not json at all',
        JSON.stringify(good, null, 2), // valid content, but not the canonical bytes
        JSON.stringify({ ...good, schemaVersion: 99 }),
      ];
      for (const text of documents) {
        const bytes = Buffer.from(text);
        const signature = await gen.key.sign(bytes);
        for (const [url, field] of [
          ['/v1/manifests', 'manifest'],
          ['/v1/catalogs', 'catalog'],
        ] as const) {
          const res = await app.inject({
            method: 'POST',
            url,
            headers: auth(tokens.generator),
            payload: { [field]: bytes.toString('base64'), signature },
          });
          assertError(res, 422, 'INVALID_DOCUMENT');
        }
      }
    });

    it('catalog upload, then lookup answers ok (bytes that verify), pending, not-in-catalog, unknown-platform', async () => {
      const cat = await gen.catalog(AMD64, T1, [
        { name: 'jq', version: '1.6-2.1' },
        { name: 'bash', version: '5.2.15-2+b2' },
      ]);
      const s = await signCatalog(cat.content, gen.key);
      const payload = { catalog: Buffer.from(s.bytes).toString('base64'), signature: s.signature };
      assertError(await app.inject({ method: 'POST', url: '/v1/catalogs', payload }), 401, 'UNAUTHORIZED');
      assertError(
        await app.inject({ method: 'POST', url: '/v1/catalogs', payload, headers: auth(tokens.reader) }),
        403,
        'FORBIDDEN',
      );
      const up = await app.inject({
        method: 'POST',
        url: '/v1/catalogs',
        payload,
        headers: auth(tokens.generator),
      });
      assert.equal(up.statusCode, 201, up.body);
      const dup = await app.inject({
        method: 'POST',
        url: '/v1/catalogs',
        payload,
        headers: auth(tokens.generator),
      });
      assert.equal(dup.statusCode, 200, dup.body);
      assert.equal(dup.json<{ duplicate: boolean }>().duplicate, true);
      // Still verifies with stock tools' inputs.
      await verifyCatalog(s.bytes, s.signature, gen.keyring);
      // The stored snapshot is served byte for byte by its digest, for clients to check `outdated`.
      const digest = up.json<{ snapshot: { digest: string } }>().snapshot.digest;
      const served = await app.inject({ method: 'GET', url: `/v1/catalogs/${digest}` });
      assert.equal(served.statusCode, 200, served.body);
      const snapshot = served.json<{ catalog: string; signature: string; platform: string }>();
      assert.equal(snapshot.platform, AMD64);
      assert.deepEqual(Buffer.from(snapshot.catalog, 'base64'), Buffer.from(s.bytes));
      await verifyCatalog(Buffer.from(snapshot.catalog, 'base64'), snapshot.signature, gen.keyring);
      assertError(
        await app.inject({ method: 'GET', url: `/v1/catalogs/${'f'.repeat(64)}` }),
        404,
        'NOT_FOUND',
      );
      assertError(await app.inject({ method: 'GET', url: '/v1/catalogs/..%2Fsecret' }), 400, 'BAD_REQUEST');

      const res = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: {
          platform: AMD64,
          items: [
            { name: 'jq', version: '1.6-2.1', arch: 'amd64' },
            { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
            { name: 'nope', version: '1.0', arch: 'amd64' },
            { name: 'libc6', version: '2.36', arch: 'i386' },
          ],
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<{
        platform: string;
        catalog?: { digest: string };
        items: { status: string; manifest?: { bytes: string; signature: string } }[];
      }>();
      assert.deepEqual(
        body.items.map((i) => i.status),
        ['ok', 'pending', 'not-in-catalog', 'unknown-platform'],
      );
      assert.ok(body.catalog);
      const ok = body.items[0]?.manifest;
      assert.ok(ok);
      const verified = await verifyManifest(Buffer.from(ok.bytes, 'base64'), ok.signature, gen.keyring);
      assert.equal(verified.content.package.name, 'jq');
    });

    it('reverse lookup finds the uploaded files', async () => {
      const m = gen.manifestContent(AMD64, { name: 'tree', version: '2.1.0-1' });
      const body = await signedManifest(gen, m);
      const up = await app.inject({
        method: 'POST',
        url: '/v1/manifests',
        payload: body,
        headers: auth(tokens.generator),
      });
      assert.equal(up.statusCode, 201, up.body);
      const file = m.entries.find((e) => e.type === 'file');
      assert.ok(file && file.type === 'file');
      const res = await app.inject({
        method: 'POST',
        url: '/v1/reverse-lookup',
        payload: { sha256: [file.sha256, '0'.repeat(64)] },
      });
      assert.equal(res.statusCode, 200, res.body);
      const results = res.json<{ results: { sha256: string; hits: { name: string; path: string }[] }[] }>()
        .results;
      assert.equal(results[0]?.hits[0]?.name, 'tree');
      assert.equal(results[0]?.hits[0]?.path, file.path);
      assert.deepEqual(results[1]?.hits, []);
    });

    it('lookup with documents: false answers digests; GET /v1/manifests/{digest} serves the signed document', async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: {
          platform: AMD64,
          items: [{ name: 'jq', version: '1.6-2.1', arch: 'amd64' }],
          documents: false,
        },
      });
      assert.equal(res.statusCode, 200, res.body);
      const item = res.json<{ items: { status: string; manifest: Record<string, string> }[] }>().items[0];
      assert.equal(item?.status, 'ok');
      assert.deepEqual(Object.keys(item?.manifest ?? {}), ['digest']);
      const digest = item?.manifest.digest ?? '';
      const got = await app.inject({ method: 'GET', url: `/v1/manifests/${digest}` });
      assert.equal(got.statusCode, 200, got.body);
      const d = got.json<{ digest: string; name: string; manifest: string; signature: string }>();
      assert.equal(d.digest, digest);
      assert.equal(d.name, 'jq');
      const verified = await verifyManifest(Buffer.from(d.manifest, 'base64'), d.signature, gen.keyring);
      assert.equal(verified.digest, digest);
      assertError(
        await app.inject({ method: 'GET', url: `/v1/manifests/${'0'.repeat(64)}` }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/manifests/..%2F..%2Fetc%2Fpasswd' }),
        400,
        'BAD_REQUEST',
      );
    });

    it('jobs: admin lists, generator claims, heartbeats, fails and completes', async () => {
      const list = (token: string) =>
        app.inject({ method: 'GET', url: '/v1/jobs?state=pending', headers: auth(token) });
      assertError(await list(tokens.generator), 403, 'FORBIDDEN');
      assertError(await app.inject({ method: 'GET', url: '/v1/jobs' }), 401, 'UNAUTHORIZED');
      const listed = await list(tokens.admin);
      assert.equal(listed.statusCode, 200, listed.body);
      const pending = listed.json<{ jobs: { id: number; name: string }[] }>().jobs;
      assert.ok(pending.some((j) => j.name === 'bash'));

      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/jobs/claim',
          payload: { workerId: 'w1', platforms: [AMD64] },
        }),
        401,
        'UNAUTHORIZED',
      );
      const claim = await app.inject({
        method: 'POST',
        url: '/v1/jobs/claim',
        headers: auth(tokens.generator),
        payload: { workerId: 'w1', platforms: [AMD64], max: 10, leaseSeconds: 60 },
      });
      assert.equal(claim.statusCode, 200, claim.body);
      const jobs = claim.json<{ jobs: { id: number; name: string; version: string; state: string }[] }>()
        .jobs;
      const bash = jobs.find((j) => j.name === 'bash');
      assert.ok(bash);
      assert.equal(bash.state, 'running');

      const hb = await app.inject({
        method: 'POST',
        url: `/v1/jobs/${bash.id}/heartbeat`,
        headers: auth(tokens.generator),
        payload: { workerId: 'w1' },
      });
      assert.equal(hb.statusCode, 200, hb.body);
      assertError(
        await app.inject({
          method: 'POST',
          url: `/v1/jobs/${bash.id}/heartbeat`,
          headers: auth(tokens.generator),
          payload: { workerId: 'someone-else' },
        }),
        409,
        'LEASE_LOST',
      );
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/jobs/999999/heartbeat',
          headers: auth(tokens.generator),
          payload: { workerId: 'w1' },
        }),
        404,
        'NOT_FOUND',
      );
      // Completing before the manifest is uploaded is refused.
      assertError(
        await app.inject({
          method: 'POST',
          url: `/v1/jobs/${bash.id}/complete`,
          headers: auth(tokens.generator),
          payload: { workerId: 'w1' },
        }),
        400,
        'BAD_REQUEST',
      );
      const upload = await signedManifest(
        gen,
        gen.manifestContent(AMD64, { name: 'bash', version: bash.version }),
      );
      const up = await app.inject({
        method: 'POST',
        url: '/v1/manifests',
        payload: upload,
        headers: auth(tokens.generator),
      });
      assert.equal(up.statusCode, 201, up.body);
      const done = await app.inject({
        method: 'POST',
        url: `/v1/jobs/${bash.id}/complete`,
        headers: auth(tokens.generator),
        payload: { workerId: 'w1' },
      });
      assert.equal(done.statusCode, 200, done.body);
      assert.equal(done.json<{ job: { state: string } }>().job.state, 'done');

      // A failure report: the job goes back to pending with the error, for a retry after backoff.
      const cat = await gen.catalog(AMD64, '2026-11-21T00:00:00Z', [
        { name: 'jq', version: '1.6-2.1' },
        { name: 'bash', version: bash.version },
        { name: 'curl', version: '7.88.1-10' },
      ]);
      await t.store.ingestCatalog(cat);
      const asked = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: { platform: AMD64, items: [{ name: 'curl', version: '7.88.1-10', arch: 'amd64' }] },
      });
      assert.equal(asked.json<{ items: { status: string }[] }>().items[0]?.status, 'pending');
      const claimed = await app.inject({
        method: 'POST',
        url: '/v1/jobs/claim',
        headers: auth(tokens.admin),
        payload: { workerId: 'w2', platforms: [AMD64] },
      });
      const curl = claimed
        .json<{ jobs: { id: number; name: string }[] }>()
        .jobs.find((j) => j.name === 'curl');
      assert.ok(curl, claimed.body);
      const fail = await app.inject({
        method: 'POST',
        url: `/v1/jobs/${curl.id}/fail`,
        headers: auth(tokens.generator),
        payload: { workerId: 'w2', error: 'apt failed' },
      });
      assert.equal(fail.statusCode, 200, fail.body);
      const failed = fail.json<{ job: { state: string; lastError: string; attempts: number } }>().job;
      assert.equal(failed.state, 'pending');
      assert.equal(failed.lastError, 'apt failed');
      assert.equal(failed.attempts, 1);
    });

    it('reads need a reader token when configured', async () => {
      const strict = buildApp({ store: t.store, readsNeedToken: true });
      try {
        const payload = { platform: AMD64, items: [] };
        assertError(await strict.inject({ method: 'POST', url: '/v1/lookup', payload }), 401, 'UNAUTHORIZED');
        for (const token of [tokens.reader, tokens.generator, tokens.admin]) {
          const res = await strict.inject({
            method: 'POST',
            url: '/v1/lookup',
            payload,
            headers: auth(token),
          });
          assert.equal(res.statusCode, 200, res.body);
        }
        const revoked = await t.store.createToken('reader', 'soon revoked');
        await t.store.revokeToken(revoked.id);
        assertError(
          await strict.inject({ method: 'POST', url: '/v1/lookup', payload, headers: auth(revoked.secret) }),
          401,
          'UNAUTHORIZED',
        );
      } finally {
        await strict.close();
      }
    });

    it('the trustedKeyring option replaces the store keys', async () => {
      const custom = buildApp({ store: t.store, trustedKeyring: async () => other.keyring });
      try {
        const body = await signedManifest(
          other,
          other.manifestContent(AMD64, { name: 'other', version: '1' }),
        );
        const res = await custom.inject({
          method: 'POST',
          url: '/v1/manifests',
          payload: body,
          headers: auth(tokens.generator),
        });
        assert.equal(res.statusCode, 201, res.body);
      } finally {
        await custom.close();
      }
    });

    it('a body over bodyLimit is 413, unknown routes 404, bad JSON 400, other media types 415', async () => {
      const small = buildApp({ store: t.store, bodyLimit: 1024 });
      try {
        assertError(
          await small.inject({
            method: 'POST',
            url: '/v1/lookup',
            payload: { platform: AMD64, items: [{ name: 'x'.repeat(2000), version: '1', arch: 'amd64' }] },
          }),
          413,
          'PAYLOAD_TOO_LARGE',
        );
      } finally {
        await small.close();
      }
      assertError(await app.inject({ method: 'GET', url: '/v1/nothing-here' }), 404, 'NOT_FOUND');
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/lookup',
          headers: { 'content-type': 'application/json' },
          payload: '{"platform":',
        }),
        400,
        'BAD_REQUEST',
      );
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/lookup',
          headers: { 'content-type': 'text/plain' },
          payload: 'hello',
        }),
        415,
        'UNSUPPORTED_MEDIA_TYPE',
      );
    });
  });
}

describe('HTTP API internal errors', () => {
  it('an unexpected error is a 500 INTERNAL without internals; a dead database makes /readyz 503', async () => {
    const reported: unknown[] = [];
    const broken = {
      // What the dashboard's registration reads (never queried here).
      readModel: { db: undefined, now: () => new Date() },
      authenticate: async () => undefined,
      lookup: async () => {
        throw new Error('boom in /secret/internal/path');
      },
      schemaVersion: async () => {
        throw new Error('database gone');
      },
    } as unknown as Store;
    const app = buildApp({ store: broken, onInternalError: (e) => reported.push(e) });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: { platform: AMD64, items: [] },
      });
      assertError(res, 500, 'INTERNAL');
      assert.doesNotMatch(res.body, /secret|boom|at /);
      assertError(await app.inject({ method: 'GET', url: '/readyz' }), 503, 'UNAVAILABLE');
      assert.equal((await app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
      assert.equal(reported.length, 2);
    } finally {
      await app.close();
    }
  });
});
