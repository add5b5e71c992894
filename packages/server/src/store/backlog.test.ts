import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { BACKLOG_PRIORITY } from './backlog.js';
import { TEST_DIALECTS, TestGenerator, withStore } from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';
const T1 = '2026-11-20T00:00:00Z';
const T2 = '2026-11-27T00:00:00Z';

for (const dialect of TEST_DIALECTS) {
  describe(`a platform that tracks its whole catalog (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });

    it('queues every carried version without a manifest, once, behind the jobs clients ask for', () =>
      withStore(
        dialect,
        async ({ store }) => {
          const made = { name: 'bash', version: '5.2.15-2' };
          await store.ingestManifest(await gen.manifest(AMD64, made));
          const result = await store.ingestCatalog(
            await gen.catalog(AMD64, T1, [
              made,
              { name: 'bash', version: '5.2.15-1' },
              { name: 'dpkg', version: '1.21.22' },
              { name: 'base-files', version: '12.4', arch: 'all' },
            ]),
          );
          // bash 5.2.15-2 has its manifest: three versions queued, the `all` one on its own platform.
          assert.equal(result.jobsQueued, 3);
          assert.equal(await store.queueBacklog(AMD64), 0, 'nothing queued twice');

          // A newer catalog queues curl in the backlog; a client then asks for it: it is claimed first.
          await store.ingestCatalog(
            await gen.catalog(AMD64, T2, [{ name: 'curl', version: '7.88.1-10' }, made]),
          );
          await store.lookup(AMD64, [{ name: 'curl', version: '7.88.1-10', arch: 'amd64' }], {
            includeDocuments: false,
          });
          const first = await store.claimJobs('w', [AMD64], 1, 60);
          assert.deepEqual(
            first.map((j) => j.name),
            ['curl'],
          );
          const fleetRow = (await store.fleet()).find((r) => r.platform === AMD64);
          assert.deepEqual(
            fleetRow?.backlog,
            { left: 3, done: 0, dead: 0 },
            'the dashboard shows what is left',
          );
          const rest = await store.claimJobs('w', [AMD64], 10, 60);
          assert.deepEqual(rest.map((j) => `${j.name} ${j.version}`).sort(), [
            'base-files 12.4',
            'bash 5.2.15-1',
            'dpkg 1.21.22',
          ]);
          assert.ok(rest.every((j) => j.reason === 'tracked'));
        },
        { trackAll: [AMD64] },
      ));

    it('queues nothing for a platform that does not track everything', () =>
      withStore(dialect, async ({ store }) => {
        const r = await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [{ name: 'dpkg', version: '1.21.22' }]),
        );
        assert.equal(r.jobsQueued, 0);
        assert.deepEqual(await store.claimJobs('w', [AMD64], 10, 60), []);
        assert.equal(BACKLOG_PRIORITY < 0, true);
      }));
  });
}
