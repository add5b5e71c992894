import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ServerProcess,
  WorkerProcess,
  containersLabelled,
  createToken,
  lookup,
  newestVersions,
  postgresDatabase,
  sharedTestImage,
  tempDir,
  testKey,
  waitUntil,
  workerArgs,
  workerHome,
  type TestKey,
} from '../testkit/worker-service.js';

/**
 * Scale-out and faults, with real processes: two servers on one PostgreSQL database with two
 * workers (every job done exactly once), and a worker killed with SIGKILL in the middle of a job
 * (its lease expires, another worker finishes the job, nothing is duplicated).
 */

interface AdminJob {
  id: number;
  name: string;
  state: string;
  attempts: number;
  leaseOwner?: string;
}

async function jobs(server: string, adminToken: string): Promise<AdminJob[]> {
  const r = await fetch(`${server}/v1/jobs?limit=1000`, {
    headers: { authorization: `Bearer ${adminToken}` },
  });
  if (!r.ok) throw new Error(`GET /v1/jobs: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { jobs: AdminJob[] }).jobs;
}

describe('scale-out and faults', { timeout: 20 * 60_000 }, () => {
  let dir: string;
  let key: TestKey;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    await sharedTestImage();
    dir = tempDir('service-scale');
    key = await testKey(dir);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('two servers on one PostgreSQL and two workers: every job is done exactly once', async () => {
    const db = postgresDatabase();
    cleanups.push(() => db.drop());
    const tokenFile = createToken(db.url, 'generator', dir);
    const s1 = await new ServerProcess(db.url, key.publicFile).start(0);
    const s2 = await new ServerProcess(db.url, key.publicFile).start(0);
    cleanups.push(
      () => s1.kill('SIGKILL'),
      () => s2.kill('SIGKILL'),
    );

    // Worker A talks to server 1 and syncs the catalog; worker B talks to server 2 only.
    // One package per claim, so that both workers get a share.
    const a = new WorkerProcess(
      workerArgs({ server: s1.url, tokenFile, key, extra: ['--batch-size', '1'] }),
      {
        SYSATTEST_GENERATOR_HOME: workerHome(dir, 'pg-a'),
      },
    );
    cleanups.push(async () => void (await a.stop('SIGKILL')));
    await a.waitFor('catalog-uploaded', 5 * 60_000);
    const b = new WorkerProcess(
      workerArgs({
        server: s2.url,
        tokenFile,
        key,
        extra: ['--batch-size', '1', '--catalog-interval', 'off'],
      }),
      { SYSATTEST_GENERATOR_HOME: workerHome(dir, 'pg-b') },
    );
    cleanups.push(async () => void (await b.stop('SIGKILL')));
    await b.waitFor('worker-start', 30_000);

    const wanted = await newestVersions(s2.url, [
      { name: 'hello', arch: 'amd64' },
      { name: 'tree', arch: 'amd64' },
      { name: 'netbase', arch: 'all' },
      { name: 'dos2unix', arch: 'amd64' },
      { name: 'ed', arch: 'amd64' },
      { name: 'bc', arch: 'amd64' },
    ]);
    const queued = await lookup(s2.url, wanted);
    const jobIds = queued.items.map((i) => i.job?.id).sort();
    assert.equal(new Set(jobIds).size, wanted.length, 'one job per package version');

    await waitUntil(
      'every manifest, through server 1',
      async () => ((await lookup(s1.url, wanted)).items.every((i) => i.status === 'ok') ? true : undefined),
      10 * 60_000,
      1000,
    );
    await a.stop('SIGTERM');
    await b.stop('SIGTERM');

    const completed = [...a.events('job-complete'), ...b.events('job-complete')].map((l) => l.jobId);
    assert.deepEqual([...completed].sort(), jobIds, 'each job completed once, none lost');
    assert.ok(
      a.events('job-complete').length > 0 && b.events('job-complete').length > 0,
      'both workers did work',
    );
    const uploads = [...a.events('manifest-uploaded'), ...b.events('manifest-uploaded')];
    assert.equal(uploads.length, wanted.length, 'one upload per job');
    assert.ok(uploads.every((u) => u.outcome === 'stored'));
    assert.equal(a.events('job-failed').length + b.events('job-failed').length, 0);

    // The database agrees: every job done on its first claim, one manifest each, no conflict.
    assert.equal(
      db.psql(`select count(*) from jobs where state = 'done' and attempts = 1`),
      String(wanted.length),
    );
    assert.equal(db.psql('select count(*) from jobs'), String(wanted.length));
    assert.equal(db.psql('select count(*) from manifests'), String(wanted.length));
    assert.equal(db.psql('select count(*) from conflicts'), '0');
  });

  it('a worker killed with SIGKILL mid-job: its lease expires and another worker finishes the job', async () => {
    const database = path.join(dir, 'kill.sqlite');
    const tokenFile = createToken(database, 'generator', dir);
    const adminToken = fs.readFileSync(createToken(database, 'admin', dir), 'utf8').trim();
    const server = await new ServerProcess(database, key.publicFile).start(0);
    cleanups.push(() => server.kill('SIGKILL'));

    // A short lease: a dead worker's jobs come back within seconds.
    const a = new WorkerProcess(
      workerArgs({ server: server.url, tokenFile, key, extra: ['--lease-seconds', '6'] }),
      {
        SYSATTEST_GENERATOR_HOME: workerHome(dir, 'kill-a'),
      },
    );
    cleanups.push(async () => void (await a.stop('SIGKILL')));
    await a.waitFor('catalog-uploaded', 5 * 60_000);
    const wanted = await newestVersions(server.url, [
      { name: 'hello', arch: 'amd64' },
      { name: 'tree', arch: 'amd64' },
    ]);
    const queued = await lookup(server.url, wanted);
    const jobIds = queued.items.map((i) => i.job?.id).sort();

    // Killed while apt-get runs in its container.
    await a.waitFor('batch-start', 2 * 60_000);
    const aPid = a.child.pid as number;
    await a.stop('SIGKILL');
    const held = await jobs(server.url, adminToken);
    assert.deepEqual(
      held.map((j) => [j.state, j.leaseOwner?.split(':')[1]]),
      jobIds.map(() => ['running', String(aPid)]),
      'the dead worker still holds the leases',
    );

    const b = new WorkerProcess(
      workerArgs({
        server: server.url,
        tokenFile,
        key,
        extra: ['--lease-seconds', '60', '--catalog-interval', 'off'],
      }),
      { SYSATTEST_GENERATOR_HOME: workerHome(dir, 'kill-b') },
    );
    cleanups.push(async () => void (await b.stop('SIGKILL')));
    await waitUntil(
      'both jobs done',
      async () => ((await jobs(server.url, adminToken)).every((j) => j.state === 'done') ? true : undefined),
      5 * 60_000,
      500,
    );
    await b.stop('SIGTERM');

    assert.equal(a.events('manifest-uploaded').length, 0, 'the killed worker uploaded nothing');
    assert.deepEqual(
      b
        .events('job-complete')
        .map((l) => l.jobId)
        .sort(),
      jobIds,
    );
    assert.equal(b.events('manifest-uploaded').length, wanted.length);
    assert.ok(b.events('manifest-uploaded').every((u) => u.outcome === 'stored'));
    const final = await jobs(server.url, adminToken);
    assert.ok(
      final.every((j) => j.state === 'done' && j.attempts === 2),
      `one claim by each worker: ${JSON.stringify(final)}`,
    );
    // The killed worker's container was removed by the next worker on this host; it left no
    // temporary directory (manifests go to the server from memory).
    assert.deepEqual(containersLabelled(`sysattest.worker-pid=${aPid}`), []);
    assert.deepEqual(
      fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(`sysattest-worker-${aPid}-`)),
      [],
    );
    const answer = await lookup(server.url, wanted);
    assert.ok(answer.items.every((i) => i.status === 'ok'));
  });
});
