import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { signManifest } from '@sysattest/core';
import { openStore, type GenerationJob } from '../store/index.js';
import { TEST_DIALECTS, TestGenerator, createTestDatabase, type TestDatabase } from '../testkit/store.js';
import { startServer, type RunningServer } from '../testkit/server-process.js';

/**
 * Two real `sysattest-server serve` processes on one fresh PostgreSQL database, and several
 * generation workers claiming over HTTP from both at once: every job is done, each by exactly one
 * claim, and jobs abandoned by a worker that died are claimed again once their lease runs out.
 * The two share one anonymous queue quota (it is counted in the database) and, given one session
 * secret file, accept each other's dashboard sessions.
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
    let dir: string;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-multi-server-'));
      const secretFile = path.join(dir, 'dashboard-session.key');
      fs.writeFileSync(secretFile, Buffer.alloc(32, 4), { mode: 0o600 });
      const config = path.join(dir, 'server.json');
      fs.writeFileSync(
        config,
        JSON.stringify({
          sessionSecretFile: secretFile,
          anonymousQueueQuota: { max: 3, windowSeconds: 3600 },
        }),
      );
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
        [0, 1].map(() =>
          startServer(['--port', '0', '--database', db.url, '--rate-limit', 'off', '--config', config]),
        ),
      );
    });

    after(async () => {
      for (const s of servers) await s.stop();
      await db?.drop();
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
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

    it('one anonymous queue quota across both servers; a token lookup queues the rest', async () => {
      const [a, b] = servers as [RunningServer, RunningServer];
      const store = await openStore(db.url);
      const extra = Array.from({ length: 8 }, (_, i) => ({ name: `extra-${i}`, version: '1.0-1' }));
      let reader: string;
      try {
        const packages = Array.from({ length: PACKAGES }, (_, i) => ({
          name: `pkg-${i}`,
          version: `1.${i}-1`,
        }));
        await store.ingestCatalog(await gen.catalog(AMD64, '2026-11-21T00:00:00Z', [...packages, ...extra]));
        reader = (await store.createToken('reader', 'verify timer')).secret;
      } finally {
        await store.close();
      }
      const lookup = async (server: RunningServer, names: string[], token?: string) => {
        const res = await fetch(`${server.url}/v1/lookup`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          },
          body: JSON.stringify({
            platform: AMD64,
            items: names.map((name) => ({ name, version: '1.0-1', arch: 'amd64' })),
          }),
        });
        assert.equal(res.status, 200);
        const body = (await res.json()) as { items: { status: string; job?: unknown; deferred?: string }[] };
        return body.items.map((i) => (i.job !== undefined ? 'job' : (i.deferred ?? i.status)));
      };
      const names = extra.map((p) => p.name);
      assert.deepEqual(await lookup(a, names.slice(0, 2)), ['job', 'job']);
      assert.deepEqual(
        await lookup(b, names.slice(2, 5)),
        ['job', 'quota', 'quota'],
        'B counts what A queued',
      );
      assert.deepEqual(await lookup(a, names.slice(5)), ['quota', 'quota', 'quota']);
      assert.match(b.stderr(), /anonymous client 127\.0\.0\.1 reached its queue quota/);
      const metrics = await (await fetch(`${a.url}/metrics`)).text();
      assert.match(metrics, /^sysattest_lookup_deferred_total\{reason="quota",what="jobs"\} 3$/m);
      // A reader token is not limited by the anonymous quota.
      assert.deepEqual(await lookup(b, names, reader), Array<string>(8).fill('job'));
    });

    it('a dashboard session made on one server is accepted by the other (one secret file)', async () => {
      const [a, b] = servers as [RunningServer, RunningServer];
      const form = await fetch(`${a.url}/dashboard/login`);
      const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] as string;
      const cookie = (form.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
      const res = await fetch(`${a.url}/dashboard/login`, {
        method: 'POST',
        redirect: 'manual',
        headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf, token: admin, next: '/dashboard/admin' }).toString(),
      });
      assert.equal(res.status, 303);
      const session = res.headers.getSetCookie().find((c) => c.startsWith('sysattest_session='));
      const page = await fetch(`${b.url}/dashboard/admin`, {
        redirect: 'manual',
        headers: { cookie: String(session).split(';')[0] as string },
      });
      assert.equal(page.status, 200);
    });
  },
);
