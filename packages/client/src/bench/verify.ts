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
 * Usage: node packages/client/dist/bench/verify.js [--rounds N] [--jobs N] [--json] [--keep]
 * (`--keep` leaves the key, the client cache and an offline verify command line in the work
 * directory it names, for profiling one run by hand.)
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { SigningKey, generateSigningKey } from '@sysattest/core';
import { startE2EServer, type E2EServer } from '../testkit/e2e.js';
import { signRootReference } from '../testkit/installed-root.js';

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
  let server: E2EServer | undefined;
  try {
    // 1. Manifests from the live disk (see the header), signed with a throwaway key.
    let t0 = performance.now();
    const k = await generateSigningKey({ name: 'sysattest verify bench (throwaway)' });
    const keyFile = path.join(work, 'bench-key.asc');
    fs.writeFileSync(keyFile, k.armoredPublicKey);
    const reference = await signRootReference('/', {
      key: await SigningKey.fromArmored(k.armoredSecretKey),
      generator: { name: 'sysattest verify bench (from the live disk)', version: '0' },
      imageId: 'live-disk',
      installer: 'none (the live disk)',
      threads: jobs,
      skipUnbuildable: true,
    });
    const { db, primary, manifests: signed, skipped } = reference;
    log(
      `verify bench: ${db.packages.length} installed packages (${primary.distro}/${primary.release}/${primary.arch}), ${jobs} threads`,
    );
    log(
      `  manifests made from the live disk: ${signed.length} (${skipped.length} skipped) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    for (const s of skipped.slice(0, 5)) log(`    skipped ${s}`);

    // 2. A real server with them and the platform's signed catalog (the installed versions), as a
    // worker would upload it: without one, every run would report that the server named no
    // snapshot (stale-catalog).
    t0 = performance.now();
    server = await startE2EServer(work, keyFile);
    const url = server.url;
    for (const s of signed)
      await server.post('/v1/manifests', {
        manifest: Buffer.from(s.signed.bytes).toString('base64'),
        signature: s.signed.signature,
      });
    await server.uploadCatalog(reference.catalog);
    log(`  uploaded to ${url} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    // The same work for all three: these packages, these files.
    const names = signed.map((s) => `${s.name}:${s.architecture}`);
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
    server?.stop();
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
