import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { isStoreError } from './store-error.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  apkChecksum,
  countRows,
  injectFailure,
  withStore,
  type TestPackage,
} from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';
const ALPINE = 'alpine/3.20/x86_64';
const T1 = '2026-11-01T06:00:00Z';
const T2 = '2026-11-02T06:00:00Z';
const T3 = '2026-11-03T06:00:00Z';
const ms = (t: string): string => new Date(t).toISOString();

for (const dialect of TEST_DIALECTS) {
  describe(`catalog snapshots (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });

    it('record first and last seen per version, and withdraw (and keep) versions a newer snapshot drops', () =>
      withStore(dialect, async ({ store }) => {
        const r1 = await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [
            { name: 'bash', version: '5.2.15-2' },
            { name: 'jq', version: '1.6-2.1' },
            { name: 'base-files', version: '12.4', arch: 'all' },
          ]),
        );
        assert.deepEqual(
          [r1.added, r1.withdrawn, r1.unchanged, r1.latest, r1.duplicate],
          [3, 0, 0, true, false],
        );

        const r2 = await store.ingestCatalog(
          await gen.catalog(AMD64, T2, [
            { name: 'bash', version: '5.2.15-2+b1' },
            { name: 'jq', version: '1.6-2.1' },
            { name: 'base-files', version: '12.4', arch: 'all' },
          ]),
        );
        assert.deepEqual([r2.added, r2.withdrawn, r2.unchanged], [1, 1, 2]);

        const [bash] = await store.catalogPackage(AMD64, 'bash');
        assert.equal(bash?.newestVersion, '5.2.15-2+b1');
        const old = bash?.versions.find((v) => v.version === '5.2.15-2');
        assert.deepEqual(
          [old?.firstSeen, old?.lastSeen, old?.withdrawnAt],
          [ms(T1), ms(T1), ms(T2)],
          'the dropped version is kept, withdrawn at the snapshot that dropped it',
        );
        const [jq] = await store.catalogPackage(AMD64, 'jq');
        assert.deepEqual(
          jq?.versions.map((v) => [v.version, v.firstSeen, v.lastSeen, v.withdrawnAt]),
          [['1.6-2.1', ms(T1), ms(T2), undefined]],
        );
        const [baseFiles] = await store.catalogPackage(AMD64, 'base-files');
        assert.equal(baseFiles?.arch, 'all');
        assert.equal(baseFiles?.versions[0]?.source.name, 'base-files');

        // A version that comes back is no longer withdrawn.
        const r3 = await store.ingestCatalog(
          await gen.catalog(AMD64, T3, [
            { name: 'bash', version: '5.2.15-2' },
            { name: 'bash', version: '5.2.15-2+b1' },
          ]),
        );
        assert.deepEqual([r3.added, r3.withdrawn, r3.unchanged], [0, 2, 2]);
        const [bash3] = await store.catalogPackage(AMD64, 'bash');
        assert.deepEqual(
          bash3?.versions.map((v) => [v.version, v.lastSeen, v.withdrawnAt]),
          [
            ['5.2.15-2', ms(T3), undefined],
            ['5.2.15-2+b1', ms(T3), undefined],
          ],
        );
        const [jq3] = await store.catalogPackage(AMD64, 'jq');
        assert.equal(
          jq3?.newestVersion,
          undefined,
          'a package the latest snapshot lacks has no newest version',
        );
        assert.equal(jq3?.versions[0]?.withdrawnAt, ms(T3));
        assert.equal((await store.latestCatalog(AMD64))?.generatedAt, ms(T3));
      }));

    it('order versions as dpkg does: 1.10 > 1.9, epochs first, ~ before anything', () =>
      withStore(dialect, async ({ store }) => {
        const packages: TestPackage[] = [
          { name: 'numeric', version: '1.9' },
          { name: 'numeric', version: '1.10' },
          { name: 'numeric', version: '1.2' },
          { name: 'epoch', version: '2.0-1' },
          { name: 'epoch', version: '1:0.5-1' },
          { name: 'tilde', version: '1.0~rc1-1' },
          { name: 'tilde', version: '1.0-1' },
          { name: 'tilde', version: '1.0~rc2-1' },
          { name: 'revision', version: '2.36.1-8+deb12u1' },
          { name: 'revision', version: '2.36.1-8' },
        ];
        const r = await store.ingestCatalog(await gen.catalog(AMD64, T1, packages));
        const newest: Record<string, string> = {
          numeric: '1.10',
          epoch: '1:0.5-1',
          tilde: '1.0-1',
          revision: '2.36.1-8+deb12u1',
        };
        assert.deepEqual(Object.fromEntries(r.newestChanged.map((c) => [c.name, c.to])), newest);
        const result = await store.lookup(
          AMD64,
          packages.map((p) => ({ name: p.name, version: p.version, arch: 'amd64' })),
          { includeDocuments: false },
        );
        for (const item of result.items) assert.equal(item.newestVersion, newest[item.name]);

        // The next snapshot replaces 1.0-1 with 1.0.1~beta-1: newer, despite the tilde.
        const r2 = await store.ingestCatalog(
          await gen.catalog(AMD64, T2, [
            ...packages.filter((p) => p.version !== '1.0-1'),
            { name: 'tilde', version: '1.0.1~beta-1' },
          ]),
        );
        assert.deepEqual(r2.newestChanged, [
          { name: 'tilde', arch: 'amd64', from: '1.0-1', to: '1.0.1~beta-1' },
        ]);
      }));

    it('take an older snapshot that arrives late without un-withdrawing or moving newest back', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(await gen.catalog(AMD64, T1, [{ name: 'curl', version: '7.88.1-10' }]));
        await store.ingestCatalog(
          await gen.catalog(AMD64, T3, [
            { name: 'curl', version: '7.88.1-10+deb12u5' },
            { name: 'wget', version: '1.21.3-1+b2' },
          ]),
        );
        // T2, between the two, arrives last: it still lists 7.88.1-10 and an intermediate version.
        const late = await store.ingestCatalog(
          await gen.catalog(AMD64, T2, [
            { name: 'curl', version: '7.88.1-10' },
            { name: 'curl', version: '7.88.1-10+deb12u1' },
          ]),
        );
        assert.equal(late.latest, false);
        assert.deepEqual(late.newestChanged, []);
        assert.equal(late.withdrawn, 0);
        assert.deepEqual([late.added, late.unchanged], [1, 1]);

        const [curl] = await store.catalogPackage(AMD64, 'curl');
        assert.equal(curl?.newestVersion, '7.88.1-10+deb12u5', 'newest stays with the latest snapshot');
        const v = (version: string) => curl?.versions.find((x) => x.version === version);
        // 7.88.1-10: seen at T1 and T2, withdrawn by T3 (the first snapshot after its last sighting).
        assert.deepEqual(
          [v('7.88.1-10')?.firstSeen, v('7.88.1-10')?.lastSeen, v('7.88.1-10')?.withdrawnAt],
          [ms(T1), ms(T2), ms(T3)],
        );
        // The intermediate version is recorded, and withdrawn (T3 did not list it).
        assert.deepEqual(
          [v('7.88.1-10+deb12u1')?.firstSeen, v('7.88.1-10+deb12u1')?.withdrawnAt],
          [ms(T2), ms(T3)],
        );
        // The latest version is untouched.
        assert.deepEqual(
          [v('7.88.1-10+deb12u5')?.lastSeen, v('7.88.1-10+deb12u5')?.withdrawnAt],
          [ms(T3), undefined],
        );
        // wget, absent from the late snapshot, stays as it was.
        const [wget] = await store.catalogPackage(AMD64, 'wget');
        assert.deepEqual([wget?.newestVersion, wget?.versions[0]?.withdrawnAt], ['1.21.3-1+b2', undefined]);
        assert.equal((await store.latestCatalog(AMD64))?.generatedAt, ms(T3));
      }));

    it('take the same snapshot twice as a no-op', () =>
      withStore(dialect, async ({ store, raw }) => {
        const c = await gen.catalog(AMD64, T1, [{ name: 'bash', version: '5.2.15-2' }]);
        const first = await store.ingestCatalog(c);
        const again = await store.ingestCatalog(c);
        assert.equal(again.duplicate, true);
        assert.equal(again.snapshot.id, first.snapshot.id);
        assert.deepEqual(
          [again.added, again.withdrawn, again.unchanged, again.newestChanged.length],
          [0, 0, 0, 0],
        );
        assert.equal(await countRows(raw(), 'catalog_snapshots'), 1);
        const doc = await store.getCatalogSnapshot({ digest: c.digest });
        assert.deepEqual(doc?.bytes, Buffer.from(c.bytes), 'the exact signed bytes are kept');
        assert.equal(doc?.signature, c.signature);
      }));

    it('store an apk catalog: each version with its APKINDEX checksum and no SHA-256, newest by apk ordering', () =>
      withStore(dialect, async ({ store, raw }) => {
        const r1 = await store.ingestCatalog(
          await gen.catalog(ALPINE, T1, [
            // Code-unit order, dpkg and apk disagree: apk puts 3.3.10-r0 after 3.3.10_rc1-r0 and 3.3.2-r0.
            { name: 'openssl', version: '3.3.2-r0', source: 'openssl' },
            { name: 'openssl', version: '3.3.10_rc1-r0', source: 'openssl' },
            { name: 'openssl', version: '3.3.10-r0', source: 'openssl' },
            { name: 'libcrypto3', version: '3.3.10-r0', source: 'openssl' },
            { name: 'musl', version: '1.2.5-r9' },
            { name: 'musl', version: '1.2.5-r10' },
          ]),
        );
        assert.deepEqual([r1.added, r1.latest, r1.duplicate], [6, true, false]);
        assert.deepEqual(r1.newestChanged.map((c) => `${c.name} ${c.to}`).sort(), [
          'libcrypto3 3.3.10-r0',
          'musl 1.2.5-r10',
          'openssl 3.3.10-r0',
        ]);
        const [openssl] = await store.catalogPackage(ALPINE, 'openssl');
        assert.equal(openssl?.newestVersion, '3.3.10-r0');
        assert.deepEqual(
          openssl?.versions.map((v) => [v.version, v.apkChecksum, v.archiveSha256, v.filename]).sort(),
          ['3.3.10-r0', '3.3.10_rc1-r0', '3.3.2-r0'].map((v) => [
            v,
            apkChecksum('openssl', v, 'x86_64'),
            undefined,
            undefined,
          ]),
        );
        assert.equal((await store.catalogPackage(ALPINE, 'musl'))[0]?.newestVersion, '1.2.5-r10');
        const rows = await raw()
          .selectFrom('catalog_entries')
          .select(['archive_sha256', 'apk_checksum'])
          .execute();
        assert.equal(rows.length, 6);
        assert.ok(
          rows.every((r) => r.archive_sha256 === null && /^Q1[A-Za-z0-9+/]{27}=$/.test(r.apk_checksum ?? '')),
        );

        // A newer snapshot drops 3.3.2-r0: withdrawn and kept, like any other catalog's versions.
        const r2 = await store.ingestCatalog(
          await gen.catalog(ALPINE, T2, [
            { name: 'openssl', version: '3.3.10-r0' },
            { name: 'openssl', version: '3.3.10_rc1-r0' },
            { name: 'musl', version: '1.2.5-r10' },
          ]),
        );
        assert.deepEqual([r2.added, r2.withdrawn, r2.unchanged], [0, 3, 3]);
        const after = await store.catalogPackage(ALPINE, 'openssl');
        assert.deepEqual(
          after[0]?.versions.filter((v) => v.withdrawnAt !== undefined).map((v) => v.version),
          ['3.3.2-r0'],
        );
        // Debian entries still carry their SHA-256, and no apk checksum.
        await store.ingestCatalog(await gen.catalog(AMD64, T1, [{ name: 'bash', version: '5.2.15-2' }]));
        const [bash] = await store.catalogPackage(AMD64, 'bash');
        assert.match(bash?.versions[0]?.archiveSha256 ?? '', /^[0-9a-f]{64}$/);
        assert.equal(bash?.versions[0]?.apkChecksum, undefined);
      }));

    it('refuse a distribution whose version ordering is not implemented, storing nothing', () =>
      withStore(dialect, async ({ store, raw }) => {
        const c = await gen.catalog('slackware/15.0/x86_64', T1, [{ name: 'bash', version: '5.2.026' }]);
        await assert.rejects(store.ingestCatalog(c), (e: unknown) => isStoreError(e, 'UNSUPPORTED'));
        assert.equal(await countRows(raw(), 'catalog_snapshots'), 0);
      }));

    it('leave nothing behind when an ingest fails half-way', () =>
      withStore(dialect, async ({ store, raw, db }) => {
        await store.ingestCatalog(await gen.catalog(AMD64, T1, [{ name: 'bash', version: '5.2.15-2' }]));
        const restore = await injectFailure(raw(), db.dialect, 'catalog_entries');
        await assert.rejects(
          store.ingestCatalog(
            await gen.catalog(AMD64, T2, [
              { name: 'bash', version: '5.2.15-2+b1' },
              { name: 'zsh', version: '5.9-4' },
            ]),
          ),
          /injected failure/,
        );
        await restore();
        const r = raw();
        assert.equal(await countRows(r, 'catalog_snapshots'), 1);
        assert.equal(await countRows(r, 'catalog_packages'), 1, 'the zsh package row was rolled back');
        assert.equal(await countRows(r, 'catalog_entries'), 1);
        const [bash] = await store.catalogPackage(AMD64, 'bash');
        assert.deepEqual([bash?.newestVersion, bash?.versions[0]?.withdrawnAt], ['5.2.15-2', undefined]);
      }));

    it('queue the new newest version of a tracked package', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [{ name: 'openssl', version: '3.0.11-1~deb12u1' }]),
        );
        await store.ingestManifest(
          await gen.manifest(AMD64, { name: 'openssl', version: '3.0.11-1~deb12u1' }),
        );
        assert.deepEqual(
          await store.trackPackages(AMD64, ['openssl']),
          { jobsQueued: 0 },
          'newest already has a manifest',
        );
        const r = await store.ingestCatalog(
          await gen.catalog(AMD64, T2, [
            { name: 'openssl', version: '3.0.13-1~deb12u1' },
            { name: 'untracked', version: '2' },
          ]),
        );
        assert.equal(r.jobsQueued, 1);
        const jobs = await store.listJobs();
        assert.deepEqual(
          jobs.map((j) => [j.name, j.version, j.reason, j.state]),
          [['openssl', '3.0.13-1~deb12u1', 'tracked', 'pending']],
        );
      }));
  });
}
