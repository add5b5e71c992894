/**
 * `npm run bench -- verify`: `sysattest verify` over every package of this machine that has a
 * manifest, against `dpkg --verify` over the same packages and against the lower bound of hashing
 * the same files (core's lower-bound worker: open, read, SHA-256, close on every thread), all in
 * one run; and the verify process's peak memory (max RSS, all threads).
 *
 * Where the manifests come from — said plainly: this machine's packages are not in any
 * generator's output here, so the benchmark MAKES them from the live disk with the generator's
 * manifest builder (the files as installed now, hashed, signed with a throwaway key) and serves
 * them from a real `sysattest-server` process on a temporary SQLite file. So the verify run is
 * expected to find nothing; the figures are about speed and memory, not about this machine.
 * A package whose manifest cannot be built (a path that cannot be inspected) is left out of all
 * three measurements.
 *
 * Measured (rounds alternate the order, the machine is shared and noisy; one untimed pass warms
 * the page cache):
 *  - verify, first run: empty client cache, every manifest fetched from the server and verified;
 *  - verify, later runs: digests-only lookups, manifests from the client's sealed cache, the usual case;
 *  - dpkg --verify PKG…: MD5 of the same packages' files, C, one core;
 *  - lower bound: SHA-256 of the same regular files on as many threads as verify hashes with.
 *
 * Usage: node packages/client/dist/bench/verify-bench.js [--rounds N] [--jobs N] [--json] [--keep]
 * (`--keep` leaves the key, the client cache and an offline verify command line in the work
 * directory it names, for profiling one run by hand.)
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import {
  HashPool,
  RootDir,
  SigningKey,
  detectPlatforms,
  formatPlatform,
  generateSigningKey,
  readDpkgDatabase,
  readRootAccounts,
  signCatalog,
  signManifest,
  sortCatalogPackages,
  type FileObservation,
  type Manifest,
} from '@sysattest/core';
import { buildManifest } from '@sysattest/generator/dist/generation/manifest-builder.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    jobs: { type: 'string' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const rounds = Math.max(1, Number(args.rounds));
const jobs = Math.max(1, Number(args.jobs ?? os.availableParallelism()));
const log = (s: string): void => {
  if (args.json) process.stderr.write(`${s}\n`);
  else process.stdout.write(`${s}\n`);
};

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const CLIENT = path.join(repoRoot, 'packages/client/bin/sysattest.js');
const SERVER = path.join(repoRoot, 'packages/server/bin/sysattest-server.js');
const LOWER_BOUND_WORKER = path.join(repoRoot, 'packages/core/dist/bench/lower-bound-worker.js');

interface Timed {
  wallS: number;
  maxRssMb?: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Runs a command under GNU time: wall seconds and max RSS; stdout returned. */
function timedCommand(
  cmd: string,
  argv: string[],
  env: NodeJS.ProcessEnv = process.env,
): Timed & { status: number; stdout: string } {
  const timeFile = path.join(os.tmpdir(), `sysattest-bench-time-${process.pid}`);
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...argv], {
    encoding: 'utf8',
    env,
    maxBuffer: 1024 * 1024 * 1024,
  });
  const wallS = (performance.now() - t0) / 1000;
  const kb = Number(fs.readFileSync(timeFile, 'utf8').trim().split('\n').pop());
  fs.rmSync(timeFile, { force: true });
  return { wallS, maxRssMb: kb / 1024, status: r.status ?? -1, stdout: r.stdout };
}

async function main(): Promise<void> {
  if (!fs.existsSync('/usr/bin/time'))
    throw new Error('needs GNU time (/usr/bin/time, Debian package "time")');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-verify-bench-'));
  let server: ReturnType<typeof spawn> | undefined;
  try {
    const db = await readDpkgDatabase('/');
    const { primary } = await detectPlatforms('/');
    log(
      `verify bench: ${db.packages.length} installed packages (${primary.distro}/${primary.release}/${primary.arch}), ${jobs} threads`,
    );

    // 1. Manifests from the live disk (see the header), signed with a throwaway key.
    let t0 = performance.now();
    const actual = new Set<string>();
    for (const pkg of db.packages) {
      for (const f of pkg.files) if (f.path !== '/') actual.add(db.applyDiversions(f.path, pkg.name));
    }
    const paths = [...actual];
    const pool = new HashPool({ md5: true, capabilities: 'executable', threads: jobs });
    let observed: FileObservation[];
    try {
      observed = await pool.inspectAll('/', paths);
    } finally {
      await pool.close();
    }
    const byPath = new Map(paths.map((p, i) => [p, observed[i] as FileObservation]));
    const accounts = readRootAccounts(RootDir.open('/'));
    const k = await generateSigningKey({ name: 'sysattest verify bench (throwaway)' });
    const key = await SigningKey.fromArmored(k.armoredSecretKey);
    const keyFile = path.join(work, 'bench-key.asc');
    fs.writeFileSync(keyFile, k.armoredPublicKey);
    const generatedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const signed: { name: string; arch: string; bytes: Uint8Array; signature: string; manifest: Manifest }[] =
      [];
    const skipped: string[] = [];
    for (const pkg of db.packages) {
      try {
        const built = buildManifest(pkg, {
          distroRelease: `${primary.distro}/${primary.release}`,
          provenance: {
            generatedAt,
            generator: { name: 'sysattest verify bench (from the live disk)', version: '0' },
            keyFingerprint: key.fingerprint,
            image: { id: 'live-disk' },
            installer: 'none (the live disk)',
          },
          accounts,
          divertedLocation: (p, name) => db.applyDiversions(p, name),
          diversions: db.diversions,
          observation: (p) => byPath.get(p),
        });
        const s = await signManifest(built.manifest, key);
        signed.push({
          name: pkg.name,
          arch: pkg.architecture,
          bytes: s.bytes,
          signature: s.signature,
          manifest: built.manifest,
        });
      } catch (e) {
        skipped.push(`${pkg.name}:${pkg.architecture} (${(e as Error).message})`);
      }
    }
    byPath.clear();
    observed = [];
    log(
      `  manifests made from the live disk: ${signed.length} (${skipped.length} skipped) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const s of skipped.slice(0, 5)) log(`    skipped ${s}`);

    // 2. A real server with them.
    t0 = performance.now();
    const dbFile = path.join(work, 'server.sqlite');
    const token = spawnSync(
      process.execPath,
      [SERVER, 'token', 'create', '--role', 'generator', '--name', 'bench', '--database', dbFile],
      {
        encoding: 'utf8',
      },
    ).stdout.trim();
    server = spawn(
      process.execPath,
      [SERVER, 'serve', '--port', '0', '--database', dbFile, '--trust-key', keyFile],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server?.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1] as string);
      });
      server?.once('exit', (code) => reject(new Error(`the server exited with ${code}`)));
    });
    for (const s of signed) {
      const r = await fetch(`${url}/v1/manifests`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ manifest: Buffer.from(s.bytes).toString('base64'), signature: s.signature }),
      });
      if (r.status !== 200 && r.status !== 201)
        throw new Error(`upload ${s.name}: ${r.status} ${await r.text()}`);
    }
    // The platform's signed catalog (the installed versions), as a worker would upload it: without
    // one, every run would report that the server named no snapshot (stale-catalog).
    const catalog = await signCatalog(
      {
        schema: 'sysattest.catalog',
        schemaVersion: 1,
        platform: formatPlatform(primary),
        generatedAt,
        provenance: {
          generator: { name: 'sysattest verify bench (from the live disk)', version: '0' },
          keyFingerprint: key.fingerprint,
          image: { id: 'live-disk' },
          sources: [],
        },
        packages: sortCatalogPackages(
          db.packages.map((p) => ({
            name: p.name,
            version: p.version,
            architecture: p.architecture,
            source: { name: p.name, version: p.version },
            size: 0,
            sha256: '0'.repeat(64),
          })),
        ),
      },
      key,
    );
    const up = await fetch(`${url}/v1/catalogs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({
        catalog: Buffer.from(catalog.bytes).toString('base64'),
        signature: catalog.signature,
      }),
    });
    if (up.status !== 200 && up.status !== 201)
      throw new Error(`upload catalog: ${up.status} ${await up.text()}`);
    log(`  uploaded to ${url} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // The same work for all three: these packages, these files.
    const names = signed.map((s) => `${s.name}:${s.arch}`);
    const files: string[] = [];
    let entries = 0;
    let hardLinkEntries = 0;
    for (const s of signed) {
      entries += s.manifest.entries.length;
      for (const e of s.manifest.entries) {
        if (e.type === 'file') files.push(db.applyDiversions(e.path, s.name));
        else if (e.type === 'hardlink') hardLinkEntries++;
      }
    }
    const uniqueFiles = [...new Set(files)];
    let bytes = 0;
    for (const f of uniqueFiles) {
      try {
        bytes += fs.statSync(f).size;
      } catch {
        // gone meanwhile
      }
    }
    signed.length = 0;
    // Hard links: a manifest lists the first name of an inode as a file and the others as hard
    // links of it. dpkg --verify reads every name; verify reads an inode once per run and hash
    // thread (core's HardLinkMemo), and the lower bound hashes the file entries: once.
    log(
      `  ${names.length} packages, ${entries} manifest entries, ${uniqueFiles.length} regular files, ${(bytes / 1e9).toFixed(2)} GB ` +
        `(+ ${hardLinkEntries} hard-link entries: further names of those files)`,
    );

    const clientHome = path.join(work, 'client');
    const verifyArgs = [
      'verify',
      '--server',
      url,
      '--keyring',
      keyFile,
      '--format',
      'json',
      '--jobs',
      String(jobs),
      '--packages',
      names.join(','),
    ];
    const env = { ...process.env, SYSATTEST_CLIENT_HOME: clientHome, SYSATTEST_CONFIG: '' };
    const runVerify = (): Timed & { findings: number; status: number } => {
      const r = timedCommand(process.execPath, [CLIENT, ...verifyArgs], env);
      let findings = -1;
      try {
        findings = (JSON.parse(r.stdout) as { summary: { failures: number } }).summary.failures;
      } catch {
        // reported below as -1
      }
      return { ...r, findings };
    };
    const runDpkg = (): Timed => timedCommand('dpkg', ['--verify', ...names]);
    const lowerBound = new LowerBound(jobs);
    const runLowerBound = async (): Promise<Timed> => {
      const t = performance.now();
      await lowerBound.run(split(uniqueFiles, jobs));
      return { wallS: (performance.now() - t) / 1000 };
    };

    // Untimed warm-up of the page cache, then the first (cold client cache) verify.
    await runLowerBound();
    const first = runVerify();
    log(
      `  verify, first run (fetch + verify every manifest): ${first.wallS.toFixed(2)} s, max RSS ${first.maxRssMb?.toFixed(0)} MB, exit ${first.status}, ${first.findings} failures`,
    );
    const verifyRuns: (Timed & { findings: number; status: number })[] = [];
    const dpkgRuns: Timed[] = [];
    const lowerRuns: Timed[] = [];
    for (let i = 0; i < rounds; i++) {
      const order = i % 2 === 0 ? ['verify', 'dpkg', 'lower'] : ['lower', 'dpkg', 'verify'];
      for (const what of order) {
        if (what === 'verify') verifyRuns.push(runVerify());
        else if (what === 'dpkg') dpkgRuns.push(runDpkg());
        else lowerRuns.push(await runLowerBound());
      }
    }
    await lowerBound.close();
    const v = median(verifyRuns.map((r) => r.wallS));
    const d = median(dpkgRuns.map((r) => r.wallS));
    const l = median(lowerRuns.map((r) => r.wallS));
    const rss = Math.max(first.maxRssMb ?? 0, ...verifyRuns.map((r) => r.maxRssMb ?? 0));
    const result = {
      packages: names.length,
      skippedPackages: skipped.length,
      entries,
      files: uniqueFiles.length,
      bytes,
      hardLinkEntries,
      jobs,
      rounds,
      verifyFirstRunS: first.wallS,
      verifyCachedMedianS: v,
      verifyCachedRunsS: verifyRuns.map((r) => r.wallS),
      verifyExitCodes: [first.status, ...verifyRuns.map((r) => r.status)],
      verifyFailures: [first.findings, ...verifyRuns.map((r) => r.findings)],
      verifyMaxRssMb: rss,
      dpkgVerifyMedianS: d,
      dpkgVerifyRunsS: dpkgRuns.map((r) => r.wallS),
      lowerBoundMedianS: l,
      lowerBoundRunsS: lowerRuns.map((r) => r.wallS),
      speedupVsDpkg: d / v,
      ratioToLowerBound: v / l,
    };
    log(
      `  verify (cached manifests), median of ${rounds}: ${v.toFixed(2)} s  [${result.verifyCachedRunsS.map((x) => x.toFixed(2)).join(', ')}]`,
    );
    log(
      `  dpkg --verify, median of ${rounds}:             ${d.toFixed(2)} s  [${result.dpkgVerifyRunsS.map((x) => x.toFixed(2)).join(', ')}]`,
    );
    log(
      `  lower bound (SHA-256, ${jobs} threads), median:  ${l.toFixed(2)} s  [${result.lowerBoundRunsS.map((x) => x.toFixed(2)).join(', ')}]`,
    );
    log(
      `  verify is ${result.speedupVsDpkg.toFixed(1)}× faster than dpkg --verify (target ≥ 4×), ${result.ratioToLowerBound.toFixed(2)}× the lower bound (target ≤ 1.5×)`,
    );
    log(`  verify peak memory (max RSS, all threads): ${rss.toFixed(0)} MB (target ≤ 300 MB)`);
    if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    if (args.keep) {
      const offline = verifyArgs.filter((_, i) => i !== 1 && i !== 2).concat('--offline');
      fs.writeFileSync(path.join(work, 'verify-offline.args'), offline.join('\n'));
      log(`  kept ${work}: SYSATTEST_CLIENT_HOME=${clientHome}, arguments in verify-offline.args`);
    }
  } finally {
    server?.kill('SIGTERM');
    if (!args.keep) fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Splits files over threads by size (largest first onto the least loaded), like core's hash bench. */
function split(files: readonly string[], n: number): string[][] {
  const sized = files.map((f) => {
    try {
      return { f, size: fs.statSync(f).size };
    } catch {
      return { f, size: 0 };
    }
  });
  sized.sort((a, b) => b.size - a.size);
  const shares: string[][] = Array.from({ length: n }, () => []);
  const load = new Array<number>(n).fill(0);
  for (const { f, size } of sized) {
    let best = 0;
    for (let t = 1; t < n; t++) if ((load[t] as number) < (load[best] as number)) best = t;
    (shares[best] as string[]).push(f);
    load[best] = (load[best] as number) + size + 64 * 1024;
  }
  return shares;
}

/** Persistent workers running core's lower-bound loop (open, read 1 MiB chunks, SHA-256, close). */
class LowerBound {
  private readonly workers: Worker[];
  constructor(n: number) {
    this.workers = Array.from({ length: n }, () => new Worker(LOWER_BOUND_WORKER));
  }
  async run(shares: string[][]): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise<void>((resolve, reject) => {
            w.once('message', () => resolve());
            w.once('error', reject);
            w.postMessage({ paths: shares[i] ?? [] });
          }),
      ),
    );
  }
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`verify bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
