/**
 * Generation benchmark: make manifests for every package installed on this machine that the
 * platform image's catalog offers at the same version, and report packages/minute and where the
 * time went (apt inside containers vs podman vs our own work: reading the database, hashing,
 * signing, writing).
 *
 * The time split: downloads (apt fetching into the platform's shared cache, lock waits included),
 * apt's install work (unpacking, maintainer scripts, triggers), podman (create, start, mount,
 * remove) and ours (database read, hashing, signing, hand-over). apt, podman and our times are
 * summed over the lanes that run side by side, so they are shown as shares of that sum.
 *
 * Usage: node packages/generator/dist/bench/generate.js [--platform debian/bookworm/amd64]
 *          [--jobs N] [--batch-size N] [--skip N] [--limit N] [--apt-cache DIR|none] [--cold] [--json]
 * --limit takes the first N packages (by name) of the set, for a run of a few minutes; --apt-cache
 * is the shared download cache (default a directory of the bench's own, kept between runs; none:
 * each container downloads for itself, as before the cache existed); --cold empties it first.
 * Needs root and podman; builds the platform image first if the generator has none.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import {
  RootDir,
  SigningKey,
  detectPlatforms,
  formatPlatform,
  generateSigningKey,
  parsePlatform,
  readDpkgDatabase,
} from '@sysattest/core';
import { GENERATION_DEFAULTS, generateDebian, type PackageRequest } from '../generation/debian-generator.js';
import { ImageFleet } from '../image/fleet.js';
import { Podman } from '../podman/podman.js';
import { readAptLists } from '../package-managers/apt/apt-lists.js';

const { values: args } = parseArgs({
  options: {
    platform: { type: 'string' },
    jobs: { type: 'string', default: String(GENERATION_DEFAULTS.jobs) },
    'batch-size': { type: 'string', default: String(GENERATION_DEFAULTS.batchSize) },
    'apt-cache': { type: 'string' },
    cold: { type: 'boolean', default: false },
    limit: { type: 'string' },
    skip: { type: 'string', default: '0' },
    json: { type: 'boolean', default: false },
  },
});

const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<void> {
  const platformId = args.platform ?? formatPlatform((await detectPlatforms('/')).primary);
  const platform = parsePlatform(platformId);
  const podman = new Podman();
  await podman.check();
  const fleet = new ImageFleet({ podman, onProgress: log });
  let image = await fleet.getImage(platformId);
  if (image === undefined) image = (await fleet.buildImage(platformId)).image;

  // What this machine has installed, and what the image's catalog offers.
  const host = await readDpkgDatabase('/');
  const mountContainer = await podman.createContainer(image.imageId, { command: ['apt-get', '--version'] });
  let offered: Set<string>;
  try {
    const mount = await podman.mount(mountContainer);
    offered = new Set(
      readAptLists(RootDir.open(mount), platform.arch).packages.map((p) => `${p.name}=${p.version}`),
    );
  } finally {
    await podman.unmount(mountContainer).catch(() => {});
    await podman.removeContainer(mountContainer).catch(() => {});
  }
  let requests: PackageRequest[] = host.packages
    .filter(
      (p) =>
        (p.architecture === platform.arch || p.architecture === 'all') &&
        offered.has(`${p.name}=${p.version}`),
    )
    .map((p) => ({ name: p.name, version: p.version }));
  const notOffered = host.packages.length - requests.length;
  // --skip and --limit give disjoint slices to benches run side by side (several workers).
  requests = requests.slice(Number(args.skip));
  if (args.limit) requests = requests.slice(0, Number(args.limit));
  log(
    `${host.packages.length} packages installed here; ${requests.length} offered by the catalog at the installed version (${notOffered} not)`,
  );

  const aptCache =
    args['apt-cache'] === 'none'
      ? undefined
      : (args['apt-cache'] ??
        path.join(os.tmpdir(), 'sysattest-generate-bench-apt', platformId.replace(/\//g, '-')));
  if (aptCache !== undefined) {
    if (args.cold) fs.rmSync(aptCache, { recursive: true, force: true });
    fs.mkdirSync(path.join(aptCache, 'partial'), { recursive: true });
  }
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-generate-bench-'));
  const key = await SigningKey.fromArmored((await generateSigningKey({ name: 'bench' })).armoredSecretKey);
  const started = Date.now();
  let done = 0;
  const r = await generateDebian({
    platform,
    image,
    podman,
    key,
    outDir: out,
    requests,
    jobs: Number(args.jobs),
    batchSize: Number(args['batch-size']),
    ...(aptCache ? { aptCache } : {}),
    onEvent: (e) => {
      if (e.kind === 'manifest' && ++done % 50 === 0)
        log(`${done} manifests, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      if (e.kind === 'failed') log(`failed: ${e.message}`);
      if (e.kind === 'isolated') log(`made again alone (${e.reason}): ${e.name}=${e.version}`);
    },
  });
  const wallMs = Date.now() - started;
  fs.rmSync(out, { recursive: true, force: true });
  // apt and podman time are summed over parallel containers; our own time likewise. The share
  // that matters is ours against the total work.
  const work = r.packageManagerMs + r.podmanMs + r.ownMs;
  const installMs = r.packageManagerMs - r.downloadMs;
  const share = (ms: number) => +(ms / work).toFixed(3);
  const figures = {
    platform: platformId,
    requested: requests.length,
    manifests: r.manifests.length,
    failures: r.failures.length,
    wallSeconds: +(wallMs / 1000).toFixed(1),
    packagesPerMinute: +((r.manifests.length / wallMs) * 60_000).toFixed(1),
    downloadSeconds: +(r.downloadMs / 1000).toFixed(1),
    installSeconds: +(installMs / 1000).toFixed(1),
    podmanSeconds: +(r.podmanMs / 1000).toFixed(1),
    ownSeconds: +(r.ownMs / 1000).toFixed(1),
    downloadShare: share(r.downloadMs),
    installShare: share(installMs),
    podmanShare: share(r.podmanMs),
    ownShare: share(r.ownMs),
    madeAgainAlone: r.isolated,
    jobs: Number(args.jobs),
    batchSize: Number(args['batch-size']),
    aptCache: aptCache ?? 'none',
    loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
  };
  if (args.json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  else {
    process.stdout.write(
      `generation bench (${platformId}, ${figures.jobs} job(s), batches of ${figures.batchSize})\n` +
        `  manifests        ${figures.manifests} of ${figures.requested} (${figures.failures} failed)\n` +
        `  wall time        ${figures.wallSeconds} s  = ${figures.packagesPerMinute} packages/minute\n` +
        `  time (summed over lanes) download ${figures.downloadSeconds} s (${pct(figures.downloadShare)}), ` +
        `apt install ${figures.installSeconds} s (${pct(figures.installShare)}), ` +
        `podman ${figures.podmanSeconds} s (${pct(figures.podmanShare)}), ours ${figures.ownSeconds} s (${pct(figures.ownShare)})\n` +
        `  not apt install  ${pct(1 - figures.installShare)} of the work (target ≤ 25 %)\n` +
        `  made again alone ${figures.madeAgainAlone}; apt cache ${figures.aptCache}; load average ${figures.loadAverage.join(' ')}\n`,
    );
  }
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

main().catch((e: unknown) => {
  process.stderr.write(`generate-bench: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
