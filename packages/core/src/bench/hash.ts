/**
 * `npm run bench`, first entry: hash every regular file this machine's dpkg database lists.
 *
 *  (a) HashPool: full inspections (in-root resolution, lstat, O_NOFOLLOW open, fstat before and
 *      after, SHA-256, security.capability) on every core;
 *  (b) the lower bound: open/read/SHA-256/close over the same files on as many threads, the list
 *      split ahead of time by bytes (no resolution, no stat, no xattr).
 *
 * Both use persistent workers started before timing; one untimed pass warms the page cache;
 * rounds alternate the order (A B, B A, …) because this machine is shared and noisy. Reports
 * wall time and the process's CPU time (all threads) for each, and the ratios pool / lower bound.
 *
 * Usage: node packages/core/dist/bench/hash.js [--json] [--rounds N] [--threads N]
 *          [--root DIR] [--lists] [--limit N] [--capabilities executable|all|none]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { CapabilityMode, FileObservation } from '../fs/file-entry.js';
import { HashPool } from '../fs/hash-pool.js';
import { RootDir } from '../fs/in-root.js';
import type { LowerBoundRequest, LowerBoundResult } from './lower-bound-worker.js';

interface Measurement {
  wallS: number;
  cpuS: number;
}

interface MethodSummary {
  name: string;
  files: number;
  bytes: number;
  rounds: Measurement[];
  bestWallS: number;
  medianWallS: number;
  medianCpuS: number;
  filesPerS: number;
  gbPerS: number;
}

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '3' },
    threads: { type: 'string' },
    root: { type: 'string', default: '/' },
    lists: { type: 'boolean', default: false },
    limit: { type: 'string' },
    capabilities: { type: 'string', default: 'executable' },
  },
});

const rounds = Math.max(1, Number(args.rounds));
const threads = Math.max(1, Number(args.threads ?? os.availableParallelism()));
/** Progress lines: with --json they go to stderr, so stdout is only the JSON document. */
const log = (s: string): void => {
  if (args.json) console.error(s);
  else console.log(s);
};

/** Paths the dpkg database lists (every package, installed or partly), deduplicated. */
async function dpkgPaths(root: string): Promise<{ paths: string[]; source: string }> {
  if (!args.lists) {
    try {
      // Imported here so the bench still runs (on the fallback) if the reader cannot load.
      const { readDpkgDatabase } = await import('../pkgdb/dpkg/index.js');
      const db = await readDpkgDatabase(root);
      const set = new Set<string>();
      for (const pkg of [...db.packages, ...db.partiallyInstalled])
        for (const f of pkg.files) set.add(f.path);
      return { paths: [...set], source: 'readDpkgDatabase' };
    } catch (e) {
      log(`readDpkgDatabase failed (${String(e)}); reading info/*.list directly`);
    }
  }
  // Fallback: the .list files themselves, one path per line.
  const rootDir = RootDir.open(root);
  const info = rootDir.resolve('/var/lib/dpkg/info', { followFinal: true });
  const set = new Set<string>();
  for (const name of fs.readdirSync(info)) {
    if (!name.endsWith('.list')) continue;
    for (const line of fs.readFileSync(path.join(info, name), 'utf8').split('\n'))
      if (line.startsWith('/')) set.add(line);
  }
  return { paths: [...set], source: 'info/*.list' };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timed(fn: () => Promise<void>): Promise<Measurement> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { wallS, cpuS: (cpu.user + cpu.system) / 1e6 };
}

/** Splits files over threads, balancing bytes plus a per-file cost (the best static split). */
function split(files: { host: string; size: number }[], n: number): string[][] {
  const shares: string[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  const order = files.map((_, i) => i).sort((a, b) => (files[b]?.size ?? 0) - (files[a]?.size ?? 0));
  for (const i of order) {
    let best = 0;
    for (let t = 1; t < n; t++) if ((load[t] as number) < (load[best] as number)) best = t;
    const f = files[i] as { host: string; size: number };
    (shares[best] as string[]).push(f.host);
    load[best] = (load[best] as number) + f.size + 64 * 1024;
  }
  return shares;
}

class LowerBound {
  private readonly workers: Worker[];
  constructor(n: number) {
    this.workers = Array.from(
      { length: n },
      () => new Worker(new URL('./lower-bound-worker.js', import.meta.url)),
    );
  }
  async run(shares: string[][]): Promise<Map<string, string>> {
    const results = await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<LowerBoundResult>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
            w.postMessage({ paths: shares[i] ?? [] } satisfies LowerBoundRequest);
          }),
      ),
    );
    const digests = new Map<string, string>();
    results.forEach((r, i) =>
      r.digests.forEach((d, j) => digests.set((shares[i] as string[])[j] as string, d)),
    );
    return digests;
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function summarize(name: string, files: number, bytes: number, ms: Measurement[]): MethodSummary {
  const bestWallS = Math.min(...ms.map((m) => m.wallS));
  const medianWallS = median(ms.map((m) => m.wallS));
  return {
    name,
    files,
    bytes,
    rounds: ms,
    bestWallS,
    medianWallS,
    medianCpuS: median(ms.map((m) => m.cpuS)),
    filesPerS: files / medianWallS,
    gbPerS: bytes / 1e9 / medianWallS,
  };
}

async function main(): Promise<void> {
  const rootDir = RootDir.open(args.root);
  const t0 = performance.now();
  const { paths: listed, source } = await dpkgPaths(rootDir.hostPath);
  const files: { path: string; host: string; size: number }[] = [];
  for (const p of listed) {
    let host: string;
    try {
      host = rootDir.resolveFinal(p).host;
    } catch {
      continue;
    }
    const st = fs.lstatSync(host, { throwIfNoEntry: false });
    if (st?.isFile()) files.push({ path: p, host, size: st.size });
  }
  if (args.limit !== undefined) files.length = Math.min(files.length, Number(args.limit));
  const totalBytes = files.reduce((n, f) => n + f.size, 0);
  const paths = files.map((f) => f.path);
  log(
    `${listed.length} paths from ${source}, ${files.length} regular files, ${(totalBytes / 1e9).toFixed(2)} GB ` +
      `(listed in ${((performance.now() - t0) / 1000).toFixed(1)} s); ${threads} threads, ${rounds} rounds, ` +
      `capabilities: ${args.capabilities}`,
  );

  const capabilities = args.capabilities as CapabilityMode;
  if (!['executable', 'all', 'none'].includes(capabilities))
    throw new Error(`--capabilities: ${capabilities}?`);
  const pool = new HashPool({ threads, capabilities });
  const lower = new LowerBound(threads);
  const shares = split(files, threads);
  try {
    const warm = await timed(async () => void (await lower.run(shares)));
    log(`warm-up pass (page cache): ${warm.wallS.toFixed(2)} s`);

    const poolMs: Measurement[] = [];
    const lowerMs: Measurement[] = [];
    let poolResults: FileObservation[] = [];
    let lowerDigests = new Map<string, string>();
    const runPool = async () =>
      poolMs.push(await timed(async () => void (poolResults = await pool.inspectAll(rootDir, paths))));
    const runLower = async () =>
      lowerMs.push(await timed(async () => void (lowerDigests = await lower.run(shares))));
    for (let r = 0; r < rounds; r++) {
      if (r % 2 === 0) {
        await runPool();
        await runLower();
      } else {
        await runLower();
        await runPool();
      }
      log(
        `round ${r + 1}: pool ${poolMs.at(-1)?.wallS.toFixed(2)} s, lower bound ${lowerMs.at(-1)?.wallS.toFixed(2)} s`,
      );
    }

    // Both must have computed the same digests.
    const statuses = new Map<string, number>();
    let mismatches = 0;
    poolResults.forEach((o, i) => {
      statuses.set(o.status, (statuses.get(o.status) ?? 0) + 1);
      const host = (files[i] as { host: string }).host;
      if (o.status === 'ok' && o.type === 'file' && o.sha256 !== lowerDigests.get(host)) mismatches++;
    });
    const capabilities = poolResults.filter(
      (o) => o.status === 'ok' && o.type === 'file' && o.capability,
    ).length;

    const a = summarize('HashPool (inspectAll)', files.length, totalBytes, poolMs);
    const b = summarize('lower bound (open/read/sha256)', files.length, totalBytes, lowerMs);
    const report = {
      machine: { cpus: os.availableParallelism(), threads, node: process.version, root: rootDir.hostPath },
      capabilities,
      listSource: source,
      files: files.length,
      bytes: totalBytes,
      pool: a,
      lowerBound: b,
      ratio: {
        medianWall: a.medianWallS / b.medianWallS,
        bestWall: a.bestWallS / b.bestWallS,
        medianCpu: a.medianCpuS / b.medianCpuS,
      },
      target: 1.3,
      check: {
        statuses: Object.fromEntries(statuses),
        digestMismatches: mismatches,
        filesWithCapabilities: capabilities,
      },
    };
    if (args.json) {
      console.log(JSON.stringify(report, null, 2));
      return;
    }
    const row = (cells: string[]) =>
      console.log(cells.map((c, i) => (i === 0 ? c.padEnd(32) : c.padStart(10))).join(' '));
    console.log('');
    row(['method', 'files', 'GB', 'median s', 'best s', 'files/s', 'GB/s', 'CPU s']);
    for (const m of [a, b]) {
      row([
        m.name,
        String(m.files),
        (m.bytes / 1e9).toFixed(2),
        m.medianWallS.toFixed(2),
        m.bestWallS.toFixed(2),
        Math.round(m.filesPerS).toString(),
        m.gbPerS.toFixed(2),
        m.medianCpuS.toFixed(2),
      ]);
    }
    console.log('');
    console.log(
      `ratio pool / lower bound: ${report.ratio.medianWall.toFixed(2)}x median wall, ` +
        `${report.ratio.bestWall.toFixed(2)}x best wall, ${report.ratio.medianCpu.toFixed(2)}x CPU ` +
        `(target <= ${report.target}x)`,
    );
    console.log(
      `check: ${[...statuses].map(([s, n]) => `${s} ${n}`).join(', ')}; ${mismatches} digest mismatches; ` +
        `${capabilities} files with capabilities`,
    );
  } finally {
    await pool.close();
    await lower.close();
  }
}

await main();
