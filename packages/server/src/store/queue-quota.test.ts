import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import type { LookupItem, LookupItemResult } from './lookup.js';
import type { QueuePolicy } from './queue-quota.js';
import { isStoreError } from './store-error.js';
import { TEST_DIALECTS, TestGenerator, countRows, withStore, type TestStore } from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';
const T1 = '2026-11-20T00:00:00Z';

/** `name: status[ job|deferred reason]` */
function said(r: LookupItemResult): string {
  if (r.status !== 'pending') return `${r.name}: ${r.status}`;
  return 'job' in r ? `${r.name}: pending job` : `${r.name}: pending ${r.deferred}`;
}

const quota = (client: string, max = 3): QueuePolicy => ({ kind: 'quota', client, max, windowSeconds: 3600 });

for (const dialect of TEST_DIALECTS) {
  describe(`lookup queue policies (${dialect})`, () => {
    let gen: TestGenerator;
    const packages = Array.from({ length: 12 }, (_, i) => ({ name: `pkg${i}`, version: '1.0-1' }));
    const items: LookupItem[] = packages.map((p) => ({ ...p, arch: 'amd64' }));
    before(async () => {
      gen = await TestGenerator.create();
    });

    async function seed(t: TestStore): Promise<void> {
      await t.store.ingestCatalog(
        await gen.catalog(AMD64, T1, [...packages, { name: 'tzdata', version: '2024a-1', arch: 'all' }]),
      );
      await t.store.ingestManifest(await gen.manifest(AMD64, packages[11] as (typeof packages)[number]));
    }

    it('an anonymous client queues and tracks at most its quota per window; the rest stays pending, deferred', () =>
      withStore(dialect, async (t) => {
        await seed(t);
        const first = await t.store.lookup(AMD64, items.slice(0, 5), { queue: quota('203.0.113.7') });
        assert.deepEqual(first.items.map(said), [
          'pkg0: pending job',
          'pkg1: pending job',
          'pkg2: pending job',
          'pkg3: pending quota',
          'pkg4: pending quota',
        ]);
        assert.deepEqual(first.deferred, { reason: 'quota', jobs: 2, tracked: 2 });
        assert.equal(first.quotaReached, true);
        assert.equal(await countRows(t.raw(), 'jobs'), 3);
        assert.equal(await countRows(t.raw(), 'tracked_packages'), 3);

        // Used up: nothing more this window, but the answers stay valid (jobs that exist, manifests).
        const again = await t.store.lookup(AMD64, [...items.slice(0, 6), items[11] as LookupItem], {
          queue: quota('203.0.113.7'),
        });
        assert.deepEqual(again.items.map(said), [
          'pkg0: pending job',
          'pkg1: pending job',
          'pkg2: pending job',
          'pkg3: pending quota',
          'pkg4: pending quota',
          'pkg5: pending quota',
          'pkg11: ok',
        ]);
        assert.deepEqual(again.deferred, { reason: 'quota', jobs: 3, tracked: 4 });
        assert.equal(again.quotaReached, undefined, 'reached once per window');
        assert.equal(await countRows(t.raw(), 'jobs'), 3);

        // Another client has its own quota.
        const other = await t.store.lookup(AMD64, items.slice(3, 5), { queue: quota('198.51.100.1') });
        assert.deepEqual(other.items.map(said), ['pkg3: pending job', 'pkg4: pending job']);
        assert.equal(other.deferred, undefined);

        // The next window starts afresh, and the past window's counts are deleted.
        t.clock.advance(3600);
        const later = await t.store.lookup(AMD64, items.slice(5, 9), { queue: quota('203.0.113.7') });
        assert.deepEqual(later.items.map(said), [
          'pkg5: pending job',
          'pkg6: pending job',
          'pkg7: pending job',
          'pkg8: pending quota',
        ]);
        const rows = await t.raw().selectFrom('queue_quotas').selectAll().execute();
        assert.deepEqual(
          rows.map((r) => [r.client, Number(r.jobs), Number(r.tracked)]),
          [['203.0.113.7', 3, 3]],
        );
      }));

    it('closed: an anonymous lookup is answered but queues and tracks nothing', () =>
      withStore(dialect, async (t) => {
        await seed(t);
        await t.store.lookup(AMD64, items.slice(0, 1));
        const platforms = await countRows(t.raw(), 'platforms');
        // Its manifest would go to debian/bookworm/all, a platform no row names yet.
        const all = { name: 'tzdata', version: '2024a-1', arch: 'all' };
        const r = await t.store.lookup(AMD64, [...items.slice(0, 3), items[11] as LookupItem, all], {
          queue: { kind: 'closed' },
        });
        assert.equal(await countRows(t.raw(), 'platforms'), platforms, 'not even a platform row');
        assert.deepEqual(r.items.map(said), [
          'pkg0: pending job',
          'pkg1: pending token-required',
          'pkg2: pending token-required',
          'pkg11: ok',
          'tzdata: pending token-required',
        ]);
        assert.deepEqual(r.deferred, { reason: 'token-required', jobs: 3, tracked: 4 });
        assert.equal(r.quotaReached, undefined);
        assert.equal(await countRows(t.raw(), 'jobs'), 1);
        assert.equal(await countRows(t.raw(), 'tracked_packages'), 1);
        assert.equal(await countRows(t.raw(), 'queue_quotas'), 0);
      }));

    it('concurrent lookups of one client stay within its quota together', () =>
      withStore(dialect, async (t) => {
        await seed(t);
        const results = await Promise.all(
          items
            .slice(0, 10)
            .map((item) => t.store.lookup(AMD64, [item], { queue: quota('2001:db8::/64', 4) })),
        );
        const queued = results.filter((r) => r.items[0] !== undefined && 'job' in r.items[0]).length;
        assert.equal(queued, 4);
        assert.equal(await countRows(t.raw(), 'jobs'), 4);
        assert.equal(await countRows(t.raw(), 'tracked_packages'), 4);
        assert.equal(results.filter((r) => r.quotaReached === true).length, 1);
      }));

    it('refuse a malformed policy', () =>
      withStore(dialect, async (t) => {
        for (const bad of [
          { kind: 'quota', client: '', max: 1, windowSeconds: 60 },
          { kind: 'quota', client: 'a', max: -1, windowSeconds: 60 },
          { kind: 'quota', client: 'a', max: 1, windowSeconds: 0 },
        ] as QueuePolicy[]) {
          await assert.rejects(t.store.lookup(AMD64, items.slice(0, 1), { queue: bad }), (e: unknown) =>
            isStoreError(e, 'INVALID'),
          );
        }
      }));
  });
}
