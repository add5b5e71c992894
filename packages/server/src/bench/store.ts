/**
 * The store's speed on each database, against the targets:
 *  - ingest 1,000 signed manifests totalling >= 100,000 file entries (one transaction each, as
 *    uploads arrive);
 *  - lookup of a 750-package machine (700 with manifests, 30 pending, 20 unknown to the catalog),
 *    with manifest bytes + signatures: p50 over 50 runs (target p50 <= 150 ms);
 *  - reverse lookup of 100,000 hashes in one call (target <= 2 s).
 * The data is realistic in shape: 700 packages, 300 of them in two versions, most files unchanged
 * between the versions, a few contents shared by many packages (licence texts, empty files).
 * Signing and verifying happen before the clock starts: the store is what is measured.
 *
 * Usage: node packages/server/dist/bench/store.js [--dialect sqlite|postgres] [--json]
 * (default: both; PostgreSQL in a temporary database created and dropped on the server that
 * SYSATTEST_TEST_POSTGRES_URL names, default postgres://postgres@127.0.0.1:5432/postgres).
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { LOOKUP_RUNS, makeDataset, percentile, PLATFORM, type Dataset } from './dataset.js';
import type { DialectName } from '../store/connection.js';
import { openStore } from '../store/store.js';
import { TestGenerator, createTestDatabase } from '../testkit/store.js';

const { values: args } = parseArgs({
  options: {
    dialect: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
  },
});
const dialects = (args.dialect ?? ['sqlite', 'postgres']) as DialectName[];
const log = (s: string): void => {
  if (args.json) console.error(s);
  else console.log(s);
};

interface DialectFigures {
  dialect: DialectName;
  ingest: { manifests: number; entries: number; files: number; seconds: number; perSecond: number };
  lookup: {
    items: number;
    runs: number;
    p50Ms: number;
    p90Ms: number;
    maxMs: number;
    p50DigestsOnlyMs: number;
  };
  reverseLookup: { hashes: number; found: number; hits: number; seconds: number };
  databaseBytes: number;
  rows: { contents: number; paths: number; manifestFiles: number };
}

async function benchDialect(dialect: DialectName, data: Dataset): Promise<DialectFigures> {
  const db = await createTestDatabase(dialect);
  const store = await openStore(db.url);
  try {
    await store.ingestCatalog(data.catalog);

    let t0 = performance.now();
    for (const m of data.manifests) await store.ingestManifest(m);
    const ingestS = (performance.now() - t0) / 1000;
    log(`  ${dialect}: ingested ${data.manifests.length} manifests in ${ingestS.toFixed(2)} s`);

    // The first lookup queues the pending jobs and tracks the packages; the timed ones read.
    await store.lookup(PLATFORM, data.machine);
    const times: number[] = [];
    let ok = 0;
    for (let i = 0; i < LOOKUP_RUNS; i++) {
      t0 = performance.now();
      const r = await store.lookup(PLATFORM, data.machine);
      times.push(performance.now() - t0);
      ok = r.items.filter((x) => x.status === 'ok').length;
    }
    if (ok !== 700) throw new Error(`expected 700 manifests in the lookup, got ${ok}`);
    times.sort((a, b) => a - b);
    const light: number[] = [];
    for (let i = 0; i < 20; i++) {
      t0 = performance.now();
      await store.lookup(PLATFORM, data.machine, { includeDocuments: false });
      light.push(performance.now() - t0);
    }
    light.sort((a, b) => a - b);
    log(`  ${dialect}: lookup of ${data.machine.length} packages p50 ${percentile(times, 50).toFixed(1)} ms`);

    t0 = performance.now();
    const reverse = await store.reverseLookup(data.hashes);
    const reverseS = (performance.now() - t0) / 1000;
    log(`  ${dialect}: reverse lookup of ${data.hashes.length} hashes in ${reverseS.toFixed(2)} s`);

    const stats = await store.stats();
    return {
      dialect,
      ingest: {
        manifests: data.manifests.length,
        entries: data.entries,
        files: data.files,
        seconds: ingestS,
        perSecond: data.manifests.length / ingestS,
      },
      lookup: {
        items: data.machine.length,
        runs: LOOKUP_RUNS,
        p50Ms: percentile(times, 50),
        p90Ms: percentile(times, 90),
        maxMs: times.at(-1) as number,
        p50DigestsOnlyMs: percentile(light, 50),
      },
      reverseLookup: {
        hashes: data.hashes.length,
        found: reverse.filter((r) => r.hits.length > 0).length,
        hits: reverse.reduce((n, r) => n + r.hits.length, 0),
        seconds: reverseS,
      },
      databaseBytes: stats.databaseBytes,
      rows: { contents: stats.contents, paths: stats.paths, manifestFiles: stats.manifestFiles },
    };
  } finally {
    await store.close();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const gen = await TestGenerator.create('sysattest store bench');
  log('preparing 1,000 signed manifests (not timed)…');
  const data = await makeDataset(gen);
  log(`  ${data.manifests.length} manifests, ${data.entries} entries (${data.files} files)`);
  const figures: DialectFigures[] = [];
  for (const dialect of dialects) figures.push(await benchDialect(dialect, data));

  if (args.json) {
    console.log(JSON.stringify({ node: process.version, figures }, null, 2));
    return;
  }
  console.log('');
  console.log('store bench (targets: lookup p50 <= 150 ms, reverse lookup <= 2 s)');
  for (const f of figures) {
    console.log(
      `${f.dialect.padEnd(8)} ingest ${f.ingest.manifests} manifests / ${f.ingest.entries} entries: ` +
        `${f.ingest.seconds.toFixed(2)} s (${f.ingest.perSecond.toFixed(0)} manifests/s)`,
    );
    console.log(
      `${''.padEnd(8)} lookup ${f.lookup.items} packages with documents: p50 ${f.lookup.p50Ms.toFixed(1)} ms, ` +
        `p90 ${f.lookup.p90Ms.toFixed(1)} ms, max ${f.lookup.maxMs.toFixed(1)} ms; digests only p50 ` +
        `${f.lookup.p50DigestsOnlyMs.toFixed(1)} ms`,
    );
    console.log(
      `${''.padEnd(8)} reverse lookup ${f.reverseLookup.hashes} hashes (${f.reverseLookup.found} found, ` +
        `${f.reverseLookup.hits} hits): ${f.reverseLookup.seconds.toFixed(2)} s`,
    );
    console.log(
      `${''.padEnd(8)} database ${(f.databaseBytes / 1e6).toFixed(1)} MB; rows: contents ${f.rows.contents}, ` +
        `paths ${f.rows.paths}, manifest_files ${f.rows.manifestFiles}`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exitCode = 1;
});
