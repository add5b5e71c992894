/**
 * The worker's upload sink against a stand-in for the server's API, counting the requests each
 * manifest costs: one upload when the lease is surely held and the answer shows the job done
 * (the server completes it in the upload's transaction); a heartbeat first only when the lease
 * may have lapsed; `complete` only when the answer does not show the job done; nothing uploaded
 * for a job another worker holds.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Manifest, SignedDocument } from '@sysattest/core';
import { isGeneratorError } from '../errors.js';
import type { SignedManifest } from '../generation/manifest-sink.js';
import { Leases } from './leases.js';
import { WorkerLog } from './log.js';
import { ServerRefusal, type ClaimedJob } from './server-api.js';
import { UploadSink, completedByUpload, type JobApi } from './upload-sink.js';

const LEASE_MS = 60_000;

function job(id: number, name: string, overrides: Partial<ClaimedJob> = {}): ClaimedJob {
  return {
    id,
    platform: 'debian/bookworm/amd64',
    targetPlatform: 'debian/bookworm/amd64',
    name,
    version: '1.0-1',
    arch: 'amd64',
    reason: 'tracked',
    state: 'running',
    attempts: 1,
    ...overrides,
  };
}

function manifestOf(j: ClaimedJob): SignedManifest {
  const manifest = {
    platform: j.targetPlatform,
    package: { name: j.name, version: j.version, architecture: j.arch },
  } as unknown as Manifest;
  const signed = { bytes: Buffer.from(`{"${j.name}"}`), signature: 'sig', digest: 'd'.repeat(64) };
  return { manifest, signed: signed as unknown as SignedDocument };
}

/** The API as a list of the requests made; `answer` decides each one's reply. */
function standIn(answer: Partial<Record<keyof JobApi, (j: number) => unknown>> = {}) {
  const requests: string[] = [];
  const reply = (what: keyof JobApi, id: number, ok: unknown) => {
    requests.push(what);
    const r = answer[what]?.(id);
    return r instanceof Error ? Promise.reject(r) : Promise.resolve(r ?? ok);
  };
  const api: JobApi = {
    heartbeat: (id) => reply('heartbeat', id, { state: 'running' }) as ReturnType<JobApi['heartbeat']>,
    complete: (id) => reply('complete', id, { state: 'done' }) as ReturnType<JobApi['complete']>,
    fail: (id) => reply('fail', id, { state: 'pending', attempts: 1 }) as ReturnType<JobApi['fail']>,
    uploadManifest: () =>
      reply('uploadManifest', 0, {
        outcome: 'stored',
        platform: 'debian/bookworm/amd64',
        name: 'hello',
        version: '1.0-1',
        arch: 'amd64',
      }) as ReturnType<JobApi['uploadManifest']>,
  };
  return { api, requests };
}

function setUp(api: JobApi, jobs: ClaimedJob[]) {
  let clock = 0;
  const leases = new Leases(LEASE_MS, () => clock);
  leases.claimed(
    jobs.map((j) => j.id),
    0,
  );
  const lines: { event: string; state?: string }[] = [];
  const log = new WorkerLog('json', { write: (s: string) => lines.push(JSON.parse(s)) });
  const counts = { jobsDone: 0, jobsFailed: 0 };
  const finished: number[] = [];
  const sink = new UploadSink({ api, workerId: 'w', leases, log, counts, server: 'http://s' }, jobs, (j) =>
    finished.push(j.id),
  );
  return { sink, leases, lines, counts, finished, advance: (ms: number) => (clock += ms) };
}

describe('the upload sink: requests per manifest', () => {
  it('one request: the upload, which completes the job on the server', async () => {
    const { api, requests } = standIn();
    const hello = job(1, 'hello');
    const t = setUp(api, [hello]);
    t.advance(LEASE_MS / 3);
    assert.equal(await t.sink.put(manifestOf(hello)), `http://s/v1/manifests/${'d'.repeat(64)}`);
    assert.equal(await t.sink.drained(), undefined);
    assert.deepEqual(requests, ['uploadManifest']);
    assert.deepEqual(t.counts, { jobsDone: 1, jobsFailed: 0 });
    assert.deepEqual(t.finished, [1]);
    assert.deepEqual(
      t.lines.map((l) => [l.event, l.state]),
      [
        ['manifest-uploaded', undefined],
        ['job-complete', 'done'],
      ],
    );
  });

  it('a heartbeat first when the lease may have lapsed (heartbeats failing)', async () => {
    const { api, requests } = standIn();
    const hello = job(1, 'hello');
    const t = setUp(api, [hello]);
    t.advance((LEASE_MS * 2) / 3);
    await t.sink.put(manifestOf(hello));
    await t.sink.drained();
    assert.deepEqual(requests, ['heartbeat', 'uploadManifest']);
    assert.ok(t.leases.surelyHeld(1), 'the heartbeat renewed the lease');
  });

  it('nothing uploaded for a job another worker holds now', async () => {
    const lost = new ServerRefusal('LEASE_LOST', 409, 'job 1 is leased to "other"');
    const { api, requests } = standIn({ heartbeat: () => lost });
    const hello = job(1, 'hello');
    const t = setUp(api, [hello]);
    t.advance(LEASE_MS);
    await t.sink.put(manifestOf(hello));
    await t.sink.drained();
    assert.deepEqual(requests, ['heartbeat']);
    // Known lost already (a periodic heartbeat said so): not even the heartbeat.
    const again = standIn();
    const u = setUp(again.api, [hello]);
    u.leases.markLost(1);
    await u.sink.put(manifestOf(hello));
    await u.sink.drained();
    assert.deepEqual(again.requests, []);
    assert.deepEqual(u.finished, [1]);
    assert.deepEqual(
      u.lines.map((l) => l.event),
      ['lease-lost'],
    );
  });

  it('complete only when the answer does not show the job done: a conflict, another platform', async () => {
    const conflict = new ServerRefusal('CONFLICT', 409, 'a different manifest is already stored');
    const c = standIn({ uploadManifest: () => conflict });
    const hello = job(1, 'hello');
    const t = setUp(c.api, [hello]);
    await t.sink.put(manifestOf(hello));
    await t.sink.drained();
    assert.deepEqual(c.requests, ['uploadManifest', 'complete']);
    assert.equal(t.counts.jobsDone, 1);

    const netbase = job(2, 'hello', { targetPlatform: 'debian/bookworm/all' });
    const m = standIn();
    const u = setUp(m.api, [netbase]);
    await u.sink.put(manifestOf(netbase));
    await u.sink.drained();
    assert.deepEqual(m.requests, ['uploadManifest', 'complete']);
  });

  it('a refused manifest fails its job; a refused token stops the uploads', async () => {
    const invalid = new ServerRefusal('BAD_REQUEST', 400, 'bad signature');
    const r = standIn({ uploadManifest: () => invalid });
    const hello = job(1, 'hello');
    const t = setUp(r.api, [hello]);
    await t.sink.put(manifestOf(hello));
    assert.equal(await t.sink.drained(), undefined);
    assert.deepEqual(r.requests, ['uploadManifest', 'fail']);
    assert.deepEqual(t.counts, { jobsDone: 0, jobsFailed: 1 });

    const denied = new ServerRefusal('UNAUTHORIZED', 401, 'unknown token');
    const a = standIn({ uploadManifest: () => denied });
    const jobs = [job(1, 'hello'), job(2, 'jq')];
    const u = setUp(a.api, jobs);
    await u.sink.put(manifestOf(jobs[0] as ClaimedJob));
    await u.sink.put(manifestOf(jobs[1] as ClaimedJob));
    assert.equal(await u.sink.drained(), denied);
    assert.deepEqual(a.requests, ['uploadManifest'], 'nothing more after the refused token');
    assert.deepEqual(u.finished, [], 'both jobs left to be given back');
  });

  it('a manifest no job of the round asked for is not uploaded: OUTPUT_FAILED', async () => {
    const { api, requests } = standIn();
    const t = setUp(api, [job(1, 'hello')]);
    await assert.rejects(t.sink.put(manifestOf(job(9, 'libjq1'))), (e: unknown) =>
      isGeneratorError(e, 'OUTPUT_FAILED'),
    );
    assert.equal(t.sink.took(1), false);
    await t.sink.drained();
    assert.deepEqual(requests, []);
  });

  it('the upload answer completes the job only for its own target platform and package', () => {
    const j = job(1, 'hello');
    const answer = {
      outcome: 'stored',
      platform: j.targetPlatform,
      name: 'hello',
      version: '1.0-1',
      arch: 'amd64',
    };
    assert.ok(completedByUpload(j, answer));
    assert.ok(completedByUpload(j, { ...answer, outcome: 'duplicate' }));
    assert.ok(!completedByUpload(j, { ...answer, platform: 'debian/bookworm/all' }));
    assert.ok(!completedByUpload(j, { ...answer, version: '1.0-2' }));
    assert.ok(!completedByUpload(j, { ...answer, outcome: 'conflict' }));
  });
});

describe('leases, as the worker knows them', () => {
  it('surely held for two thirds of the lease after the request that renewed it was sent', () => {
    let now = 1000;
    const leases = new Leases(LEASE_MS, () => now);
    leases.claimed([1, 2], leases.sendTime());
    now += (LEASE_MS * 2) / 3 - 1;
    assert.ok(leases.surelyHeld(1));
    now += 1;
    assert.ok(!leases.surelyHeld(1));
    leases.renewed(1, now);
    assert.ok(leases.surelyHeld(1));
    leases.markLost(2);
    leases.renewed(2, now);
    assert.ok(!leases.surelyHeld(2), 'a lost lease is not renewed by a late answer');
    leases.release(1);
    leases.renewed(1, now);
    assert.ok(!leases.surelyHeld(1), 'a released job is forgotten');
    assert.ok(!leases.surelyHeld(3), 'a job never claimed is not held');
  });
});
