/**
 * The dashboard's adapter over the store on both databases: the shapes the pages get, paging and
 * filtering done here, and refusals turned into messages (the queries themselves are tested in
 * store/read-model/read-model.test.ts).
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { DashboardError } from '@sysattest/dashboard';
import { AMD64, DASHBOARD_STORE_OPTIONS, seedDashboardStore, type Fixture } from '../testkit/read-model.js';
import { TEST_DIALECTS, TestGenerator, openTestStore, type TestStore } from '../testkit/store.js';
import { StoreDashboardBackend } from './store-backend.js';

const PAGE = { offset: 0, limit: 50 };

for (const dialect of TEST_DIALECTS) {
  describe(`dashboard backend (${dialect})`, () => {
    let t: TestStore;
    let backend: StoreDashboardBackend;
    let fx: Fixture;

    before(async () => {
      // The real clock: the fixture's snapshots are hours and days before now.
      t = await openTestStore(dialect, { ...DASHBOARD_STORE_OPTIONS, now: () => new Date() });
      fx = await seedDashboardStore(t.store, await TestGenerator.create(), new Date());
      backend = new StoreDashboardBackend(t.store);
    });
    after(async () => {
      await t?.close();
    });

    it('manifest files: paged and filtered', async () => {
      const all = await backend.manifestFiles(fx.opensslDigest, '', { offset: 0, limit: 3 });
      assert.equal(all?.total, 10);
      assert.equal(all?.items.length, 3);
      assert.equal(all?.hasMore, true);
      const etc = await backend.manifestFiles(fx.opensslDigest, 'openssl.cnf', PAGE);
      assert.deepEqual(
        etc?.items.map((f) => [f.path, f.type, f.mode, f.user, f.size]),
        [['/etc/ssl/openssl.cnf', 'file', '0644', 'root', 16]],
      );
      assert.match(etc?.items[0]?.distroDigest ?? '', /^md5:[0-9a-f]{32}$/);
      assert.equal(await backend.manifestFiles('0'.repeat(64), '', PAGE), undefined);
    });

    it('upgrades: newest-version changes per window', async () => {
      const week = await backend.upgrades('7d', undefined, PAGE);
      assert.deepEqual(
        week.events.items.map((e) => [e.name, e.from ?? null, e.to]),
        [
          ['openssl', '3.0.13-1~deb12u1', '3.0.15-1~deb12u1'],
          ['curl', '7.88.1-10', '7.88.1-10+deb12u5'],
          ['openssl', '3.0.11-1~deb12u1', '3.0.13-1~deb12u1'],
          ['ripgrep', null, '13.0.0-4+b2'],
        ],
      );
      assert.equal(
        week.buckets.reduce((s, b) => s + (b.counts[AMD64] ?? 0), 0),
        4,
      );
      assert.equal(week.buckets.length, 28);
      const day = await backend.upgrades('24h', AMD64, PAGE);
      assert.deepEqual(
        day.events.items.map((e) => e.to),
        ['3.0.15-1~deb12u1'],
      );
      assert.deepEqual(day.platforms, [AMD64]);
    });

    it('health and jobs', async () => {
      const h = await backend.health();
      assert.equal(h.database.dialect, dialect);
      assert.ok(h.database.bytes > 0);
      assert.equal(h.queue.pending, 2);
      assert.equal(h.queue.running, 1);
      assert.equal(h.queue.dead, 1);
      assert.ok(h.queue.oldestPendingCreatedAt !== undefined);
      assert.deepEqual(
        h.workers.map((w) => [w.id, w.jobs.map((j) => j.name)]),
        [['gen-worker-1', ['curl']]],
      );
      const failures = await backend.jobs('failures', PAGE);
      assert.deepEqual(
        failures.items.map((j) => j.id),
        [fx.deadJobId],
      );
      const queue = await backend.jobs('queue', PAGE);
      assert.equal(queue.items.length, 3);
      assert.deepEqual(await backend.job(fx.deadJobId), failures.items[0]);
      assert.ok(
        failures.items.every((j) => !('manifestId' in j)),
        'the pages get a JobRow',
      );
      assert.equal((await backend.jobs('history', PAGE)).items.length, 0);
    });

    it('actions go through the store and refuse bad input with a message', async () => {
      await assert.rejects(
        backend.requeueJob(999_999),
        (e: unknown) => e instanceof DashboardError && e.status === 404,
      );
      await assert.rejects(
        backend.trackPackage('debian/nowhere/amd64', 'x'),
        (e: unknown) => e instanceof DashboardError && e.status === 400,
      );
      await assert.rejects(
        backend.trustKey('not a key'),
        (e: unknown) => e instanceof DashboardError && e.status === 400,
      );
      const token = await backend.createToken('reader', 'dashboard test');
      const session = await backend.sessionToken(token.id);
      assert.equal(session?.principal.role, 'reader');
      // The binding is the stored hash of the secret, as before: existing sessions stay valid.
      assert.deepEqual(
        Buffer.from(session?.binding ?? []),
        createHash('sha256').update(token.secret).digest(),
      );
      await backend.revokeToken(token.id);
      assert.equal(await backend.sessionToken(token.id), undefined, 'a revoked token has no sessions');
    });
  });
}
