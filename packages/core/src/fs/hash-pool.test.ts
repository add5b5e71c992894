import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { PathError } from '../errors.js';
import { inspectFile, type FileObservation } from './file-entry.js';
import { HashPool, HashPoolError, type ExtraDigests, type HashProgress } from './hash-pool.js';
import { buildHostileRoot, makeTempDir, mkfifo, mknod, symlink, writeFile } from '../testkit/hostile-tree.js';
import { RootDir } from './in-root.js';

const FILES = 3000;

/** Deterministic pseudo-random sizes: mostly small, some over the 1 MiB read chunk. */
function sizeOf(i: number): number {
  if (i % 500 === 7) return (1 << 20) * (1 + (i % 3)) + (i % 4099);
  if (i % 97 === 0) return 0;
  return (i * 7919) % 20000;
}

describe('HashPool', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let R: string;
  const paths: string[] = [];
  const expected = new Map<string, { sha256: string; size: number }>();
  let totalBytes = 0;
  let server: net.Server;
  let pool: HashPool;

  before(async () => {
    tmp = makeTempDir('sysattest-pool-');
    R = path.join(tmp.dir, 'root');
    fs.mkdirSync(R);
    buildHostileRoot(R);
    const noise = randomBytes(1 << 16);
    for (let i = 0; i < FILES; i++) {
      const rel = `usr/share/d${i % 37}/sub${i % 5}/f${i}`;
      const size = sizeOf(i);
      const data = Buffer.alloc(size);
      for (let off = 0; off < size; off += noise.length) noise.copy(data, off, (i * 131) % 1000);
      if (size >= 4) data.writeUInt32LE(i, 0); // every file different
      writeFile(R, rel, data);
      paths.push('/' + rel);
      totalBytes += size;
    }
    // Expected values computed the simplest way: read the whole file, hash it.
    for (const p of paths) {
      const data = fs.readFileSync(path.join(R, p));
      expected.set(p, { sha256: createHash('sha256').update(data).digest('hex'), size: data.length });
    }
    mkfifo(path.join(R, 'run/fifo'));
    server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(R, 'run/socket'), resolve));
    pool = new HashPool({ threads: 3, batchSize: 64 });
  });

  after(async () => {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
    tmp.cleanup();
  });

  test('computes MD5 in the same read when asked (for comparing with dpkg md5sums)', async () => {
    const md5Pool = new HashPool({ threads: 2, batchSize: 64, md5: true });
    try {
      const sample = paths.filter((_, i) => i % 50 === 7 || i % 97 === 0);
      const results = await md5Pool.inspectAll(R, sample);
      for (const o of results) {
        assert.ok(o.status === 'ok' && o.type === 'file', `${o.path}: ${o.status}`);
        const data = fs.readFileSync(path.join(R, o.path));
        assert.equal(o.md5, createHash('md5').update(data).digest('hex'), o.path);
        assert.equal(o.sha256, expected.get(o.path)?.sha256);
      }
      // The default pool does not spend time on MD5.
      const [plain] = await pool.inspectAll(R, sample.slice(0, 1));
      assert.ok(plain?.status === 'ok' && plain.type === 'file' && plain.md5 === undefined);
    } finally {
      await md5Pool.close();
    }
  });

  test('computes SHA-1 and SHA-512 when asked (for apk Z: checksums and rpm SHA-512 digests)', async () => {
    const extraPool = new HashPool({ threads: 2, batchSize: 64, sha1: true, sha512: true });
    try {
      // Includes files over the 1 MiB read chunk and empty ones, and non-files, which carry none.
      const sample = [...paths.filter((_, i) => i % 50 === 7 || i % 97 === 0), '/run/fifo'];
      const results = await extraPool.inspectAll(R, sample);
      for (const o of results as (FileObservation & ExtraDigests)[]) {
        if (o.path === '/run/fifo') {
          assert.ok(o.status === 'ok' && o.type === 'fifo' && o.sha1 === undefined && o.sha512 === undefined);
          continue;
        }
        assert.ok(o.status === 'ok' && o.type === 'file', `${o.path}: ${o.status}`);
        const data = fs.readFileSync(path.join(R, o.path));
        assert.equal(o.sha1, createHash('sha1').update(data).digest('hex'), o.path);
        assert.equal(o.sha512, createHash('sha512').update(data).digest('hex'), o.path);
        assert.equal(o.sha256, expected.get(o.path)?.sha256);
      }
      const [plain] = (await pool.inspectAll(R, sample.slice(0, 1))) as (FileObservation & ExtraDigests)[];
      assert.ok(plain !== undefined && !('sha1' in plain) && !('sha512' in plain));
    } finally {
      await extraPool.close();
    }
  });

  test(
    `hashes ${FILES} files exactly as node:crypto over the whole file does`,
    { timeout: 120_000 },
    async () => {
      let last: HashProgress | undefined;
      let calls = 0;
      const results = await pool.inspectAll(R, paths, {
        onProgress: (p) => {
          calls++;
          assert.ok(last === undefined || p.filesDone > last.filesDone);
          last = p;
        },
      });
      assert.equal(results.length, paths.length);
      results.forEach((o, i) => {
        assert.equal(o.path, paths[i], 'input order');
        assert.equal(o.status, 'ok', JSON.stringify(o));
        assert.ok(o.status === 'ok' && o.type === 'file');
        const want = expected.get(o.path);
        assert.equal(o.sha256, want?.sha256, o.path);
        assert.equal(o.size, want?.size);
      });
      assert.deepEqual(last, { filesDone: FILES, filesTotal: FILES, bytesDone: totalBytes });
      assert.ok(calls > 10, 'progress is reported per batch');
    },
  );

  test('agrees with coreutils sha256sum on a sample', { timeout: 60_000 }, async (t) => {
    const sample = paths.filter((_, i) => i % 60 === 0 || i % 500 === 7);
    let out: string;
    try {
      out = execFileSync('sha256sum', ['--', ...sample.map((p) => path.join(R, p))], { encoding: 'utf8' });
    } catch (e) {
      return t.skip(`sha256sum is not available: ${String(e)}`);
    }
    const sums = new Map(
      out
        .trim()
        .split('\n')
        .map((line) => [line.slice(66), line.slice(0, 64)] as const),
    );
    const results = await pool.inspectAll(R, sample);
    for (const o of results) {
      assert.ok(o.status === 'ok' && o.type === 'file');
      assert.equal(o.sha256, sums.get(path.join(R, o.path)), o.path);
    }
  });

  test('missing, special and hostile paths come back as results', { timeout: 30_000 }, async () => {
    const odd = [
      '/etc/nope',
      '/nope/x',
      '/run/fifo',
      '/run/socket',
      '/usr/bin/evil',
      '/bin/ls',
      '/lib/etc/shadow',
      '/loop/a/x',
      '/etc/passwd/x',
      '/etc/pass\0wd',
      '/usr',
    ];
    const results = await pool.inspectAll(R, odd);
    const by = new Map(results.map((o) => [o.path, o]));
    const summary = (o: FileObservation | undefined) =>
      o === undefined
        ? 'absent'
        : o.status === 'ok'
          ? `ok:${o.type}`
          : o.status === 'error'
            ? `error:${o.code}`
            : o.status;
    assert.deepEqual(
      odd.map((p) => summary(by.get(p))),
      [
        'missing',
        'missing',
        fs.existsSync(path.join(R, 'run/fifo')) ? 'ok:fifo' : 'missing',
        'ok:socket',
        'ok:symlink',
        'ok:file',
        'ok:file',
        'error:SYMLINK_LOOP',
        'error:NOT_A_DIRECTORY',
        'error:INVALID_PATH',
        'ok:dir',
      ],
    );
    const evil = by.get('/usr/bin/evil');
    assert.ok(evil?.status === 'ok' && evil.type === 'symlink' && evil.target === '/etc/shadow');
    const shadow = by.get('/lib/etc/shadow');
    assert.ok(shadow?.status === 'ok' && shadow.type === 'file' && shadow.resolvedPath === '/etc/shadow');
  });

  test(
    'every kind of observation survives the trip from the worker unchanged',
    { timeout: 30_000 },
    async () => {
      const ping = writeFile(R, 'usr/bin/ping', 'ping\n', 0o4755);
      const hasCap = spawnSync('setcap', ['cap_net_raw+ep', ping]).status === 0;
      symlink(R, 'usr/bin/latin', Buffer.from([0x2f, 0xff, 0xfe]));
      mknod(path.join(R, 'dev/null'), 'c', 1, 3);
      const sample = [
        ...paths.filter((_, i) => i % 100 === 0),
        '/usr/bin/ping',
        '/bin/ping',
        '/usr/bin/latin',
        '/dev/null',
        '/etc/nope',
        '/run/fifo',
        '/run/socket',
        '/usr/bin/evil',
        '/bin/ls',
        '/lib/etc/shadow',
        '/loop/a/x',
        '/etc/passwd/x',
        '/',
      ];
      for (const capabilities of ['executable', 'all', 'none'] as const) {
        const p = new HashPool({ threads: 2, batchSize: 16, capabilities });
        try {
          const fromPool = await p.inspectAll(R, sample);
          const root = RootDir.open(R);
          assert.deepEqual(
            fromPool,
            sample.map((s) => inspectFile(root, s, { capabilities })),
            capabilities,
          );
          const pingObs = fromPool.find((o) => o.path === '/bin/ping');
          assert.ok(
            pingObs?.status === 'ok' && pingObs.type === 'file' && pingObs.resolvedPath === '/usr/bin/ping',
          );
          assert.equal(pingObs.mode, 0o4755);
          if (hasCap)
            assert.equal(pingObs.capability?.text, capabilities === 'none' ? undefined : 'cap_net_raw=ep');
        } finally {
          await p.close();
        }
      }
    },
  );

  test(
    'a pool closed right after it was made stops cleanly (its threads are not stopped mid-start)',
    { timeout: 120_000 },
    () => {
      const poolModule = pathToFileURL(path.join(import.meta.dirname, 'hash-pool.js')).href;
      const script = `import { HashPool } from ${JSON.stringify(poolModule)};
        for (let i = 0; i < 100; i++) {
          const pool = new HashPool({ threads: 2 });
          await new Promise((r) => setTimeout(r, i % 40)); // at every point of the threads' start
          await pool.close();
        }
        process.stdout.write('closed');`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
      assert.equal(r.signal, null, `killed by ${r.signal}: ${r.stderr}`);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'closed');
    },
  );

  test(
    'the iterator yields every path once; runs can overlap; breaking out cancels',
    { timeout: 60_000 },
    async () => {
      const seen = new Set<string>();
      const other = pool.inspectAll(R, paths.slice(0, 500));
      for await (const o of pool.inspect(R, paths)) {
        assert.equal(seen.has(o.path), false, `${o.path} twice`);
        seen.add(o.path);
      }
      assert.equal(seen.size, paths.length);
      assert.equal((await other).length, 500);

      let n = 0;
      for await (const o of pool.inspect(R, paths)) {
        void o;
        if (++n === 10) break;
      }
      // The pool is still usable afterwards.
      const again = await pool.inspectAll(R, paths.slice(0, 100));
      assert.equal(again.filter((o) => o.status === 'ok').length, 100);
    },
  );

  test('run order: round-robin lets a small run pass a large one; first-come keeps the queue order', async () => {
    // What the large run has finished when the small one (queued just after it) completes. Only
    // dispatch decides it, not the workers' speed: each worker holds at most maxInFlightPerWorker
    // batches, so round-robin sends the small run's batches within the next few dispatches, while
    // first-come sends them only once every batch of the large run is out.
    const threads = 2;
    const perWorker = 2;
    const batch = 32;
    const largeDoneWhenSmallEnds = async (order: 'round-robin' | 'first-come'): Promise<number> => {
      const p = new HashPool({ threads, batchSize: batch, maxInFlightPerWorker: perWorker, runOrder: order });
      try {
        let largeDone = 0;
        const large = p.inspectAll(R, paths, { onProgress: (x) => (largeDone = x.filesDone) });
        const small = p.inspectAll(R, paths.slice(0, 40)).then(() => largeDone);
        const [, atSmallEnd] = await Promise.all([large, small]);
        return atSmallEnd;
      } finally {
        await p.close();
      }
    };
    const window = threads * perWorker * batch; // paths a run can have in flight at once
    const roundRobin = await largeDoneWhenSmallEnds('round-robin');
    assert.ok(
      roundRobin <= 3 * window,
      `round-robin: the large run had ${roundRobin} of ${paths.length} done`,
    );
    const firstCome = await largeDoneWhenSmallEnds('first-come');
    assert.ok(
      firstCome >= paths.length - window,
      `first-come: the large run had only ${firstCome} of ${paths.length} done`,
    );
  });

  test('a slow consumer with a tiny buffer still gets everything', { timeout: 60_000 }, async () => {
    const small = new HashPool({ threads: 2, batchSize: 8, maxBufferedBatches: 1 });
    try {
      let n = 0;
      for await (const o of small.inspect(R, paths.slice(0, 200))) {
        assert.equal(o.status, 'ok');
        if (++n % 50 === 0) await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(n, 200);
    } finally {
      await small.close();
    }
  });

  test('a throwing progress callback fails its run, not the process', { timeout: 30_000 }, async () => {
    await assert.rejects(
      pool.inspectAll(R, paths.slice(0, 300), {
        onProgress: () => {
          throw new Error('progress bar broke');
        },
      }),
      /progress bar broke/,
    );
    assert.equal((await pool.inspectAll(R, paths.slice(0, 10))).length, 10);
  });

  test('an empty list and a missing root', async () => {
    assert.deepEqual(await pool.inspectAll(R, []), []);
    await assert.rejects(
      pool.inspectAll(path.join(tmp.dir, 'no-such-root'), ['/x']),
      (e) => e instanceof PathError && e.code === 'NOT_FOUND',
    );
    const it = pool.inspect(path.join(tmp.dir, 'no-such-root'), ['/x']);
    await assert.rejects(it.next(), (e) => e instanceof PathError);
  });

  test('close() ends the workers and fails runs in progress', { timeout: 30_000 }, async () => {
    const p = new HashPool({ threads: 2 });
    assert.equal(p.liveWorkers, 2);
    const run = p.inspectAll(R, paths);
    const closed = p.close();
    await assert.rejects(run, (e) => e instanceof HashPoolError && e.code === 'POOL_CLOSED');
    await closed;
    assert.equal(p.liveWorkers, 0);
    await assert.rejects(
      p.inspectAll(R, paths),
      (e) => e instanceof HashPoolError && e.code === 'POOL_CLOSED',
    );
    await p.close(); // idempotent
  });

  test('a worker that crashes rejects the run instead of hanging', { timeout: 30_000 }, async () => {
    const cases = {
      exits: `import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => process.exit(3));`,
      throws: `import { parentPort } from 'node:worker_threads'; parentPort.on('message', () => { throw new Error('boom'); });`,
      'sends garbage': `import { parentPort } from 'node:worker_threads';
        parentPort.on('message', (m) => m.kind === 'batch' && parentPort.postMessage({ kind: 'results', runId: m.runId, batchId: m.batchId, observations: [], bytes: 0 }));`,
    };
    for (const [name, source] of Object.entries(cases)) {
      const file = path.join(tmp.dir, `crash-${name.replace(/ /g, '-')}.mjs`);
      fs.writeFileSync(file, source);
      const p = new HashPool({ threads: 2, workerUrl: pathToFileURL(file) });
      try {
        await assert.rejects(
          p.inspectAll(R, paths.slice(0, 50)),
          (e) => e instanceof HashPoolError && e.code === 'WORKER_FAILED',
          name,
        );
      } finally {
        await p.close();
      }
      assert.equal(p.liveWorkers, 0);
    }
  });
});
