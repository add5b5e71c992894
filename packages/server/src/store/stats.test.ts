import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { TEST_DIALECTS, TestGenerator, withStore } from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';

for (const dialect of TEST_DIALECTS) {
  describe(`store stats (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });

    it('count catalog entries, manifests and jobs per platform, and the database size', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, '2026-11-20T00:00:00Z', [
            { name: 'a', version: '1' },
            { name: 'b', version: '1' },
            { name: 'c', version: '1' },
          ]),
        );
        await store.ingestCatalog(
          await gen.catalog(AMD64, '2026-11-21T00:00:00Z', [
            { name: 'a', version: '2' },
            { name: 'b', version: '1' },
            { name: 'c', version: '1' },
          ]),
        );
        await store.ingestManifest(await gen.manifest(AMD64, { name: 'b', version: '1' }));
        await store.lookup(AMD64, [
          { name: 'a', version: '2', arch: 'amd64' },
          { name: 'c', version: '1', arch: 'amd64' },
        ]);
        const [job] = await store.claimJobs('w', [AMD64], 1, 60);
        await store.failJob(job?.id as number, 'w', 'boom');

        const stats = await store.stats();
        assert.equal(stats.dialect, dialect);
        const amd64 = stats.platforms.find((p) => p.platform === AMD64);
        assert.deepEqual(amd64, {
          platform: AMD64,
          catalogEntries: 3,
          withdrawnEntries: 1,
          catalogSnapshots: 2,
          latestCatalogAt: '2026-11-21T00:00:00.000Z',
          manifests: 1,
          trackedPackages: 2,
          jobs: { pending: 2, retrying: 1, running: 0, done: 0, dead: 0 },
        });
        assert.deepEqual(
          [stats.manifests, stats.manifestFiles, stats.contents, stats.paths, stats.conflicts],
          [1, 3, 3, 3, 0],
        );
        assert.ok(stats.databaseBytes > 10_000, `database size ${stats.databaseBytes}`);
      }));
  });
}
