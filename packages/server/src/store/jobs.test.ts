import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { before, describe, it } from 'node:test';
import type { GenerationJob } from './jobs.js';
import { isStoreError } from './store-error.js';
import { openStore, type Store } from './store.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  createTestDatabase,
  runNode,
  withStore,
  type TestPackage,
} from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';
const ARM64 = 'debian/bookworm/arm64';
const T1 = '2026-11-20T00:00:00Z';
const lost = (e: unknown): boolean => isStoreError(e, 'LEASE_LOST');

/** A catalog of `n` packages and a lookup of all of them: n pending jobs. */
async function queue(store: Store, gen: TestGenerator, n: number, platform = AMD64): Promise<TestPackage[]> {
  const packages = Array.from({ length: n }, (_, i) => ({ name: `lib${i}`, version: `1.${i}-1` }));
  await store.ingestCatalog(await gen.catalog(platform, T1, packages));
  const arch = platform.split('/')[2] as string;
  await store.lookup(
    platform,
    packages.map((p) => ({ ...p, arch })),
    { includeDocuments: false },
  );
  return packages;
}

for (const dialect of TEST_DIALECTS) {
  describe(`generation jobs (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });
    const policy = { jobs: { maxAttempts: 3, backoffBaseSeconds: 10, backoffMaxSeconds: 25 } };

    it('are claimed under a lease, renewed by heartbeats, and done when their manifest arrives', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          const [pkg] = await queue(store, gen, 1);
          const [job] = await store.claimJobs('worker-a', [AMD64], 10, 60);
          assert.ok(job && pkg);
          assert.deepEqual([job.state, job.attempts, job.leaseOwner], ['running', 1, 'worker-a']);
          assert.equal(job.leaseExpiresAt, new Date(clock.now().getTime() + 60_000).toISOString());
          assert.deepEqual(
            await store.claimJobs('worker-b', [AMD64], 10, 60),
            [],
            'a leased job is not claimable',
          );

          clock.advance(50);
          const renewed = await store.heartbeat(job.id, 'worker-a');
          assert.equal(renewed.leaseExpiresAt, new Date(clock.now().getTime() + 60_000).toISOString());
          clock.advance(50);
          assert.deepEqual(await store.claimJobs('worker-b', [AMD64], 10, 60), [], 'the heartbeat kept it');
          await assert.rejects(store.heartbeat(job.id, 'worker-b'), lost);

          await assert.rejects(store.completeJob(job.id, 'worker-a'), (e: unknown) =>
            isStoreError(e, 'INVALID'),
          );
          await store.ingestManifest(await gen.manifest(AMD64, pkg));
          const done = await store.completeJob(job.id, 'worker-a');
          assert.deepEqual([done.state, done.leaseOwner], ['done', undefined]);
          assert.ok(done.manifestId !== undefined && done.completedAt !== undefined);
          assert.equal(
            (await store.completeJob(job.id, 'worker-a')).state,
            'done',
            'completing again is a no-op',
          );
          await assert.rejects(store.failJob(job.id, 'worker-a', 'too late'), lost);
          await assert.rejects(store.heartbeat(999, 'worker-a'), (e: unknown) =>
            isStoreError(e, 'NOT_FOUND'),
          );
        },
        policy,
      ));

    it('retry failures with exponential backoff, then die; an operator can requeue', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          await queue(store, gen, 1);
          const claim = async (): Promise<GenerationJob | undefined> =>
            (await store.claimJobs('w', [AMD64], 1, 60))[0];

          let job = await claim();
          assert.ok(job);
          const id = job.id;
          let failed = await store.failJob(id, 'w', 'apt-get install failed: 404');
          assert.deepEqual(
            [failed.state, failed.attempts, failed.lastError],
            ['pending', 1, 'apt-get install failed: 404'],
          );
          assert.equal(failed.nextRunAt, new Date(clock.now().getTime() + 10_000).toISOString());
          assert.equal(await claim(), undefined, 'not before the backoff');
          clock.advance(10);
          job = await claim();
          assert.equal(job?.attempts, 2);
          failed = await store.failJob(id, 'w', 'again');
          assert.equal(failed.nextRunAt, new Date(clock.now().getTime() + 20_000).toISOString(), 'doubled');
          clock.advance(20);
          job = await claim();
          assert.equal(job?.attempts, 3);
          failed = await store.failJob(id, 'w', 'and again');
          assert.deepEqual([failed.state, failed.attempts], ['dead', 3]);
          clock.advance(3600);
          assert.equal(await claim(), undefined, 'a dead job is never claimed');
          assert.equal((await store.stats()).platforms.find((p) => p.platform === AMD64)?.jobs.dead, 1);
          assert.deepEqual(
            (await store.listJobs({ state: 'dead' })).map((j) => j.id),
            [id],
          );

          const requeued = await store.requeue(id);
          assert.deepEqual([requeued.state, requeued.attempts], ['pending', 0]);
          assert.equal((await claim())?.id, id);
          await assert.rejects(store.requeue(12345), (e: unknown) => isStoreError(e, 'NOT_FOUND'));
        },
        policy,
      ));

    it('cap the backoff', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          await queue(store, gen, 1);
          const [job] = await store.claimJobs('w', [AMD64], 1, 60);
          await store.requeue(job?.id as number);
          // Three failures in a row with maxAttempts 5: 10, 20, then 25 (capped) seconds.
          const waits: number[] = [];
          for (let i = 0; i < 3; i++) {
            const [j] = await store.claimJobs('w', [AMD64], 1, 60);
            const f = await store.failJob(j?.id as number, 'w', 'x');
            waits.push((Date.parse(f.nextRunAt) - clock.now().getTime()) / 1000);
            clock.advance(30);
          }
          assert.deepEqual(waits, [10, 20, 25]);
        },
        { jobs: { maxAttempts: 5, backoffBaseSeconds: 10, backoffMaxSeconds: 25 } },
      ));

    it('give the job of a worker whose lease expired to another worker, which finishes it', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          const [pkg] = await queue(store, gen, 1);
          const [job] = await store.claimJobs('killed-worker', [AMD64], 1, 30);
          assert.ok(job && pkg);
          clock.advance(31); // no heartbeat: the worker died
          const [again] = await store.claimJobs('worker-b', [AMD64], 1, 30);
          assert.deepEqual([again?.id, again?.leaseOwner, again?.attempts], [job.id, 'worker-b', 2]);
          // The dead worker comes back: it no longer holds the job.
          await assert.rejects(store.heartbeat(job.id, 'killed-worker'), lost);
          await assert.rejects(store.failJob(job.id, 'killed-worker', 'x'), lost);
          await assert.rejects(store.completeJob(job.id, 'killed-worker'), lost);
          await store.ingestManifest(await gen.manifest(AMD64, pkg));
          assert.equal((await store.completeJob(job.id, 'worker-b')).state, 'done');
        },
        policy,
      ));

    it('let a worker whose lease expired unclaimed renew it', () =>
      withStore(dialect, async ({ store, clock }) => {
        await queue(store, gen, 1);
        const [job] = await store.claimJobs('slow-worker', [AMD64], 1, 30);
        clock.advance(45);
        const renewed = await store.heartbeat(job?.id as number, 'slow-worker');
        assert.equal(renewed.leaseOwner, 'slow-worker');
        assert.deepEqual(await store.claimJobs('other', [AMD64], 1, 30), []);
      }));

    it('kill a job whose lease expires on its last attempt', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          await queue(store, gen, 1);
          for (let i = 0; i < 3; i++) {
            assert.equal((await store.claimJobs(`w${i}`, [AMD64], 1, 30)).length, 1);
            clock.advance(31);
          }
          assert.deepEqual(await store.claimJobs('w3', [AMD64], 1, 30), []);
          const [dead] = await store.listJobs();
          assert.deepEqual([dead?.state, dead?.attempts], ['dead', 3]);
          assert.match(dead?.lastError ?? '', /lease expired/);
        },
        policy,
      ));

    it('give workers only the platforms they serve, oldest first, at most `max`', () =>
      withStore(dialect, async ({ store }) => {
        await queue(store, gen, 5, AMD64);
        await queue(store, gen, 2, ARM64);
        assert.deepEqual(await store.claimJobs('w', ['fedora/41/x86_64'], 10, 60), []);
        const arm = await store.claimJobs('arm', [ARM64], 10, 60);
        assert.deepEqual(
          arm.map((j) => j.platform),
          [ARM64, ARM64],
        );
        const first = await store.claimJobs('amd', [AMD64], 3, 60);
        assert.deepEqual(
          first.map((j) => j.name),
          ['lib0', 'lib1', 'lib2'],
        );
        assert.equal((await store.claimJobs('amd', [AMD64, ARM64], 10, 60)).length, 2);
      }));

    it('close, instead of handing out, a job whose manifest arrived while it was being queued', () =>
      withStore(dialect, async ({ store, raw, clock }) => {
        const [pkg] = await queue(store, gen, 1);
        assert.ok(pkg);
        const [job] = await store.listJobs();
        await store.ingestManifest(await gen.manifest(AMD64, pkg));
        // The race: the job row is (re)written as pending after the manifest completed it.
        await raw()
          .updateTable('jobs')
          .set({ state: 'pending', manifest_id: null, completed_at: null })
          .where('id', '=', job?.id as number)
          .execute();
        clock.advance(1);
        assert.deepEqual(await store.claimJobs('w', [AMD64], 5, 60), []);
        const closed = await store.getJob(job?.id as number);
        assert.equal(closed?.state, 'done');
        assert.ok(closed?.manifestId !== undefined);
      }));

    it('refuse malformed claims (INVALID)', () =>
      withStore(dialect, async ({ store }) => {
        const invalid = (e: unknown): boolean => isStoreError(e, 'INVALID');
        await assert.rejects(store.claimJobs('', [AMD64], 1, 60), invalid);
        await assert.rejects(store.claimJobs('w', [], 1, 60), invalid);
        await assert.rejects(store.claimJobs('w', ['debian'], 1, 60), invalid);
        await assert.rejects(store.claimJobs('w', [AMD64], 0, 60), invalid);
        await assert.rejects(store.claimJobs('w', [AMD64], 1, 0), invalid);
        await assert.rejects(store.claimJobs('w', [AMD64], 1.5, 60), invalid);
        await assert.rejects(store.heartbeat(-1, 'w'), invalid);
        await assert.rejects(store.listJobs({ state: 'nope' as never }), invalid);
      }));

    it('are claimed exactly once by two worker processes draining the queue together', () =>
      withStore(dialect, async ({ store, db }) => {
        const n = 120;
        await queue(store, gen, n);
        const env = {
          SYSATTEST_TEST_SECRET_KEY: gen.armoredSecretKey,
          SYSATTEST_TEST_PUBLIC_KEY: gen.armoredPublicKey,
        };
        const runs = await Promise.all(
          ['proc-1', 'proc-2'].map(
            (w) => runNode('./store-worker.js', ['drain', db.url, w, AMD64], env).done,
          ),
        );
        const claimed: number[] = [];
        for (const run of runs) {
          assert.equal(run.code, 0, run.stderr);
          claimed.push(...(JSON.parse(run.stdout) as { claimed: number[] }).claimed);
        }
        assert.equal(claimed.length, n, 'no job claimed twice');
        assert.equal(new Set(claimed).size, n, 'no job lost');
        for (const run of runs) {
          assert.ok(
            (JSON.parse(run.stdout) as { claimed: number[] }).claimed.length > 0,
            'both processes worked',
          );
        }
        const jobs = await store.listJobs({ limit: 1000 });
        assert.deepEqual(new Set(jobs.map((j) => j.state)), new Set(['done']));
        assert.ok(jobs.every((j) => j.attempts === 1));
        assert.equal((await store.stats()).manifests, n);
      }));

    it('give the jobs of a killed worker process to another once the lease runs out', async () => {
      // Real time here: the worker process has its own clock.
      const db = await createTestDatabase(dialect);
      const store = await openStore(db.url);
      try {
        await queue(store, gen, 3);
        const { child, done } = runNode('./store-worker.js', ['claim-and-hang', db.url, 'doomed', AMD64]);
        const claimed = await new Promise<number[]>((resolve, reject) => {
          let out = '';
          child.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('\n')) resolve((JSON.parse(out) as { claimed: number[] }).claimed);
          });
          child.on('close', () => reject(new Error('the worker exited before claiming')));
        });
        assert.equal(claimed.length, 3);
        child.kill('SIGKILL');
        await done;
        assert.deepEqual(await store.claimJobs('survivor', [AMD64], 10, 60), [], 'the lease still holds');
        await sleep(1100);
        const taken = await store.claimJobs('survivor', [AMD64], 10, 60);
        assert.deepEqual(taken.map((j) => j.id).sort(), [...claimed].sort());
        assert.ok(taken.every((j) => j.attempts === 2 && j.leaseOwner === 'survivor'));
      } finally {
        await store.close();
        await db.drop();
      }
    });

    if (dialect === 'postgres') {
      it('are claimed exactly once by two pools claiming concurrently (for update skip locked)', async () => {
        const db = await createTestDatabase(dialect);
        const a = await openStore(db.url, { poolSize: 8 });
        const b = await openStore(db.url, { poolSize: 8 });
        try {
          const n = 400;
          await queue(a, gen, n);
          const claimLoop = async (store: Store, worker: string): Promise<number[]> => {
            const mine: number[] = [];
            for (;;) {
              const jobs = await store.claimJobs(worker, [AMD64], 3, 600);
              if (jobs.length === 0) return mine;
              mine.push(...jobs.map((j) => j.id));
            }
          };
          // Eight concurrent claimers per pool.
          const results = await Promise.all(
            Array.from({ length: 16 }, (_, i) => claimLoop(i % 2 === 0 ? a : b, `worker-${i}`)),
          );
          const all = results.flat();
          assert.equal(all.length, n, 'every job claimed once, none twice');
          assert.equal(new Set(all).size, n);
          assert.ok(results.filter((r) => r.length > 0).length > 2, 'claimers ran concurrently');
          const jobs = await a.listJobs({ state: 'running', limit: 1000 });
          assert.equal(jobs.length, n);
          assert.ok(jobs.every((j) => j.attempts === 1));
        } finally {
          await a.close();
          await b.close();
          await db.drop();
        }
      });
    }
  });
}
