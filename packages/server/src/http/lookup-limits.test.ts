/**
 * What an anonymous client can make one lookup cost (issue 14): asking for one large manifest
 * thousands of times is refused; asking for many large manifests gets a bounded answer (the rest by
 * digest); and the jobs and tracked packages its lookups create are bounded per address, or
 * nothing at all when queueing needs a token.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { verifyManifest, type VerifiedManifest } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import { TEST_DIALECTS, TestGenerator, countRows, openTestStore, type TestStore } from '../testkit/store.js';
import { buildApp } from './app.js';

const AMD64 = 'debian/bookworm/amd64';
const T1 = '2026-11-20T00:00:00Z';
const MiB = 1024 * 1024;

/** Paths of about 4 KiB, shared by every large manifest (the server stores a path once). */
const LONG_PATHS = Array.from(
  { length: 1200 },
  (_, i) => `/usr/share/large/${String(i).padStart(5, '0')}/${'p'.repeat(4000)}`,
);

interface LookupAnswer {
  items: {
    name: string;
    status: string;
    manifest?: { digest: string; bytes?: string; signature?: string };
    job?: { id: number };
    deferred?: string;
  }[];
  documentsOmitted?: number;
}

const lookupBody = (names: readonly string[], extra: Record<string, unknown> = {}) => ({
  platform: AMD64,
  items: names.map((name) => ({ name, version: '1.0-1', arch: 'amd64' })),
  ...extra,
});

for (const dialect of TEST_DIALECTS) {
  describe(`lookup answers stay bounded (${dialect})`, () => {
    let gen: TestGenerator;
    let t: TestStore;
    let app: FastifyInstance;
    const large: VerifiedManifest[] = [];
    const names = Array.from({ length: 16 }, (_, i) => `large${i}`);

    before(async () => {
      gen = await TestGenerator.create();
      t = await openTestStore(dialect);
      await t.store.ingestCatalog(
        await gen.catalog(
          AMD64,
          T1,
          names.map((name) => ({ name, version: '1.0-1' })),
        ),
      );
      // 16 manifests of ~5.2 MiB (~7 MiB in base64): 110 MiB of base64 in all, above the 64 MiB budget.
      for (const name of names) {
        const m = await gen.manifest(
          AMD64,
          { name, version: '1.0-1' },
          LONG_PATHS.map((path) => ({ path, content: `${name} ${path.slice(0, 24)}` })),
        );
        await t.store.ingestManifest(m);
        large.push(m);
      }
      app = buildApp({ store: t.store, rateLimit: false });
      await app.ready();
    });
    after(async () => {
      await app?.close();
      await t?.close();
    });

    it('one large manifest asked 2,500 times in a 125 KB request: 400 naming the duplicate, nothing queued', async () => {
      const body = lookupBody(Array<string>(2500).fill('large0'));
      assert.ok(JSON.stringify(body).length < 130_000);
      const res = await app.inject({ method: 'POST', url: '/v1/lookup', payload: body });
      assert.equal(res.statusCode, 400, res.body.slice(0, 300));
      assert.deepEqual(JSON.parse(res.body), {
        error: {
          code: 'BAD_REQUEST',
          message: 'lookup item 1 repeats item 0: large0 1.0-1 (amd64); ask for each package version once',
        },
      });
      assert.equal(await countRows(t.raw(), 'jobs'), 0);
    });

    it('many large manifests: documents up to 64 MiB, the rest by digest, every one fetchable and genuine', async () => {
      const rssBefore = process.memoryUsage().rss;
      const res = await app.inject({ method: 'POST', url: '/v1/lookup', payload: lookupBody(names) });
      assert.equal(res.statusCode, 200, res.body.slice(0, 300));
      const answerBytes = res.rawPayload.length;
      const biggest = Math.max(...large.map((m) => Math.ceil(m.bytes.length / 3) * 4));
      assert.ok(answerBytes <= 64 * MiB + biggest + MiB, `answer of ${answerBytes} bytes`);
      const answer = JSON.parse(res.body) as LookupAnswer;
      const inline = answer.items.filter((i) => i.manifest?.bytes !== undefined).length;
      assert.ok(inline >= 8 && inline < names.length, `${inline} documents inline`);
      assert.equal(answer.documentsOmitted, names.length - inline);
      // In item order: documents first, then digests only.
      answer.items.forEach((item, i) => {
        assert.equal(item.status, 'ok');
        assert.equal(item.manifest?.digest, large[i]?.digest);
        assert.equal(item.manifest?.bytes !== undefined, i < inline, `item ${i}`);
      });
      // What was left out comes by digest, and verifies against the generator's key.
      for (const item of answer.items.slice(inline)) {
        const doc = await app.inject({ method: 'GET', url: `/v1/manifests/${item.manifest?.digest}` });
        assert.equal(doc.statusCode, 200);
        const { manifest, signature } = JSON.parse(doc.body) as { manifest: string; signature: string };
        const verified = await verifyManifest(Buffer.from(manifest, 'base64'), signature, gen.keyring);
        assert.equal(verified.digest, item.manifest?.digest);
      }
      // Loosely: answering did not hold several copies of every manifest (110 MiB of base64 in all).
      const grown = process.memoryUsage().rss - rssBefore;
      assert.ok(grown < 1024 * MiB, `RSS grew by ${Math.round(grown / MiB)} MiB`);

      const light = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: lookupBody(names, { documents: false }),
      });
      const digests = JSON.parse(light.body) as LookupAnswer;
      assert.equal(digests.documentsOmitted, undefined);
      assert.ok(light.rawPayload.length < 16 * 1024);
    });

    it('a smaller budget in the options, and the first document even when it alone is larger', async () => {
      const small = buildApp({ store: t.store, rateLimit: false, lookupDocumentBudget: MiB });
      try {
        const res = await small.inject({
          method: 'POST',
          url: '/v1/lookup',
          payload: lookupBody(names.slice(0, 3)),
        });
        const answer = JSON.parse(res.body) as LookupAnswer;
        assert.deepEqual(
          answer.items.map((i) => i.manifest?.bytes !== undefined),
          [true, false, false],
        );
        assert.equal(answer.documentsOmitted, 2);
        const metrics = await small.inject({ method: 'GET', url: '/metrics' });
        assert.match(metrics.body, /^sysattest_lookup_documents_omitted_total 2$/m);
      } finally {
        await small.close();
      }
    });
  });

  describe(`anonymous lookups queue within a quota (${dialect})`, () => {
    let gen: TestGenerator;
    let t: TestStore;
    let reader: string;
    const names = Array.from({ length: 10 }, (_, i) => `pkg${i}`);

    before(async () => {
      gen = await TestGenerator.create();
      t = await openTestStore(dialect);
      await t.store.ingestCatalog(
        await gen.catalog(
          AMD64,
          T1,
          names.map((name) => ({ name, version: '1.0-1' })),
        ),
      );
      reader = (await t.store.createToken('reader', 'nightly verify')).secret;
    });
    after(async () => {
      await t?.close();
    });

    const ask = async (
      app: FastifyInstance,
      asked: readonly string[],
      from: { remoteAddress?: string; token?: string },
    ): Promise<string[]> => {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/lookup',
        payload: lookupBody(asked, { documents: false }),
        ...(from.remoteAddress === undefined ? {} : { remoteAddress: from.remoteAddress }),
        headers: from.token === undefined ? {} : { authorization: `Bearer ${from.token}` },
      });
      assert.equal(res.statusCode, 200, res.body);
      return (JSON.parse(res.body) as LookupAnswer).items.map((i) =>
        i.job !== undefined ? 'job' : (i.deferred ?? i.status),
      );
    };

    it('per address (IPv6: per /64); a reader token is not limited; a notice once the quota is used', async () => {
      const notices: string[] = [];
      const app = buildApp({
        store: t.store,
        rateLimit: false,
        anonymousQueueQuota: { max: 2, windowSeconds: 3600 },
        onNotice: (m) => notices.push(m),
      });
      try {
        assert.deepEqual(await ask(app, names.slice(0, 3), { remoteAddress: '203.0.113.7' }), [
          'job',
          'job',
          'quota',
        ]);
        // The same client written as an IPv4-mapped IPv6 address has nothing left.
        assert.deepEqual(await ask(app, names.slice(2, 4), { remoteAddress: '::ffff:203.0.113.7' }), [
          'quota',
          'quota',
        ]);
        assert.deepEqual(notices, [
          'anonymous client 203.0.113.7 reached its queue quota (2 new jobs and 2 newly tracked packages per 3600 s): its lookups queue nothing more this window',
        ]);
        // Two addresses of one /64 share a quota; another /64 has its own.
        assert.deepEqual(await ask(app, names.slice(2, 3), { remoteAddress: '2001:db8:1:2::5' }), ['job']);
        assert.deepEqual(await ask(app, names.slice(3, 5), { remoteAddress: '2001:db8:1:2::6' }), [
          'job',
          'quota',
        ]);
        assert.deepEqual(await ask(app, names.slice(4, 5), { remoteAddress: '2001:db8:1:3::6' }), ['job']);
        // A token holder is not an anonymous client.
        assert.deepEqual(await ask(app, names.slice(0, 7), { remoteAddress: '203.0.113.7', token: reader }), [
          'job',
          'job',
          'job',
          'job',
          'job',
          'job',
          'job',
        ]);
        const metrics = await app.inject({ method: 'GET', url: '/metrics' });
        assert.match(metrics.body, /^sysattest_lookup_deferred_total\{reason="quota",what="jobs"\} 4$/m);
        assert.match(metrics.body, /^sysattest_lookup_deferred_total\{reason="quota",what="tracked"\} 4$/m);
      } finally {
        await app.close();
      }
    });

    it('queueNeedsToken: an anonymous lookup is answered but queues nothing; a reader token queues', async () => {
      const app = buildApp({ store: t.store, rateLimit: false, queueNeedsToken: true });
      try {
        const jobs = await countRows(t.raw(), 'jobs');
        const tracked = await countRows(t.raw(), 'tracked_packages');
        assert.deepEqual(await ask(app, names.slice(6, 9), {}), ['job', 'token-required', 'token-required']);
        assert.equal(await countRows(t.raw(), 'jobs'), jobs);
        assert.equal(await countRows(t.raw(), 'tracked_packages'), tracked);
        assert.deepEqual(await ask(app, names.slice(6, 9), { token: reader }), ['job', 'job', 'job']);
        const metrics = await app.inject({ method: 'GET', url: '/metrics' });
        assert.match(
          metrics.body,
          /^sysattest_lookup_deferred_total\{reason="token-required",what="jobs"\} 2$/m,
        );
        // A refused token is refused, not treated as anonymous.
        const bad = await app.inject({
          method: 'POST',
          url: '/v1/lookup',
          payload: lookupBody(names.slice(9)),
          headers: { authorization: 'Bearer sat_not_a_token' },
        });
        assert.equal(bad.statusCode, 401);
      } finally {
        await app.close();
      }
    });
  });
}
