import {
  HashPool,
  RootDir,
  readApkDatabase,
  readRootAccounts,
  readRpmDatabase,
  signCatalog,
  sortCatalogPackages,
  type Catalog,
  type FileObservation,
  type SignedDocument,
  type InstalledPackage,
  type Manifest,
  type PackageManagerName,
  type Platform,
  type SigningKey,
} from '@sysattest/core';
import type { PlatformImage } from '../image/state.js';
import { ApkIndexError, readApkCatalog } from '../package-managers/apk/apkindex.js';
import { apkAddArgv, apkUpdateArgv } from '../package-managers/apk/commands.js';
import { dnfInstallArgv, dnfMakecacheArgv } from '../package-managers/dnf/commands.js';
import { RepodataError, readDnfCatalog } from '../package-managers/dnf/repodata.js';
import { GeneratorError } from '../errors.js';
import { NotInstalledError, ownedFiles, type RequestedPackage } from '../package-managers/owned.js';
import { stderrTail, type Podman } from '../podman/index.js';
import { GENERATOR_VERSION } from '../version.js';
import { inContainer } from './container.js';
import { buildManifest } from './manifest-builder.js';
import { handOver, sinkOf, type ManifestOutput, type ManifestSink } from './manifest-sink.js';
import {
  emptyResult,
  failureOf,
  recordFailure,
  type GenerationEvent,
  type GenerationOutcome,
  type GenerationResult,
} from './results.js';

/**
 * Generation for the rpm (dnf: Fedora, RHEL and rebuilds) and apk (Alpine) families. As for
 * Debian, a fresh container per batch runs one command, the package manager installing exact
 * versions (an argument vector, no shell: an Alpine image has no bash); then, from the host,
 * through `podman mount`, core's readers list what each package owns from the container's own
 * database (rpm header digests, apk `Z:` checksums) and every path is inspected in-root. One
 * signed manifest per package version, the distribution's digest next to ours.
 *
 * The "list + hash + build + sign" step (manifestsFromRoot) takes any root, so it is tested on
 * roots made locally with `rpm --root` and on a hand-made Alpine root, and through a real podman
 * mount of an imported root tarball.
 */

/** The families this module generates for (dpkg's is debian-generator.ts). */
export type RpmApkFamily = Exclude<PackageManagerName, 'dpkg'>;

/** Which extra digests a package database's files need from the hash pool. */
function poolOptions(packages: readonly InstalledPackage[]): {
  md5: boolean;
  sha1: boolean;
  sha512: boolean;
} {
  const need = new Set<string>();
  for (const p of packages) for (const f of p.files) if (f.digest) need.add(f.digest.algorithm);
  return { md5: need.has('md5'), sha1: need.has('sha1'), sha512: need.has('sha512') };
}

/** One hash pool per combination of extra digests, made when first needed. */
export class FamilyHashPools {
  private readonly pools = new Map<string, HashPool>();
  constructor(private readonly threads?: number) {}

  for(packages: readonly InstalledPackage[]): HashPool {
    const o = poolOptions(packages);
    const key = `${o.md5}${o.sha1}${o.sha512}`;
    let pool = this.pools.get(key);
    if (pool === undefined) {
      pool = new HashPool({ threads: this.threads, capabilities: 'all', ...o });
      this.pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
    this.pools.clear();
  }
}

export type RootManifestOptions = RootManifestSettings & ManifestOutput;

interface RootManifestSettings {
  /** Host path of the (mounted) root filesystem after the install. */
  root: string;
  family: RpmApkFamily;
  platform: Platform;
  /** The packages to make manifests for, as installed. */
  packages: RequestedPackage[];
  /** Also every package of the root not in this set of `name version arch` (the install's deps). */
  withDepsExcept?: Set<string>;
  key: SigningKey;
  pools: FamilyHashPools;
  image: { id: string; refreshedAt?: string };
  generatedAt?: string;
  onEvent?: (e: GenerationEvent) => void;
}

export interface RootManifestResult extends GenerationOutcome {
  /** Paths per package whose distribution digest disagrees with ours. */
  digestMismatches: { name: string; version: string; paths: string[] }[];
}

/** `name version arch`: a package's identity in a root. */
export function packageKey(p: { name: string; version: string; architecture: string }): string {
  return `${p.name} ${p.version} ${p.architecture}`;
}

/**
 * Lists what each requested package owns from the root's own database, inspects every path
 * in-root (our SHA-256, plus the distribution's digest algorithm to compare), builds, signs and
 * writes one manifest per package. A package whose manifest cannot be made is a failure, not a
 * throw; a requested package that is not installed throws GENERATION_FAILED naming it and what
 * is installed instead (the install did not do its job).
 */
export async function manifestsFromRoot(opts: RootManifestOptions): Promise<RootManifestResult> {
  const emit = opts.onEvent ?? (() => {});
  const sink = sinkOf(opts);
  const out: RootManifestResult = { manifests: [], failures: [], digestMismatches: [] };
  const packages = await rootTargets(opts);
  const paths = [...new Set(packages.flatMap((p) => p.files.map((f) => f.path)).filter((p) => p !== '/'))];
  const observed = await opts.pools.for(packages).inspectAll(opts.root, paths);
  const byPath = new Map<string, FileObservation>(observed.map((o) => [o.path, o]));
  const accounts = readRootAccounts(RootDir.open(opts.root));
  const provenance = await rootProvenance(opts);
  for (const pkg of packages) {
    const build = () =>
      buildManifest(pkg, {
        distroRelease: `${opts.platform.distro}/${opts.platform.release}`,
        provenance,
        accounts,
        divertedLocation: (p) => p,
        observation: (p) => byPath.get(p),
      });
    const spec = `${pkg.name}-${pkg.version}.${pkg.architecture}`;
    const built = await handOver(pkg, spec, build, { key: opts.key, sink, into: out, emit });
    if (built !== undefined && built.digestMismatches.length > 0)
      out.digestMismatches.push({ name: pkg.name, version: pkg.version, paths: built.digestMismatches });
  }
  return out;
}

/** The requested packages as the root's database has them, plus (with deps) what the install added. */
async function rootTargets(opts: RootManifestSettings): Promise<InstalledPackage[]> {
  const targets = new Map<string, InstalledPackage>();
  let owned: InstalledPackage[];
  try {
    owned = await ownedFiles(opts.root, opts.family, opts.packages);
  } catch (e) {
    if (e instanceof NotInstalledError)
      throw new GeneratorError('GENERATION_FAILED', e.message, { cause: e });
    throw e;
  }
  for (const p of owned) targets.set(packageKey(p), p);
  if (opts.withDepsExcept !== undefined) {
    const all =
      opts.family === 'rpm'
        ? (await readRpmDatabase(opts.root)).packages
        : (await readApkDatabase(opts.root)).packages;
    for (const p of all) if (!opts.withDepsExcept.has(packageKey(p))) targets.set(packageKey(p), p);
  }
  return [...targets.values()];
}

/** The provenance every manifest of the root carries. */
async function rootProvenance(opts: RootManifestSettings): Promise<Manifest['provenance']> {
  return {
    generatedAt: opts.generatedAt ?? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    generator: { name: 'sysattest-generator', version: GENERATOR_VERSION },
    keyFingerprint: opts.key.fingerprint,
    image: {
      id: opts.image.id,
      ...(opts.image.refreshedAt ? { refreshedAt: toSeconds(opts.image.refreshedAt) } : {}),
    },
    installer: await installerVersion(opts.root, opts.family),
  };
}

/** `dnf 4.x`/`rpm 4.x` or `apk-tools 2.x`, from the root's own database. */
async function installerVersion(root: string, family: RpmApkFamily): Promise<string> {
  if (family === 'apk') {
    const tools = (await readApkDatabase(root)).packages.find((p) => p.name === 'apk-tools');
    return `apk-tools ${tools?.version ?? 'unknown'}`;
  }
  const packages = (await readRpmDatabase(root)).packages;
  const dnf = packages.find((p) => p.name === 'dnf5') ?? packages.find((p) => p.name === 'dnf');
  if (dnf !== undefined) return `${dnf.name} ${dnf.version}`;
  return `rpm ${packages.find((p) => p.name === 'rpm')?.version ?? 'unknown'}`;
}

export type FamilyGenerationOptions = FamilyGenerationSettings & ManifestOutput;

interface FamilyGenerationSettings {
  family: RpmApkFamily;
  platform: Platform;
  image: PlatformImage;
  podman: Podman;
  key: SigningKey;
  /** Exact versions (the rpm architecture is optional: dnf picks the native one or noarch). */
  requests: RequestedPackage[];
  withDeps?: boolean;
  batchSize?: number;
  /** Containers at once (default 1). */
  jobs?: number;
  hashThreads?: number;
  network?: string;
  signal?: AbortSignal;
  onEvent?: (e: GenerationEvent) => void;
}

/** The install command of a batch: an argument vector, run without a shell. */
export function installArgv(family: RpmApkFamily, batch: readonly RequestedPackage[]): string[] {
  return family === 'rpm' ? dnfInstallArgv(batch) : apkAddArgv(batch);
}

/**
 * Podman-driven generation for an rpm or apk platform image: the image's installed set is read
 * once (for `withDeps`), then each batch gets a fresh container whose one command is the
 * install; a refused batch is split in two until the package that cannot be installed fails
 * alone. Not run end to end here: no dnf or apk repository is reachable from this machine.
 */
export async function generateRpmApk(opts: FamilyGenerationOptions): Promise<GenerationResult> {
  const emit = opts.onEvent ?? (() => {});
  const result = emptyResult();
  const pools = new FamilyHashPools(opts.hashThreads);
  const valid: RequestedPackage[] = [];
  for (const r of opts.requests) {
    try {
      installArgv(opts.family, [r]);
      valid.push(r);
    } catch (e) {
      recordFailure(result, emit, { request: `${r.name}=${r.version}`, ...r, ...failureOf(e) });
    }
  }
  try {
    // The image as it is: mounted, nothing run in it.
    const baseline = await inContainer(opts, undefined, result, async (r) => {
      const db = opts.family === 'rpm' ? await readRpmDatabase(r.mount) : await readApkDatabase(r.mount);
      return new Set(db.packages.map(packageKey));
    });
    const run: FamilyRun = { opts, sink: sinkOf(opts), baseline, pools, result, emit };
    await runBatches(run, valid, opts.batchSize ?? 25, opts.jobs ?? 1);
  } finally {
    await pools.close();
  }
  return result;
}

interface FamilyRun {
  opts: FamilyGenerationSettings;
  sink: ManifestSink;
  /** `name version arch` of every package in the image before any install. */
  baseline: Set<string>;
  pools: FamilyHashPools;
  result: GenerationResult;
  emit: (e: GenerationEvent) => void;
}

/**
 * `jobs` containers at once, one batch each; after a failure no new batch starts, and the running
 * ones end before the error is thrown (so no container outlives the run).
 */
async function runBatches(run: FamilyRun, requests: RequestedPackage[], batchSize: number, jobs: number) {
  const size = Math.max(1, batchSize);
  const batches: RequestedPackage[][] = [];
  for (let i = 0; i < requests.length; i += size) batches.push(requests.slice(i, i + size));
  let next = 0;
  let failed = false;
  const lanes = Array.from({ length: Math.max(1, Math.min(jobs, batches.length)) }, async () => {
    while (!failed && next < batches.length) {
      const batch = batches[next++] as RequestedPackage[];
      try {
        await runBatch(run, batch);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  });
  const settled = await Promise.allSettled(lanes);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
}

/** One container installs the batch; a refused batch is bisected until the package that fails is alone. */
async function runBatch(run: FamilyRun, batch: RequestedPackage[]): Promise<void> {
  const { opts, result, emit } = run;
  const specs = batch.map((r) => `${r.name}=${r.version}`);
  emit({ kind: 'batch-start', packages: specs });
  const failed = await inContainer(opts, installArgv(opts.family, batch), result, async (r) => {
    if (r.code !== 0) return stderrTail(`${r.stdout}\n${r.stderr}`, 400) || `exit status ${r.code}`;
    const own = Date.now();
    try {
      const made = await manifestsFromRoot(batchRoot(run, batch, r.mount));
      result.manifests.push(...made.manifests);
      result.failures.push(...made.failures);
    } finally {
      result.ownMs += Date.now() - own;
    }
    return undefined;
  });
  if (failed === undefined) return;
  if (batch.length > 1) {
    emit({ kind: 'batch-split', packages: specs, reason: failed });
    const half = Math.ceil(batch.length / 2);
    await runBatch(run, batch.slice(0, half));
    await runBatch(run, batch.slice(half));
    return;
  }
  const { name, version } = batch[0] as RequestedPackage;
  const request = specs[0] as string;
  const message = `${request}: ${opts.family === 'rpm' ? 'dnf install' : 'apk add'} failed: ${failed}`;
  recordFailure(result, emit, { request, name, version, code: 'GENERATION_FAILED', message });
}

/** What manifestsFromRoot needs for a batch installed in a container mounted at `root`. */
function batchRoot(run: FamilyRun, batch: RequestedPackage[], root: string): RootManifestOptions {
  const { opts } = run;
  const refreshedAt = opts.image.refreshedAt ?? opts.image.builtAt;
  return {
    root,
    family: opts.family,
    platform: opts.platform,
    packages: batch,
    ...(opts.withDeps ? { withDepsExcept: run.baseline } : {}),
    key: opts.key,
    sink: run.sink,
    pools: run.pools,
    image: { id: opts.image.imageId, ...(refreshedAt ? { refreshedAt } : {}) },
    onEvent: run.emit,
  };
}

function toSeconds(iso: string): string {
  return new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * A signed catalog of an rpm or apk platform from a root's own repository metadata: dnf's cached
 * repomd/primary files (see readDnfCatalog; each entry with the archive's SHA-256) or apk's
 * cached APKINDEX files (see readApkCatalog; each entry with the index's `C:` checksum as
 * `apkChecksum`, since an APKINDEX records no SHA-256 of the archive).
 */
export async function catalogFromRoot(opts: {
  root: string;
  family: RpmApkFamily;
  platform: Platform;
  key: SigningKey;
  imageId: string;
}): Promise<{ catalog: Catalog; signed: SignedDocument; warnings: string[] }> {
  let read: { packages: Catalog['packages']; sources: Catalog['provenance']['sources']; warnings: string[] };
  try {
    read =
      opts.family === 'rpm'
        ? readDnfCatalog(RootDir.open(opts.root), opts.platform.arch)
        : readApkCatalog(RootDir.open(opts.root), opts.platform.arch);
  } catch (e) {
    if (e instanceof RepodataError || e instanceof ApkIndexError)
      throw new GeneratorError('CATALOG_FAILED', e.message, { cause: e });
    throw e;
  }
  if (read.packages.length === 0) {
    throw new GeneratorError(
      'CATALOG_FAILED',
      `the cached repository metadata lists no package for ${opts.platform.arch} or noarch` +
        (read.warnings.length > 0 ? `: ${read.warnings.slice(0, 3).join('; ')}` : ''),
    );
  }
  const catalog: Catalog = {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: `${opts.platform.distro}/${opts.platform.release}/${opts.platform.arch}`,
    generatedAt: toSeconds(new Date().toISOString()),
    provenance: {
      generator: { name: 'sysattest-generator', version: GENERATOR_VERSION },
      keyFingerprint: opts.key.fingerprint,
      image: { id: opts.imageId },
      sources: read.sources,
    },
    packages: sortCatalogPackages(read.packages),
  };
  const signed = await signCatalog(catalog, opts.key);
  return { catalog, signed, warnings: read.warnings };
}

/** The command that refreshes the image's repository metadata: `dnf makecache --refresh` / `apk update`. */
export function metadataRefreshArgv(family: RpmApkFamily): string[] {
  return family === 'rpm' ? dnfMakecacheArgv() : apkUpdateArgv();
}

/**
 * catalogFromRoot on a fresh container of the platform image, read through its mount. With
 * `refresh`, the container's one command is metadataRefreshArgv (the image's own dnf or apk
 * downloads and checks the repository metadata; the image itself is not changed) and the catalog
 * is read after it; without, the metadata cached in the image as it is.
 */
export async function catalogRpmApk(
  opts: Pick<
    FamilyGenerationOptions,
    'family' | 'platform' | 'image' | 'podman' | 'key' | 'network' | 'signal'
  > & { refresh?: boolean },
): Promise<{ catalog: Catalog; signed: SignedDocument; warnings: string[] }> {
  const timing = { podmanMs: 0, packageManagerMs: 0 };
  const command = opts.refresh ? metadataRefreshArgv(opts.family) : undefined;
  return inContainer(opts, command, timing, (r) => {
    if (r.code !== 0) {
      throw new GeneratorError(
        'CATALOG_FAILED',
        `${(command as string[]).join(' ')} failed in the ${formatPlatformOf(opts.platform)} image: ` +
          (stderrTail(`${r.stdout}\n${r.stderr}`, 400) || `exit status ${r.code}`),
      );
    }
    return catalogFromRoot({
      root: r.mount,
      family: opts.family,
      platform: opts.platform,
      key: opts.key,
      imageId: opts.image.imageId,
    });
  });
}

function formatPlatformOf(p: Platform): string {
  return `${p.distro}/${p.release}/${p.arch}`;
}
