import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { signManifest, verifyManifest, type Manifest } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { TEST_DIALECTS, TestGenerator, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';
import { ERROR_CODES } from './errors.js';

const AMD64 = 'debian/bookworm/amd64';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

function assertError(res: { statusCode: number; body: string }, status: number, code: string): void {
  assert.equal(res.statusCode, status, res.body);
  const body = JSON.parse(res.body) as { error: { code: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.code, code);
  assert.equal(ERROR_CODES[body.error.code as keyof typeof ERROR_CODES], status);
  assert.ok(body.error.message.length > 0);
}

async function signed(gen: TestGenerator, content: Manifest) {
  const s = await signManifest(content, gen.key);
  return { manifest: Buffer.from(s.bytes).toString('base64'), signature: s.signature };
}

for (const dialect of TEST_DIALECTS) {
  describe(`HTTP admin routes (${dialect})`, () => {
    let gen: TestGenerator;
    let t: TestStore;
    let app: FastifyInstance;
    let admin: string;
    let generator: string;
    let reader: string;

    before(async () => {
      gen = await TestGenerator.create();
      // One attempt per job, so that a failure makes a dead job to requeue.
      t = await openTestStore(dialect, { jobs: { maxAttempts: 1 } });
      admin = (await t.store.createToken('admin', 'operator')).secret;
      generator = (await t.store.createToken('generator', 'worker')).secret;
      reader = (await t.store.createToken('reader', 'client')).secret;
      app = buildApp({ store: t.store, rateLimit: false });
      await app.ready();
    });
    after(async () => {
      await app.close();
      await t.close();
    });

    it('admin routes refuse anonymous callers (401) and reader / generator tokens (403)', async () => {
      const routes: [string, string, unknown?][] = [
        ['GET', '/v1/admin/tokens'],
        ['POST', '/v1/admin/tokens', { role: 'reader', name: 'x' }],
        ['POST', '/v1/admin/tokens/1/revoke'],
        ['GET', '/v1/admin/keys'],
        ['POST', '/v1/admin/keys', { armored: gen.armoredPublicKey }],
        ['DELETE', `/v1/admin/keys/${gen.key.fingerprint}`],
        ['GET', '/v1/admin/tracked'],
        ['POST', '/v1/admin/tracked', { platform: AMD64, names: ['jq'] }],
        ['POST', '/v1/admin/tracked/untrack', { platform: AMD64, names: ['jq'] }],
        ['GET', '/v1/admin/conflicts'],
        ['GET', '/v1/admin/conflicts/1/document'],
        ['POST', '/v1/jobs/1/requeue'],
      ];
      for (const [method, url, payload] of routes) {
        const req = {
          method: method as 'GET',
          url,
          ...(payload === undefined ? {} : { payload: payload as object }),
        };
        assertError(await app.inject(req), 401, 'UNAUTHORIZED');
        assertError(await app.inject({ ...req, headers: auth(reader) }), 403, 'FORBIDDEN');
        assertError(await app.inject({ ...req, headers: auth(generator) }), 403, 'FORBIDDEN');
      }
      // Nothing was written by the refused requests.
      assert.equal((await t.store.listTokens()).length, 3);
      assert.equal((await t.store.listTrustedKeys()).length, 0);
    });

    it('tokens: create shows the secret once, list never shows secrets, revoke locks the token out', async () => {
      const created = await app.inject({
        method: 'POST',
        url: '/v1/admin/tokens',
        headers: auth(admin),
        payload: { role: 'generator', name: 'builder 2' },
      });
      assert.equal(created.statusCode, 201, created.body);
      const { token, secret } = created.json<{
        token: { id: number; role: string; name: string };
        secret: string;
      }>();
      assert.match(secret, /^sat_/);
      assert.equal(token.role, 'generator');
      assert.equal(token.name, 'builder 2');
      // The new secret works: a generator may claim jobs.
      const claim = await app.inject({
        method: 'POST',
        url: '/v1/jobs/claim',
        headers: auth(secret),
        payload: { workerId: 'w', platforms: [AMD64] },
      });
      assert.equal(claim.statusCode, 200, claim.body);

      const listed = await app.inject({ method: 'GET', url: '/v1/admin/tokens', headers: auth(admin) });
      assert.equal(listed.statusCode, 200, listed.body);
      assert.doesNotMatch(listed.body, /sat_/);
      const tokens = listed.json<{ tokens: { id: number; name: string }[] }>().tokens;
      assert.deepEqual(
        tokens.map((x) => x.name),
        ['operator', 'worker', 'client', 'builder 2'],
      );

      const revoked = await app.inject({
        method: 'POST',
        url: `/v1/admin/tokens/${token.id}/revoke`,
        headers: auth(admin),
      });
      assert.equal(revoked.statusCode, 200, revoked.body);
      assert.ok(revoked.json<{ token: { revokedAt?: string } }>().token.revokedAt);
      assertError(
        await app.inject({
          method: 'POST',
          url: '/v1/jobs/claim',
          headers: auth(secret),
          payload: { workerId: 'w', platforms: [AMD64] },
        }),
        401,
        'UNAUTHORIZED',
      );
      assertError(
        await app.inject({ method: 'POST', url: '/v1/admin/tokens/9999/revoke', headers: auth(admin) }),
        404,
        'NOT_FOUND',
      );
      for (const payload of [
        { role: 'overlord', name: 'x' },
        { role: 'reader', name: '' },
        { role: 'reader', name: '   ' },
        { role: 'reader' },
        { role: 'reader', name: 'x', secret: 'sat_chosen' },
      ]) {
        assertError(
          await app.inject({ method: 'POST', url: '/v1/admin/tokens', headers: auth(admin), payload }),
          400,
          'BAD_REQUEST',
        );
      }
      assert.equal((await t.store.listTokens()).length, 4);
    });

    it('keys: add (parsed and verified), GET /v1/keys shows them, uploads by that key are accepted, remove', async () => {
      const body = await signed(gen, gen.manifestContent(AMD64, { name: 'hello', version: '2.10-3' }));
      const upload = () =>
        app.inject({ method: 'POST', url: '/v1/manifests', headers: auth(generator), payload: body });
      assertError(await upload(), 422, 'BAD_SIGNATURE');

      for (const armored of [
        'not a key',
        '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n-----END PGP PUBLIC KEY BLOCK-----\n',
      ]) {
        assertError(
          await app.inject({
            method: 'POST',
            url: '/v1/admin/keys',
            headers: auth(admin),
            payload: { armored },
          }),
          400,
          'BAD_REQUEST',
        );
      }
      const added = await app.inject({
        method: 'POST',
        url: '/v1/admin/keys',
        headers: auth(admin),
        payload: { armored: gen.armoredPublicKey },
      });
      assert.equal(added.statusCode, 201, added.body);
      const key = added.json<{ key: { fingerprint: string } }>().key;
      assert.equal(key.fingerprint, gen.key.fingerprint);
      assert.match(key.fingerprint, /^[0-9A-F]{40}$/);

      // The public list, in exactly the shape `sysattest trust add --from-server` reads.
      const pub = await app.inject({ method: 'GET', url: '/v1/keys' });
      assert.equal(pub.statusCode, 200, pub.body);
      const keys = pub.json<{ keys: { fingerprint: string; armored: string }[] }>();
      assert.deepEqual(Object.keys(keys), ['keys']);
      assert.equal(keys.keys.length, 1);
      assert.deepEqual(Object.keys(keys.keys[0] ?? {}), ['fingerprint', 'armored']);
      assert.equal(keys.keys[0]?.fingerprint, gen.key.fingerprint);
      assert.match(keys.keys[0]?.armored ?? '', /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
      assert.doesNotMatch(keys.keys[0]?.armored ?? '', /PRIVATE/);
      // The armored key is usable: it verifies a manifest the generator signed.
      const { TrustedKeyring } = await import('@sysattest/core');
      const ring = await TrustedKeyring.fromArmored(keys.keys[0]?.armored ?? '');
      await verifyManifest(Buffer.from(body.manifest, 'base64'), body.signature, ring);

      assert.equal((await upload()).statusCode, 201);

      const list = await app.inject({ method: 'GET', url: '/v1/admin/keys', headers: auth(admin) });
      assert.equal(list.json<{ keys: unknown[] }>().keys.length, 1);
      const removed = await app.inject({
        method: 'DELETE',
        url: `/v1/admin/keys/${gen.key.fingerprint.toLowerCase()}`,
        headers: auth(admin),
      });
      assert.equal(removed.statusCode, 200, removed.body);
      assert.deepEqual(removed.json(), { removed: gen.key.fingerprint });
      assert.deepEqual((await app.inject({ method: 'GET', url: '/v1/keys' })).json(), { keys: [] });
      const all = await app.inject({ method: 'GET', url: '/v1/admin/keys?all=true', headers: auth(admin) });
      assert.ok(all.json<{ keys: { removedAt?: string }[] }>().keys[0]?.removedAt);
      assertError(
        await app.inject({
          method: 'DELETE',
          url: `/v1/admin/keys/${gen.key.fingerprint}`,
          headers: auth(admin),
        }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'DELETE', url: '/v1/admin/keys/not-hex', headers: auth(admin) }),
        400,
        'BAD_REQUEST',
      );
      // Trusted again for the tests below.
      await t.store.addTrustedKey(gen.armoredPublicKey);
    });

    it('GET /v1/keys needs a reader token when reads do', async () => {
      const strict = buildApp({ store: t.store, readsNeedToken: true, rateLimit: false });
      try {
        assertError(await strict.inject({ method: 'GET', url: '/v1/keys' }), 401, 'UNAUTHORIZED');
        const ok = await strict.inject({ method: 'GET', url: '/v1/keys', headers: auth(reader) });
        assert.equal(ok.statusCode, 200, ok.body);
        assert.equal(ok.json<{ keys: unknown[] }>().keys.length, 1);
      } finally {
        await strict.close();
      }
    });

    it('tracked packages: track queues the newest version, list, untrack', async () => {
      await t.store.ingestCatalog(
        await gen.catalog(AMD64, '2026-11-20T00:00:00Z', [
          { name: 'openssl', version: '3.0.15-1~deb12u1' },
          { name: 'curl', version: '7.88.1-10+deb12u8' },
        ]),
      );
      const track = await app.inject({
        method: 'POST',
        url: '/v1/admin/tracked',
        headers: auth(admin),
        payload: { platform: AMD64, names: ['openssl', 'not-in-any-catalog'] },
      });
      assert.equal(track.statusCode, 200, track.body);
      assert.deepEqual(track.json(), { tracked: 2, jobsQueued: 1 });
      const jobs = await t.store.listJobs({ state: 'pending' });
      assert.deepEqual(
        jobs.map((j) => [j.name, j.version, j.reason]),
        [['openssl', '3.0.15-1~deb12u1', 'tracked']],
      );
      const listed = await app.inject({
        method: 'GET',
        url: `/v1/admin/tracked?platform=${encodeURIComponent(AMD64)}`,
        headers: auth(admin),
      });
      assert.equal(listed.statusCode, 200, listed.body);
      assert.deepEqual(
        listed
          .json<{ packages: { name: string; source: string }[] }>()
          .packages.map((p) => [p.name, p.source]),
        [
          ['not-in-any-catalog', 'config'],
          ['openssl', 'config'],
        ],
      );
      const untrack = await app.inject({
        method: 'POST',
        url: '/v1/admin/tracked/untrack',
        headers: auth(admin),
        payload: { platform: AMD64, names: ['not-in-any-catalog', 'never-tracked'] },
      });
      assert.equal(untrack.statusCode, 200, untrack.body);
      assert.deepEqual(untrack.json(), { removed: 1 });
      assert.deepEqual(
        (await t.store.listTrackedPackages(AMD64)).map((p) => p.name),
        ['openssl'],
      );
      for (const payload of [
        { platform: '../../etc', names: ['x'] },
        { platform: AMD64, names: [] },
        { platform: AMD64, names: [''] },
        { platform: AMD64, names: ['x'], source: 'whim' },
      ]) {
        assertError(
          await app.inject({ method: 'POST', url: '/v1/admin/tracked', headers: auth(admin), payload }),
          400,
          'BAD_REQUEST',
        );
      }
    });

    it('conflicts: listed with both digests; the refused document comes back byte for byte', async () => {
      const first = await signed(
        gen,
        gen.manifestContent(AMD64, { name: 'zlib1g', version: '1:1.2.13.dfsg-1' }),
      );
      const other = await signed(
        gen,
        gen.manifestContent(AMD64, { name: 'zlib1g', version: '1:1.2.13.dfsg-1' }, [
          { path: '/usr/lib/libz.so.1', content: 'tampered' },
        ]),
      );
      const post = (payload: object) =>
        app.inject({ method: 'POST', url: '/v1/manifests', headers: auth(generator), payload });
      assert.equal((await post(first)).statusCode, 201);
      assertError(await post(other), 409, 'CONFLICT');
      const list = await app.inject({ method: 'GET', url: '/v1/admin/conflicts', headers: auth(admin) });
      assert.equal(list.statusCode, 200, list.body);
      const conflicts = list.json<{
        conflicts: { id: number; name: string; digest: string; storedDigest: string }[];
      }>().conflicts;
      assert.equal(conflicts.length, 1);
      const c = conflicts[0];
      assert.ok(c);
      assert.equal(c.name, 'zlib1g');
      assert.notEqual(c.digest, c.storedDigest);
      const document = await app.inject({
        method: 'GET',
        url: `/v1/admin/conflicts/${c.id}/document`,
        headers: auth(admin),
      });
      assert.equal(document.statusCode, 200, document.body);
      const d = document.json<{ manifest: string; signature: string }>();
      assert.equal(d.manifest, other.manifest);
      assert.equal(d.signature, other.signature);
      assertError(
        await app.inject({ method: 'GET', url: '/v1/admin/conflicts/424242/document', headers: auth(admin) }),
        404,
        'NOT_FOUND',
      );
      assertError(
        await app.inject({ method: 'GET', url: '/v1/admin/conflicts?limit=20000', headers: auth(admin) }),
        400,
        'BAD_REQUEST',
      );
    });

    it('requeue: a dead job goes back to pending with its attempts reset; done jobs and unknown ids are refused', async () => {
      const claim = await app.inject({
        method: 'POST',
        url: '/v1/jobs/claim',
        headers: auth(generator),
        payload: { workerId: 'w9', platforms: [AMD64] },
      });
      const job = claim.json<{ jobs: { id: number; name: string }[] }>().jobs[0];
      assert.ok(job, claim.body);
      const failed = await app.inject({
        method: 'POST',
        url: `/v1/jobs/${job.id}/fail`,
        headers: auth(generator),
        payload: { workerId: 'w9', error: 'apt-get install failed' },
      });
      assert.equal(failed.json<{ job: { state: string } }>().job.state, 'dead');
      const requeued = await app.inject({
        method: 'POST',
        url: `/v1/jobs/${job.id}/requeue`,
        headers: auth(admin),
      });
      assert.equal(requeued.statusCode, 200, requeued.body);
      const j = requeued.json<{ job: { state: string; attempts: number } }>().job;
      assert.equal(j.state, 'pending');
      assert.equal(j.attempts, 0);
      assert.equal((await t.store.getJob(job.id))?.state, 'pending');

      // Done: upload its manifest (which completes it), then requeue is refused.
      const m = await signed(
        gen,
        gen.manifestContent(AMD64, { name: 'openssl', version: '3.0.15-1~deb12u1' }),
      );
      assert.equal(
        (await app.inject({ method: 'POST', url: '/v1/manifests', headers: auth(generator), payload: m }))
          .statusCode,
        201,
      );
      assert.equal((await t.store.getJob(job.id))?.state, 'done');
      assertError(
        await app.inject({ method: 'POST', url: `/v1/jobs/${job.id}/requeue`, headers: auth(admin) }),
        400,
        'BAD_REQUEST',
      );
      assertError(
        await app.inject({ method: 'POST', url: '/v1/jobs/777777/requeue', headers: auth(admin) }),
        404,
        'NOT_FOUND',
      );
    });
  });
}
