import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TrustedKeyring, verifyManifest } from '@sysattest/core';
import {
  PLATFORM,
  ServerProcess,
  WorkerProcess,
  createToken,
  lookup,
  newestVersions,
  sharedTestImage,
  tempDir,
  testKey,
  waitUntil,
  workerArgs,
  workerHome,
  type TestKey,
} from '../testkit/worker-service.js';

/**
 * End to end, all real: a server on a fresh SQLite file and a worker process on the shared
 * bookworm image. Empty database → the worker syncs the catalog → a client's lookup queues jobs →
 * the worker generates and uploads → the lookup returns manifests that verify against the
 * generator key. The server is killed and restarted while the worker waits for work: the worker
 * reconnects by itself. A SIGTERM while jobs run lets them finish before the worker exits.
 */

// hello: plain amd64 files; jq: pulls dependencies it must not make manifests for; netbase:
// architecture-independent (its manifest lands on debian/bookworm/all).
const PACKAGES = [
  { name: 'hello', arch: 'amd64' },
  { name: 'jq', arch: 'amd64' },
  { name: 'netbase', arch: 'all' },
];

describe('service loop end to end (server on SQLite + one worker)', { timeout: 15 * 60_000 }, () => {
  let dir: string;
  let key: TestKey;
  let server: ServerProcess;
  let worker: WorkerProcess;

  before(async () => {
    await sharedTestImage();
    dir = tempDir('service-e2e');
    key = await testKey(dir);
  });

  after(async () => {
    await worker?.stop('SIGKILL');
    await server?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('goes from an empty database to verified manifests, triggered by a client lookup', async () => {
    const database = path.join(dir, 'server.sqlite');
    const tokenFile = createToken(database, 'generator', dir);
    server = await new ServerProcess(database, key.publicFile).start(0);

    // Before any catalog, the server knows nothing of the platform and queues nothing.
    const before = await lookup(server.url, [{ name: 'hello', version: '2.10-3', arch: 'amd64' }]);
    assert.equal(before.items[0]?.status, 'unknown-platform');

    worker = new WorkerProcess(
      workerArgs({ server: server.url, tokenFile, key, extra: ['--lease-seconds', '60'] }),
      { SYSATTEST_GENERATOR_HOME: workerHome(dir, 'worker') },
    );
    const synced = await worker.waitFor('catalog-uploaded', 5 * 60_000);
    assert.equal(synced.platform, PLATFORM);
    assert.ok((synced.packages as number) > 50_000, `a whole bookworm catalog: ${synced.packages} versions`);
    assert.equal(synced.jobsQueued, 0, 'an empty server tracks nothing yet');
    // Idle: the worker is polling and has claimed nothing.
    assert.equal(worker.events('claimed').length, 0);

    // The server restarts (killed outright) while the worker polls: it must reconnect on its own.
    const port = server.port;
    await server.kill('SIGKILL');
    await worker.waitFor('server-unreachable', 30_000);
    await server.start(port);
    await worker.waitFor('server-reachable', 90_000);

    // The client's request is what queues the generation.
    const wanted = await newestVersions(server.url, PACKAGES);
    const notInCatalog = { name: 'sysattest-no-such-package', version: '1.0', arch: 'amd64' };
    const queued = await lookup(server.url, [...wanted, notInCatalog]);
    for (const item of queued.items.slice(0, wanted.length)) {
      assert.equal(item.status, 'pending', `${item.name} ${item.version} is queued`);
    }
    assert.equal(
      queued.items[wanted.length]?.status,
      'not-in-catalog',
      'a package the catalog lacks is never queued',
    );
    const jobIds = queued.items.slice(0, wanted.length).map((i) => i.job?.id);

    // SIGTERM while the jobs are being generated: the worker claims nothing more, finishes and
    // uploads what it holds, and exits 0.
    await worker.waitFor('job-start', 60_000);
    worker.child.kill('SIGTERM');
    assert.equal(await worker.exited(), 0, worker.stderr.slice(-2000));
    const stopping = worker.lines.findIndex((l) => l.event === 'stopping');
    assert.ok(stopping >= 0);
    assert.equal(worker.events('claimed').length, 1, 'one claim, before the signal');

    const answer = await waitUntil(
      'every manifest',
      async () => {
        const r = await lookup(server.url, wanted);
        return r.items.every((i) => i.status === 'ok') ? r : undefined;
      },
      30_000,
      500,
    );
    const keyring = await TrustedKeyring.fromArmored(key.publicKey);
    for (const [i, item] of answer.items.entries()) {
      const m = item.manifest;
      assert.ok(m?.bytes && m.signature, `${item.name}: the lookup carries the signed manifest`);
      const verified = await verifyManifest(Buffer.from(m.bytes, 'base64'), m.signature, keyring);
      assert.equal(verified.signerFingerprint, key.fingerprint);
      assert.equal(verified.content.package.name, wanted[i]?.name);
      assert.equal(verified.content.package.version, wanted[i]?.version);
      assert.equal(verified.content.platform, item.arch === 'all' ? 'debian/bookworm/all' : PLATFORM);
      assert.ok(
        verified.content.entries.some((e) => e.type === 'file'),
        `${item.name} has files`,
      );
    }
    // Each job was completed once, by this worker, after one upload of its manifest.
    const completed = worker.events('job-complete').map((l) => l.jobId);
    assert.deepEqual([...completed].sort(), [...jobIds].sort());
    const uploads = worker.events('manifest-uploaded');
    assert.equal(uploads.length, wanted.length);
    assert.ok(uploads.every((u) => u.outcome === 'stored'));
    // jq's dependencies (libjq1, libonig5) were installed but not made into manifests.
    assert.ok(!uploads.some((u) => u.package === 'libjq1'));
    // One request per manifest: its upload, which completes the job in the server's transaction
    // (no `complete` after it; no heartbeat before it while the lease surely runs).
    const requests = await requestCounts(server.url);
    assert.equal(requests['POST /v1/manifests'], wanted.length);
    assert.equal(requests['POST /v1/jobs/:id/complete'], undefined);

    assert.ok(
      worker.lines.findIndex((l) => l.event === 'job-complete') > stopping,
      'the jobs were completed after the stop request',
    );
    assert.equal(worker.events('stopped').length, 1);
  });
});

/** Requests the server answered since it started, by `METHOD route` (its /metrics counters). */
async function requestCounts(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const m of text.matchAll(/^sysattest_http_requests_total\{([^}]*)\} (\d+)$/gm)) {
    const labels = Object.fromEntries(
      [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]),
    );
    const key = `${labels.method} ${labels.route}`;
    counts[key] = (counts[key] ?? 0) + Number(m[2]);
  }
  return counts;
}
