/**
 * The dashboard's queries on both databases (the browser tests run on SQLite only): the same
 * fixture, the same figures from SQLite and PostgreSQL.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { DashboardError } from '@sysattest/dashboard';
import {
  TEST_DIALECTS,
  TestGenerator,
  apkChecksum,
  openTestStore,
  sha256,
  type TestStore,
} from '../store/store-testkit.js';
import {
  AMD64,
  ARM64,
  DASHBOARD_STORE_OPTIONS,
  HOSTILE_LOG,
  seedDashboardStore,
  type Fixture,
} from './dashboard-fixture.js';
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

    it('fleet: counts per platform', async () => {
      const rows = await backend.fleet();
      assert.deepEqual(
        rows.map((r) => r.platform),
        [ARM64, AMD64].sort(),
      );
      const amd = rows.find((r) => r.platform === AMD64);
      assert.equal(amd?.snapshots, 3);
      assert.equal(amd?.packages, 7);
      assert.equal(amd?.versions, 7);
      assert.equal(amd?.trackedPackages, 3);
      assert.equal(amd?.trackedCovered, 2);
      assert.equal(amd?.manifests, 2);
      assert.deepEqual(amd?.jobs, { pending: 2, running: 1, done: 0, dead: 1, retrying: 0 });
      assert.equal(amd?.latestCatalogAt, new Date(fx.snapshots[2] as string).toISOString());
    });

    it('search: by part of a name, exact match first, wildcards taken literally', async () => {
      const ssl = await backend.searchPackages('SSL', PAGE);
      assert.deepEqual(
        ssl.items.map((h) => h.name),
        ['openssl'],
      );
      assert.deepEqual(
        ssl.items[0]?.platforms.map((p) => [p.platform, p.newestVersion]),
        [
          [AMD64, '3.0.15-1~deb12u1'],
          [ARM64, '3.0.13-1~deb12u1'],
        ],
      );
      const c = await backend.searchPackages('c', PAGE);
      assert.equal(c.items[0]?.name, 'coreutils', 'prefix matches before other matches');
      assert.equal((await backend.searchPackages('%', PAGE)).items.length, 0);
      assert.equal((await backend.searchPackages('_', PAGE)).items.length, 0);
    });

    it('package detail: versions by dpkg order with manifest and job status', async () => {
      const openssl = await backend.packageDetail('openssl');
      const amd = openssl.find((p) => p.platform === AMD64);
      assert.deepEqual(
        amd?.versions.map((v) => [v.version, v.newest, v.manifest.state, v.withdrawnAt !== undefined]),
        [
          ['3.0.15-1~deb12u1', true, 'stored', false],
          ['3.0.13-1~deb12u1', false, 'none', true],
          ['3.0.11-1~deb12u1', false, 'none', true],
        ],
      );
      assert.equal(amd?.tracked, true);
      // The archive's SHA-256 from the repository index, as the catalog carried it.
      assert.deepEqual(
        amd?.versions.map((v) => v.archiveSha256),
        amd?.versions.map((v) => sha256(`openssl_${v.version}_amd64.deb`)),
      );
      const coreutils = (await backend.packageDetail('coreutils')).find((p) => p.platform === AMD64);
      const status = coreutils?.versions[0]?.manifest;
      assert.equal(status?.state, 'dead');
      assert.equal(status?.state === 'dead' ? status.lastError : undefined, HOSTILE_LOG);
      const tzdata = (await backend.packageDetail('tzdata')).find((p) => p.platform === AMD64);
      assert.equal(tzdata?.versions[0]?.manifestPlatform, 'debian/bookworm/all');
      assert.deepEqual(await backend.packageDetail('no-such-package'), []);
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
      await backend.revokeToken(token.id);
      assert.equal(await backend.sessionToken(token.id), undefined, 'a revoked token has no sessions');
    });
  });
}

for (const dialect of TEST_DIALECTS) {
  describe(`dashboard backend over an apk catalog (${dialect})`, () => {
    it('package detail and upgrades: versions by apk order, entries without a SHA-256 read fine', async () => {
      const t = await openTestStore(dialect, { now: () => new Date() });
      try {
        const gen = await TestGenerator.create();
        const alpine = 'alpine/3.20/x86_64';
        const hoursAgo = (h: number): string =>
          new Date(Date.now() - h * 3600_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        await t.store.ingestCatalog(
          await gen.catalog(alpine, hoursAgo(2), [
            { name: 'musl', version: '1.2.5-r9' },
            { name: 'musl', version: '1.2.5_rc1-r0' },
          ]),
        );
        // An hour later r10 arrives: newer by apk's order (code units put it before r9).
        await t.store.ingestCatalog(
          await gen.catalog(alpine, hoursAgo(1), [
            { name: 'musl', version: '1.2.5-r9' },
            { name: 'musl', version: '1.2.5-r10' },
            { name: 'musl', version: '1.2.5_rc1-r0' },
          ]),
        );
        await t.store.ingestManifest(await gen.manifest(alpine, { name: 'musl', version: '1.2.5-r9' }));
        const backend = new StoreDashboardBackend(t.store);
        const [musl, ...others] = await backend.packageDetail('musl');
        assert.equal(others.length, 0);
        assert.equal(musl?.platform, alpine);
        assert.equal(musl?.newestVersion, '1.2.5-r10');
        assert.deepEqual(
          musl?.versions.map((v) => [v.version, v.newest, v.manifest.state]),
          [
            ['1.2.5-r10', true, 'none'],
            ['1.2.5-r9', false, 'stored'],
            ['1.2.5_rc1-r0', false, 'none'],
          ],
        );
        // Each version shows the APKINDEX checksum it was offered with, and no SHA-256.
        for (const v of musl?.versions ?? []) {
          assert.equal(v.apkChecksum, apkChecksum('musl', v.version, 'x86_64'));
          assert.equal(v.archiveSha256, undefined);
        }
        const fleet = await backend.fleet();
        assert.deepEqual(
          fleet.map((r) => [r.platform, r.packages, r.versions, r.manifests]),
          [[alpine, 1, 3, 1]],
        );
        const upgrades = await backend.upgrades('24h', undefined, PAGE);
        assert.deepEqual(
          upgrades.events.items.map((e) => [e.platform, e.name, e.from, e.to]),
          [[alpine, 'musl', '1.2.5-r9', '1.2.5-r10']],
        );
      } finally {
        await t.close();
      }
    });
  });
}
