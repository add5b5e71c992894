import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { parsePlatform, type PackageManagerName, type Platform, type SigningKey } from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import { GENERATION_DEFAULTS } from '../generation/debian-generator.js';
import { DirectorySink, writeAtomically } from '../generation/manifest-sink.js';
import type { GenerationEvent, GenerationResult } from '../generation/results.js';
import {
  catalogForPlatform,
  distroDigestName,
  generateForPlatform,
  packageManagerName,
  platformFamily,
  type PlatformRequest,
} from '../generation/dispatch.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { withInterrupt } from '../podman/interrupt.js';
import { Podman } from '../podman/podman.js';
import { aptCacheDir, generatorHome, signingKeyPath } from '../paths.js';
import { loadSigningKey } from '../signing-key.js';

interface Output {
  write(s: string): unknown;
  isTTY?: boolean;
}

/** The signing key `--key` (or its default) names, unlocked with `--passphrase-file`. */
function loadKey(opts: { key?: string; passphraseFile?: string }): Promise<SigningKey> {
  return loadSigningKey(signingKeyPath(opts.key), opts.passphraseFile);
}

/** The platform and its package family (UNSUPPORTED_PLATFORM for a distribution we do not know). */
function platformOf(id: string): { platform: Platform; family: PackageManagerName } {
  const platform = parsePlatform(id);
  return { platform, family: platformFamily(platform) };
}

async function imageFor(fleet: ImageFleet, id: string): Promise<PlatformImage> {
  const image = await fleet.getImage(id);
  if (image === undefined) {
    throw new GeneratorError(
      'IMAGE_NOT_FOUND',
      `no image for ${id}; build it with: sysattest-generator image build ${id}`,
    );
  }
  return image;
}

/** `name`, `name=version` or (rpm) `name:arch=version`. */
function parseRequest(spec: string): PlatformRequest {
  const m = /^([A-Za-z0-9_+][A-Za-z0-9._+~@-]*)(?::([a-z0-9_]+))?(?:=([A-Za-z0-9.+~:_^-]+))?$/.exec(spec);
  if (!m || (m[2] !== undefined && m[3] === undefined)) {
    throw new InvalidArgumentError(`"${spec}" is not PACKAGE, PACKAGE=VERSION or PACKAGE:ARCH=VERSION`);
  }
  return {
    name: m[1] as string,
    ...(m[2] !== undefined ? { arch: m[2] } : {}),
    ...(m[3] !== undefined ? { version: m[3] } : {}),
  };
}

function positive(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > 1000) throw new InvalidArgumentError(`${what} must be 1…1000`);
    return n;
  };
}

/** A progress line that rewrites itself on a terminal; one line per event otherwise. */
class Progress {
  private done = 0;
  private failed = 0;
  private readonly started = Date.now();
  constructor(
    private readonly err: Output,
    private readonly total: number,
    private readonly family: PackageManagerName,
  ) {}

  event(e: GenerationEvent): void {
    switch (e.kind) {
      case 'manifest':
        this.done++;
        this.line(`${e.name} ${e.version} (${e.architecture}): ${e.entries} paths`);
        break;
      case 'digest-mismatch':
        this.print(
          `warning: ${e.name} ${e.version}: ${e.paths.length} file(s) differ from the package's own ` +
            `${distroDigestName(this.family)}: ` +
            e.paths.slice(0, 5).join(', ') +
            (e.paths.length > 5 ? ', …' : ''),
        );
        break;
      case 'failed':
        this.failed++;
        this.print(`failed: ${e.message}`);
        break;
      case 'retry':
        this.print(`retrying ${e.packages.join(' ')} after a download failure: ${e.reason}`);
        break;
      case 'isolated':
        this.print(`${e.name} ${e.version}: made again alone (${e.reason})`);
        break;
      case 'batch-split':
        this.print(`${e.packages.length} package(s) refused together, trying them in halves: ${e.reason}`);
        break;
      case 'batch-start':
        this.line(`installing ${e.packages.length} package(s)…`);
        break;
    }
  }

  /** A status update: rewritten in place on a TTY, printed as a line otherwise. */
  private line(text: string): void {
    const elapsed = ((Date.now() - this.started) / 1000).toFixed(0);
    const status = `[${this.done} done, ${this.failed} failed / ${this.total} requested, ${elapsed} s] ${text}`;
    if (this.err.isTTY) this.err.write(`\r\x1b[K${status.slice(0, (process.stderr.columns || 100) - 1)}`);
    else this.err.write(`${status}\n`);
  }

  /** A message that must stay on screen. */
  print(text: string): void {
    this.err.write(this.err.isTTY ? `\r\x1b[K${text}\n` : `${text}\n`);
  }

  end(): void {
    if (this.err.isTTY) this.err.write('\r\x1b[K');
  }
}

/** Where the commands write, and how they run interruptibly. */
interface CommandIo {
  out: Output;
  err: Output;
  interruptible<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T>;
}

const keyOption = () =>
  new Option('--key <file>', 'signing key (default: $SYSATTEST_GENERATOR_KEY or the generator home)');
const passphraseOption = () =>
  new Option('--passphrase-file <file>', 'file holding the key passphrase (else $SYSATTEST_KEY_PASSPHRASE)');

export function registerGenerationCommands(
  program: Command,
  deps: { stdout?: Output; stderr?: Output } = {},
): void {
  const err = deps.stderr ?? process.stderr;
  const io: CommandIo = {
    out: deps.stdout ?? process.stdout,
    err,
    interruptible: (fn) =>
      withInterrupt(fn, {
        onInterrupt: (sig) => err.write(`\n${sig}: stopping, removing containers (again to quit now)…\n`),
        onForcedExit: () =>
          err.write('quitting without cleaning up; leftovers: podman ps -a --filter label=sysattest=1\n'),
      }),
  };
  registerCatalogCommand(program, io);
  registerGenerateCommand(program, io);
}

function registerCatalogCommand(program: Command, io: CommandIo): void {
  program
    .command('catalog')
    .description(
      "sign a snapshot of every package version the platform's repositories offer, read from the image's own " +
        'repository metadata: apt lists (Debian; the image is refreshed first with apt-get update unless ' +
        '--no-refresh), dnf repodata (repomd.xml + primary, each package with its SHA-256) or APKINDEX (Alpine, each ' +
        "package with the index's C: checksum, which is not a SHA-256); for dnf/apk a throwaway container runs " +
        'dnf makecache --refresh / apk update first unless --no-refresh (the image is not changed)',
    )
    .argument('<platform>', 'platform id, e.g. debian/bookworm/amd64, fedora/41/x86_64, alpine/3.20/x86_64')
    .option('--out <file>', 'where to write the catalog (a .asc signature is written beside it)')
    .option(
      '--no-refresh',
      'read the repository metadata cached in the image as it is, without apt-get update / dnf makecache / apk update',
    )
    .option('--network <name>', 'podman network for the containers')
    .addOption(keyOption())
    .addOption(passphraseOption())
    .action((platformId: string, opts: CatalogOptions) => runCatalog(platformId, opts, io));
}

interface CatalogOptions {
  out?: string;
  refresh: boolean;
  network?: string;
  key?: string;
  passphraseFile?: string;
}

async function runCatalog(platformId: string, opts: CatalogOptions, io: CommandIo): Promise<void> {
  const { platform, family } = platformOf(platformId);
  const key = await loadKey(opts);
  const podman = new Podman();
  const fleet = new ImageFleet({ podman, onProgress: (m) => io.err.write(`${m}\n`) });
  await imageFor(fleet, platformId);
  const r = await io.interruptible(async (signal) => {
    if (family === 'dpkg') {
      if (opts.refresh) await fleet.refreshImage(platformId, { network: opts.network, signal });
    } else if (opts.refresh) {
      io.err.write(
        `running ${family === 'rpm' ? 'dnf makecache --refresh' : 'apk update'} in a container of the image\n`,
      );
    }
    const image = await imageFor(fleet, platformId);
    return catalogForPlatform({
      platform,
      image,
      podman,
      key,
      network: opts.network,
      signal,
      refresh: family !== 'dpkg' && Boolean(opts.refresh),
    });
  });
  for (const w of r.warnings) io.err.write(`warning: ${w}\n`);
  const file = path.resolve(
    opts.out ??
      `catalog_${platform.distro}_${platform.release}_${platform.arch}_${r.catalog.generatedAt.replace(/[-:]/g, '')}.json`,
  );
  await writeAtomically(`${file}.asc`, r.signed.signature);
  await writeAtomically(file, r.signed.bytes);
  io.out.write(`${file}\n`);
  io.err.write(
    `${r.catalog.platform}: ${r.catalog.packages.length} package versions from ${r.catalog.provenance.sources.length} ` +
      `index(es), signed by ${key.fingerprint}\n`,
  );
}

function registerGenerateCommand(program: Command, io: CommandIo): void {
  program
    .command('generate')
    .description(
      "install package versions in fresh containers of the platform image with the image's own apt, dnf or apk, " +
        'and write one signed manifest per ' +
        'package version: <out>/<distro>/<release>/<arch>/<name>_<version>_<arch>.json (+ .asc)',
    )
    .argument('<platform>', 'platform id, e.g. debian/bookworm/amd64, fedora/41/x86_64, alpine/3.20/x86_64')
    .argument(
      '<packages...>',
      'PACKAGE=VERSION, or PACKAGE alone on apt platforms (the newest version the image offers); ' +
        'rpm: PACKAGE:ARCH=VERSION picks the architecture (x86_64, noarch), VERSION is [EPOCH:]VERSION-RELEASE',
      (v, prev: PlatformRequest[] | undefined) => [...(prev ?? []), parseRequest(v)],
    )
    .option('--out <dir>', 'output directory', 'manifests')
    .option('--with-deps', 'also make manifests for the dependencies each install pulled in')
    .option('--jobs <n>', 'lanes of containers at once', positive('--jobs'), GENERATION_DEFAULTS.jobs)
    .option(
      '--batch-size <n>',
      'packages installed per container (rpm and apk: at most 25)',
      positive('--batch-size'),
      GENERATION_DEFAULTS.batchSize,
    )
    .option('--network <name>', 'podman network for the containers')
    .option('--json', 'print the result as JSON')
    .addOption(keyOption())
    .addOption(passphraseOption())
    .action((platformId: string, requests: PlatformRequest[], opts: GenerateOptions) =>
      runGenerate(platformId, requests, opts, io),
    );
}

interface GenerateOptions {
  out: string;
  withDeps?: boolean;
  jobs: number;
  batchSize: number;
  network?: string;
  json?: boolean;
  key?: string;
  passphraseFile?: string;
}

async function runGenerate(
  platformId: string,
  requests: PlatformRequest[],
  opts: GenerateOptions,
  io: CommandIo,
): Promise<void> {
  const { platform, family } = platformOf(platformId);
  const withArch = requests.filter((r) => r.arch !== undefined).map((r) => `${r.name}:${r.arch}`);
  if (family !== 'rpm' && withArch.length > 0) {
    throw new GeneratorError(
      'INVALID_ARGUMENT',
      `${withArch.join(', ')}: PACKAGE:ARCH is for rpm platforms; ${platformId} installs its own architecture`,
    );
  }
  const key = await loadKey(opts);
  const podman = new Podman();
  await podman.check();
  const image = await imageFor(new ImageFleet({ podman }), platformId);
  const progress = new Progress(io.err, requests.length, family);
  const started = Date.now();
  const r = await io.interruptible((signal) =>
    generateForPlatform({
      platform,
      image,
      podman,
      key,
      sink: new DirectorySink(path.resolve(opts.out)),
      requests,
      withDeps: Boolean(opts.withDeps),
      jobs: opts.jobs,
      batchSize: opts.batchSize,
      aptCache: aptCacheDir(generatorHome(), platformId),
      network: opts.network,
      signal,
      onEvent: (e) => progress.event(e),
    }),
  );
  progress.end();
  printResult(r, Date.now() - started, family, opts.json === true, io);
  if (r.failures.length > 0) process.exitCode = 1;
}

function printResult(
  r: GenerationResult,
  elapsed: number,
  family: PackageManagerName,
  json: boolean,
  io: CommandIo,
): void {
  if (json) {
    io.out.write(`${JSON.stringify({ ...r, elapsedMs: elapsed }, null, 2)}\n`);
    return;
  }
  for (const m of r.manifests) io.out.write(`${m.file}\n`);
  const s = (ms: number) => (ms / 1000).toFixed(1);
  io.err.write(
    `${r.manifests.length} manifest(s), ${r.failures.length} failure(s) in ${s(elapsed)} s ` +
      `(${packageManagerName(family)} ${s(r.packageManagerMs)} s, podman ${s(r.podmanMs)} s, ` +
      `hashing+signing ${s(r.ownMs)} s)\n`,
  );
}
