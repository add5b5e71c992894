import { strict as assert } from 'node:assert';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { signManifest } from '@sysattest/core';
import { openStore, type GenerationJob } from '../store/index.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  createTestDatabase,
  type TestDatabase,
} from '../store/store-testkit.js';
import { startServer, type RunningServer } from '../serve-testkit.js';

/**
 * Two real `sysattest-server serve` processes on one fresh PostgreSQL database, and several
 * generation workers claiming over HTTP from both at once: every job is done, each by exactly one
 * claim, and jobs abandoned by a worker that died are claimed again once their lease runs out.
 */

const AMD64 = 'debian/bookworm/amd64';
const PACKAGES = 60;
const WORKERS = 6;
const ABANDONED_LEASE_SECONDS = 1;

describe(
  'several server processes on one PostgreSQL database',
  { skip: !TEST_DIALECTS.includes('postgres') },
  () => {
    let db: TestDatabase;
    let servers: RunningServer[] = [];
    let gen: TestGenerator;
    let secret: string;
    let admin: string;

    before(async () => {
      db = await createTestDatabase('postgres');
      gen = await TestGenerator.create('multi-server generator');
      const store = await openStore(db.url);
      try {
        await store.addTrustedKey(gen.armoredPublicKey);
        secret = (await store.createToken('generator', 'workers')).secret;
        admin = (await store.createToken('admin', 'operator')).secret;
        const packages = Array.from({ length: PACKAGES }, (_, i) => ({
          name: `pkg-${i}`,
          version: `1.${i}-1`,
        }));
        await store.ingestCatalog(await gen.catalog(AMD64, '2026-11-20T00:00:00Z', packages));
        const { jobsQueued } = await store.trackPackages(
          AMD64,
          packages.map((p) => p.name),
        );
        assert.equal(jobsQueued, PACKAGES);
      } finally {
        await store.close();
      }
      servers = await Promise.all(
        [0, 1].map(() => startServer(['--port', '0', '--database', db.url, '--rate-limit', 'off'])),
      );
    });

    after(async () => {
      for (const s of servers) await s.stop();
      await db?.drop();
    });

    it('every job is claimed exactly once by the live workers; none is lost', async () => {
      const call = async <T>(server: RunningServer, path: string, body: unknown): Promise<T> => {
        const res = await fetch(`${server.url}${path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const text = await res.text();
        assert.ok(res.ok, `${path}: ${res.status} ${text}`);
        return JSON.parse(text) as T;
      };
      const [a, b] = servers as [RunningServer, RunningServer];

      // A worker that claims five jobs with a 1-second lease, then dies.
      const abandoned = (
        await call<{ jobs: GenerationJob[] }>(a, '/v1/jobs/claim', {
          workerId: 'crashed',
          platforms: [AMD64],
          max: 5,
          leaseSeconds: ABANDONED_LEASE_SECONDS,
        })
      ).jobs.map((j) => j.id);
      assert.equal(abandoned.length, 5);

      const claims: { worker: string; job: number }[] = [];
      let done = 0;
      const deadline = Date.now() + 60_000;
      const worker = async (n: number): Promise<void> => {
        const server = n % 2 === 0 ? a : b;
        const workerId = `worker-${n}`;
        while (done < PACKAGES && Date.now() < deadline) {
          const { jobs } = await call<{ jobs: GenerationJob[] }>(server, '/v1/jobs/claim', {
            workerId,
            platforms: [AMD64],
            max: 2,
            leaseSeconds: 300,
          });
          if (jobs.length === 0) {
            await sleep(50);
            continue;
          }
          for (const job of jobs) {
            claims.push({ worker: workerId, job: job.id });
            const content = gen.manifestContent(job.targetPlatform, {
              name: job.name,
              version: job.version,
              arch: job.arch,
            });
            const signed = await signManifest(content, gen.key);
            // Upload to either server: they share the database.
            await call(n % 3 === 0 ? b : a, '/v1/manifests', {
              manifest: Buffer.from(signed.bytes).toString('base64'),
              signature: signed.signature,
            });
            const completed = await call<{ job: GenerationJob }>(server, `/v1/jobs/${job.id}/complete`, {
              workerId,
            });
            assert.equal(completed.job.state, 'done');
            done++;
          }
        }
      };
      await Promise.all(Array.from({ length: WORKERS }, (_, n) => worker(n)));

      const ids = claims.map((c) => c.job);
      assert.equal(new Set(ids).size, ids.length, 'a job was claimed twice by live workers');
      assert.equal(ids.length, PACKAGES, `${ids.length} claims for ${PACKAGES} jobs`);
      for (const id of abandoned) assert.ok(ids.includes(id), `abandoned job ${id} was never claimed again`);
      assert.ok(new Set(claims.map((c) => c.worker)).size > 1, 'only one worker got work');

      const list = await fetch(`${b.url}/v1/jobs?limit=1000`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      const jobs = ((await list.json()) as { jobs: GenerationJob[] }).jobs;
      assert.equal(jobs.length, PACKAGES);
      for (const j of jobs) {
        assert.equal(j.state, 'done', `job ${j.id} is ${j.state}`);
        assert.equal(j.attempts, abandoned.includes(j.id) ? 2 : 1, `job ${j.id} attempts`);
      }
      for (const s of servers) assert.doesNotMatch(s.stderr(), /failed/);
    });
  },
);
