/**
 * The read model's queries on both databases: the same fixture, the same figures from SQLite and
 * PostgreSQL (the dashboard's browser tests run on SQLite only).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import {
  TEST_DIALECTS,
  TestGenerator,
  apkChecksum,
  openTestStore,
  sha256,
  type TestStore,
} from '../../testkit/store.js';
import type { ReadContext } from './read-context.js';
import {
  AMD64,
  ARM64,
  DASHBOARD_STORE_OPTIONS,
  HOSTILE_LOG,
  seedDashboardStore,
  type Fixture,
} from '../../testkit/read-model.js';

const PAGE = { offset: 0, limit: 50 };
const daysAgo = (d: number): Date => new Date(Date.now() - d * 86_400_000);

/** Never called: it fails to compile if the read model could query the tokens table. */
export function tokensAreOutOfReach(ctx: ReadContext): unknown {
  // @ts-expect-error -- the read model's tables do not include tokens (their secret hashes).
  return ctx.db.selectFrom('tokens').selectAll();
}

for (const dialect of TEST_DIALECTS) {
  describe(`read model (${dialect})`, () => {
    let t: TestStore;
    let fx: Fixture;

    before(async () => {
      // The real clock: the fixture's snapshots are hours and days before now.
      t = await openTestStore(dialect, { ...DASHBOARD_STORE_OPTIONS, now: () => new Date() });
      fx = await seedDashboardStore(t.store, await TestGenerator.create(), new Date());
    });
    after(async () => {
      await t?.close();
    });

    it('fleet: counts per platform', async () => {
      assert.deepEqual(await t.store.platformsWithCatalog(), [AMD64, ARM64]);
      const rows = await t.store.fleet();
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
      assert.equal(amd?.firstCatalogAt, new Date(fx.snapshots[0] as string).toISOString());
      assert.equal(amd?.latestCatalogAt, new Date(fx.snapshots[2] as string).toISOString());
    });

    it('search: by part of a name, exact match first, wildcards taken literally', async () => {
      const ssl = await t.store.searchPackages('SSL', PAGE);
      assert.deepEqual(
        ssl.items.map((h) => h.name),
        ['openssl'],
      );
      assert.equal(ssl.total, 1);
      assert.deepEqual(
        ssl.items[0]?.platforms.map((p) => [p.platform, p.newestVersion]),
        [
          [AMD64, '3.0.15-1~deb12u1'],
          [ARM64, '3.0.13-1~deb12u1'],
        ],
      );
      const c = await t.store.searchPackages('c', PAGE);
      assert.equal(c.items[0]?.name, 'coreutils', 'prefix matches before other matches');
      const paged = await t.store.searchPackages('c', { offset: 1, limit: 1 });
      assert.equal(paged.items.length, 1);
      assert.equal(paged.hasMore, true);
      assert.equal((await t.store.searchPackages('%', PAGE)).items.length, 0);
      assert.equal((await t.store.searchPackages('_', PAGE)).items.length, 0);
    });

    it('package versions: by dpkg order with manifest and job status', async () => {
      const openssl = await t.store.packageVersions('openssl');
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
      const coreutils = (await t.store.packageVersions('coreutils')).find((p) => p.platform === AMD64);
      const status = coreutils?.versions[0]?.manifest;
      assert.equal(status?.state, 'dead');
      assert.equal(status?.state === 'dead' ? status.lastError : undefined, HOSTILE_LOG);
      const tzdata = (await t.store.packageVersions('tzdata')).find((p) => p.platform === AMD64);
      assert.equal(tzdata?.versions[0]?.manifestPlatform, 'debian/bookworm/all');
      assert.deepEqual(await t.store.packageVersions('no-such-package'), []);
    });

    it('manifest summary: by digest, without bytes', async () => {
      const m = await t.store.manifestSummary(fx.opensslDigest);
      assert.deepEqual(
        [m?.platform, m?.name, m?.version, m?.arch],
        [AMD64, 'openssl', '3.0.15-1~deb12u1', 'amd64'],
      );
      assert.equal(m?.fileCount, 4);
      assert.equal(await t.store.manifestSummary('0'.repeat(64)), undefined);
    });

    it('upgrades: newest-version changes since a time, newest first', async () => {
      const week = await t.store.packageUpgrades(undefined, daysAgo(7));
      assert.deepEqual(
        week.upgrades.map((e) => [e.name, e.from ?? null, e.to]),
        [
          ['openssl', '3.0.13-1~deb12u1', '3.0.15-1~deb12u1'],
          ['curl', '7.88.1-10', '7.88.1-10+deb12u5'],
          ['openssl', '3.0.11-1~deb12u1', '3.0.13-1~deb12u1'],
          ['ripgrep', null, '13.0.0-4+b2'],
        ],
      );
      assert.deepEqual(week.platforms, [AMD64, ARM64]);
      const day = await t.store.packageUpgrades(AMD64, daysAgo(1));
      assert.deepEqual(
        day.upgrades.map((e) => e.to),
        ['3.0.15-1~deb12u1'],
      );
      assert.deepEqual(day.platforms, [AMD64]);
      assert.ok((await t.store.newestSnapshotId()) > 0);
    });

    it('queue, workers and job lists', async () => {
      const q = await t.store.queueCounts();
      assert.equal(q.pending, 2);
      assert.equal(q.running, 1);
      assert.equal(q.dead, 1);
      assert.equal(q.due, 2);
      assert.ok(q.oldestPendingCreatedAt !== undefined);
      assert.deepEqual(
        (await t.store.workers()).map((w) => [w.id, w.jobs.map((j) => j.name)]),
        [['gen-worker-1', ['curl']]],
      );
      const failures = await t.store.jobsPage('failures', PAGE);
      assert.deepEqual(
        failures.items.map((j) => j.id),
        [fx.deadJobId],
      );
      const queue = await t.store.jobsPage('queue', PAGE);
      assert.equal(queue.items.length, 3);
      assert.deepEqual(
        queue.items.map((j) => j.id),
        [...queue.items.map((j) => j.id)].sort((a, b) => a - b),
        'oldest first',
      );
      const first = await t.store.jobsPage('queue', { offset: 0, limit: 2 });
      assert.deepEqual([first.items.length, first.hasMore], [2, true]);
      assert.equal((await t.store.jobsPage('history', PAGE)).items.length, 0);
      assert.ok((await t.store.databaseBytes()) > 0);
    });

    it('tracked packages: newest first, counted', async () => {
      const tracked = await t.store.trackedPackagesPage({ offset: 0, limit: 2 });
      assert.equal(tracked.total, 3);
      assert.equal(tracked.items.length, 2);
      assert.equal(tracked.hasMore, true);
      const since = tracked.items.map((r) => r.since);
      assert.deepEqual(since, [...since].sort().reverse(), 'most recently tracked first');
      assert.ok(tracked.items.every((r) => r.platform === AMD64));
    });
  });
}

for (const dialect of TEST_DIALECTS) {
  describe(`read model over an apk catalog (${dialect})`, () => {
    it('package versions and upgrades: by apk order, entries without a SHA-256 read fine', async () => {
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
        const [musl, ...others] = await t.store.packageVersions('musl');
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
        assert.deepEqual(
          (await t.store.fleet()).map((r) => [r.platform, r.packages, r.versions, r.manifests]),
          [[alpine, 1, 3, 1]],
        );
        const upgrades = await t.store.packageUpgrades(undefined, daysAgo(1));
        assert.deepEqual(
          upgrades.upgrades.map((e) => [e.platform, e.name, e.from, e.to]),
          [[alpine, 'musl', '1.2.5-r9', '1.2.5-r10']],
        );
      } finally {
        await t.close();
      }
    });
  });
}
