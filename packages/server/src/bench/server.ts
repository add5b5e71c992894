/**
 * The server's speed over real HTTP, on each database, against the targets. Per dialect it
 * starts a real `sysattest-server serve` process (rate limit off, loopback) on a fresh database and:
 *  - ingests 1,000 signed manifests (>= 100,000 file entries) with POST /v1/manifests, 4 uploads
 *    at a time, after the catalog;
 *  - looks up a 750-package machine (700 with manifests, documents included) 50 times:
 *    p50 / p90 / p99, client-side wall time including the JSON (target p50 <= 150 ms);
 *  - reverse-looks-up 100,000 hashes in one POST (target <= 2 s);
 *  - runs a load generator in another process for --load-seconds (default 60): concurrent
 *    whole-machine lookups (--concurrency, default 8), digests only (a client with a warm manifest
 *    cache) unless --load-documents; expects 0 errors, reports throughput and p99.
 *  - also times the digests-only form of the 750-package lookup (`documents: false`).
 * Signing happens before any clock starts (the dataset of the store bench).
 *
 * Usage: node packages/server/dist/bench/server.js [--dialect sqlite|postgres]...
 *          [--load-seconds 60] [--concurrency 8] [--load-documents] [--json]
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startServer } from '../testkit/server-process.js';
import { LOOKUP_RUNS, makeDataset, percentile, PLATFORM, type Dataset } from './dataset.js';
import { openStore, type DialectName } from '../store/index.js';
import { TestGenerator, createTestDatabase } from '../testkit/store.js';

const { values: args } = parseArgs({
  options: {
    dialect: { type: 'string', multiple: true },
    'load-seconds': { type: 'string', default: '60' },
    concurrency: { type: 'string', default: '8' },
    'load-documents': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const dialects = (args.dialect ?? ['sqlite', 'postgres']) as DialectName[];
const loadSeconds = Number(args['load-seconds']);
const concurrency = Number(args.concurrency);
const loadDocuments = args['load-documents'] ?? false;
const log = (s: string): void => {
  if (args.json) console.error(s);
  else console.log(s);
};

const INGEST_PARALLEL = 4;

interface LoadResult {
  requests: number;
  errors: number;
  firstErrors: string[];
  seconds: number;
  perSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
}

interface HttpFigures {
  dialect: DialectName;
  ingest: { manifests: number; entries: number; seconds: number; perSecond: number };
  lookup: {
    items: number;
    runs: number;
    p50Ms: number;
    p90Ms: number;
    p99Ms: number;
    responseBytes: number;
    digestsOnly: { p50Ms: number; p90Ms: number; p99Ms: number; responseBytes: number };
  };
  reverseLookup: { hashes: number; found: number; seconds: number; requestBytes: number };
  load: LoadResult & { concurrency: number; itemsPerRequest: number; documents: boolean };
}

async function post(
  url: string,
  token: string,
  body: string,
): Promise<{ status: number; text: string; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - t0 };
}

function must(r: { status: number; text: string }, what: string, ok = [200, 201]): void {
  if (!ok.includes(r.status)) throw new Error(`${what}: ${r.status} ${r.text.slice(0, 300)}`);
}

function runLoad(url: string, bodyFile: string): Promise<LoadResult> {
  const script = fileURLToPath(new URL('./load-generator.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      script,
      '--url',
      url,
      '--body',
      bodyFile,
      '--seconds',
      String(loadSeconds),
      '--concurrency',
      String(concurrency),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`load generator exited ${code}`));
      else resolve(JSON.parse(out) as LoadResult);
    });
  });
}

async function benchDialect(dialect: DialectName, data: Dataset, gen: TestGenerator): Promise<HttpFigures> {
  const db = await createTestDatabase(dialect);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-http-bench-'));
  let generator: string;
  try {
    const store = await openStore(db.url);
    try {
      await store.addTrustedKey(gen.armoredPublicKey);
      generator = (await store.createToken('generator', 'bench')).secret;
    } finally {
      await store.close();
    }
    const server = await startServer(['--port', '0', '--database', db.url, '--rate-limit', 'off']);
    try {
      const base = server.url;
      const catalog = await post(
        `${base}/v1/catalogs`,
        generator,
        JSON.stringify({
          catalog: Buffer.from(data.catalog.bytes).toString('base64'),
          signature: data.catalog.signature,
        }),
      );
      must(catalog, 'catalog upload');

      const bodies = data.manifests.map((m) =>
        JSON.stringify({ manifest: Buffer.from(m.bytes).toString('base64'), signature: m.signature }),
      );
      let next = 0;
      let t0 = performance.now();
      await Promise.all(
        Array.from({ length: INGEST_PARALLEL }, async () => {
          while (next < bodies.length) {
            const i = next++;
            must(await post(`${base}/v1/manifests`, generator, bodies[i] as string), `manifest ${i}`, [201]);
          }
        }),
      );
      const ingestS = (performance.now() - t0) / 1000;
      log(`  ${dialect}: ingested ${bodies.length} manifests over HTTP in ${ingestS.toFixed(2)} s`);

      const machine = JSON.stringify({ platform: PLATFORM, items: data.machine });
      // The first lookup queues the pending jobs and tracks the packages; the timed ones read.
      must(await post(`${base}/v1/lookup`, generator, machine), 'first lookup');
      const times: number[] = [];
      let responseBytes = 0;
      for (let i = 0; i < LOOKUP_RUNS; i++) {
        const r = await post(`${base}/v1/lookup`, generator, machine);
        must(r, 'lookup');
        const ok = (JSON.parse(r.text) as { items: { status: string }[] }).items.filter(
          (x) => x.status === 'ok',
        ).length;
        if (ok !== 700) throw new Error(`expected 700 manifests in the lookup, got ${ok}`);
        times.push(r.ms);
        responseBytes = r.text.length;
      }
      times.sort((a, b) => a - b);
      const light: number[] = [];
      let lightBytes = 0;
      const digestsOnly = JSON.stringify({ platform: PLATFORM, items: data.machine, documents: false });
      for (let i = 0; i < LOOKUP_RUNS; i++) {
        const r = await post(`${base}/v1/lookup`, generator, digestsOnly);
        must(r, 'lookup (digests only)');
        JSON.parse(r.text);
        light.push(r.ms);
        lightBytes = r.text.length;
      }
      light.sort((a, b) => a - b);
      log(
        `  ${dialect}: lookup of ${data.machine.length} packages p50 ${percentile(times, 50).toFixed(1)} ms`,
      );

      const reverseBody = JSON.stringify({ sha256: data.hashes });
      t0 = performance.now();
      const reverse = await post(`${base}/v1/reverse-lookup`, generator, reverseBody);
      const reverseS = (performance.now() - t0) / 1000;
      must(reverse, 'reverse lookup');
      const found = (JSON.parse(reverse.text) as { results: { hits: unknown[] }[] }).results.filter(
        (r) => r.hits.length > 0,
      ).length;
      log(`  ${dialect}: reverse lookup of ${data.hashes.length} hashes in ${reverseS.toFixed(2)} s`);

      const bodyFile = path.join(tmp, 'lookups.json');
      fs.writeFileSync(
        bodyFile,
        JSON.stringify([{ platform: PLATFORM, items: data.machine, documents: loadDocuments }]),
      );
      log(
        `  ${dialect}: ${loadSeconds} s of whole-machine lookups (${loadDocuments ? 'with documents' : 'digests only'}), ${concurrency} at a time…`,
      );
      const load = await runLoad(`${base}/v1/lookup`, bodyFile);
      log(
        `  ${dialect}: ${load.requests} lookups, ${load.errors} errors, ${load.perSecond}/s, p99 ${load.latencyMs.p99} ms`,
      );
      const code = await server.stop();
      if (code !== 0) throw new Error(`the server exited ${code}: ${server.stderr()}`);
      return {
        dialect,
        ingest: {
          manifests: bodies.length,
          entries: data.entries,
          seconds: ingestS,
          perSecond: bodies.length / ingestS,
        },
        lookup: {
          items: data.machine.length,
          runs: LOOKUP_RUNS,
          p50Ms: percentile(times, 50),
          p90Ms: percentile(times, 90),
          p99Ms: percentile(times, 99),
          responseBytes,
          digestsOnly: {
            p50Ms: percentile(light, 50),
            p90Ms: percentile(light, 90),
            p99Ms: percentile(light, 99),
            responseBytes: lightBytes,
          },
        },
        reverseLookup: {
          hashes: data.hashes.length,
          found,
          seconds: reverseS,
          requestBytes: reverseBody.length,
        },
        load: { ...load, concurrency, itemsPerRequest: data.machine.length, documents: loadDocuments },
      };
    } finally {
      await server.stop();
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
    await db.drop();
  }
}

async function main(): Promise<void> {
  if (!(loadSeconds >= 1 && loadSeconds <= 3600) || !(concurrency >= 1 && concurrency <= 256)) {
    throw new Error('--load-seconds 1..3600, --concurrency 1..256');
  }
  const gen = await TestGenerator.create('sysattest http bench');
  log('preparing 1,000 signed manifests (not timed)…');
  const data = await makeDataset(gen);
  log(`  ${data.manifests.length} manifests, ${data.entries} entries (${data.files} files)`);
  const figures: HttpFigures[] = [];
  for (const dialect of dialects) figures.push(await benchDialect(dialect, data, gen));

  if (args.json) {
    console.log(JSON.stringify({ node: process.version, cpus: os.cpus().length, figures }, null, 2));
  } else {
    console.log('');
    console.log(
      'server bench over HTTP (targets: lookup p50 <= 150 ms, reverse lookup <= 2 s, 0 load errors)',
    );
    for (const f of figures) {
      const pad = ''.padEnd(8);
      console.log(
        `${f.dialect.padEnd(8)} ingest ${f.ingest.manifests} manifests / ${f.ingest.entries} entries: ` +
          `${f.ingest.seconds.toFixed(2)} s (${f.ingest.perSecond.toFixed(0)} manifests/s, ${INGEST_PARALLEL} at a time)`,
      );
      console.log(
        `${pad} lookup ${f.lookup.items} packages with documents (${(f.lookup.responseBytes / 1e6).toFixed(1)} MB): ` +
          `p50 ${f.lookup.p50Ms.toFixed(1)} ms, p90 ${f.lookup.p90Ms.toFixed(1)} ms, p99 ${f.lookup.p99Ms.toFixed(1)} ms`,
      );
      const d = f.lookup.digestsOnly;
      console.log(
        `${pad} lookup ${f.lookup.items} packages, digests only (${(d.responseBytes / 1e3).toFixed(0)} kB): ` +
          `p50 ${d.p50Ms.toFixed(1)} ms, p90 ${d.p90Ms.toFixed(1)} ms, p99 ${d.p99Ms.toFixed(1)} ms`,
      );
      console.log(
        `${pad} reverse lookup ${f.reverseLookup.hashes} hashes (${f.reverseLookup.found} found): ` +
          `${f.reverseLookup.seconds.toFixed(2)} s`,
      );
      console.log(
        `${pad} load ${f.load.seconds} s, ${f.load.concurrency} concurrent whole-machine lookups ` +
          `(${f.load.documents ? 'with documents' : 'digests only'}): ${f.load.requests} ` +
          `requests, ${f.load.errors} errors, ${f.load.perSecond}/s (${Math.round(f.load.perSecond * f.load.itemsPerRequest)} ` +
          `items/s), p50 ${f.load.latencyMs.p50} ms, p99 ${f.load.latencyMs.p99} ms`,
      );
      if (f.load.errors > 0) console.log(`${pad} first errors: ${f.load.firstErrors.join(' | ')}`);
    }
  }
  if (figures.some((f) => f.load.errors > 0)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
