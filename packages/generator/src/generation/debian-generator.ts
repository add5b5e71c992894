import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  HashPool,
  RootDir,
  maxVersion,
  readDpkgDatabase,
  readRootAccounts,
  signCatalog,
  sortCatalogPackages,
  type Catalog,
  type CatalogPackage,
  type DpkgDatabase,
  type DpkgPackage,
  type FileObservation,
  type Manifest,
  type Platform,
  type SignedDocument,
  type SigningKey,
} from '@sysattest/core';
import { readAptLists } from '../package-managers/apt/apt-lists.js';
import { GeneratorError } from '../errors.js';
import type { PlatformImage } from '../image/state.js';
import { stderrTail, type Podman } from '../podman/index.js';
import { GENERATOR_VERSION } from '../version.js';
import { AccountOrigins } from './account-origins.js';
import { APT_ARCHIVES, aptInstallCommand, aptPhases } from './apt-install.js';
import { isolationReason, type ImageBaseline as IsolationBaseline } from './batch-isolation.js';
import { inContainer } from './container.js';
import { buildManifest, type BuiltManifest } from './manifest-builder.js';
import { handOver, sinkOf, type ManifestOutput, type ManifestSink } from './manifest-sink.js';
import {
  emptyResult,
  failureOf,
  recordFailure,
  type GenerationEvent,
  type GenerationResult,
} from './results.js';
import {
  aptSpec,
  conflictingSpec,
  isOlderThanOffered,
  parseDependencies,
  versionLockedSiblings,
  type Dependencies,
} from './version-siblings.js';

/**
 * Generation for Debian platforms: a fresh container per batch from the platform image, whose one
 * command is apt-get installing exact versions (apt-install.ts: downloads go to one cache per
 * platform shared by all containers); then, from the host, through `podman mount`, the
 * container's dpkg database gives each package's paths and every path is inspected with core's
 * in-root resolution. One signed manifest per package version; a manifest a batch may have
 * changed (batch-isolation.ts) is made again with the package alone in a fresh container.
 *
 * Each lane (`jobs`) installs its next batch while the previous batch's manifests are hashed,
 * signed and handed over: at most two containers per lane, one of them being read.
 */

/**
 * Lanes and packages per container when the caller says nothing, from `npm run bench -- generate`
 * on a 2-core machine (docs/ARCHITECTURE.md, "Generation at scale"): apt's install work is nearly
 * all of the time and a shared dependency is installed once per container, so batches are large;
 * one lane already overlaps hashing with the next install, and a second lane on 2 cores only
 * makes two apt runs compete for them.
 */
export const GENERATION_DEFAULTS = { jobs: 1, batchSize: 200 } as const;

export interface PackageRequest {
  name: string;
  /** Exact version; undefined means the newest the image's catalog offers. */
  version?: string;
}

export type DebianGenerationOptions = DebianGenerationSettings & ManifestOutput;

interface DebianGenerationSettings {
  platform: Platform;
  image: PlatformImage;
  podman: Podman;
  key: SigningKey;
  requests: PackageRequest[];
  /** Also make manifests for the dependencies the install pulled in. */
  withDeps?: boolean;
  /** Containers at once. */
  jobs?: number;
  /** Packages per container. */
  batchSize?: number;
  /**
   * Host directory bind-mounted at the containers' /var/cache/apt/archives: one download cache
   * for the platform, shared by every container (apt-install.ts says why that is safe). Without
   * it each container downloads into its own.
   */
  aptCache?: string;
  /** Hash threads (default: all cores). */
  hashThreads?: number;
  network?: string;
  signal?: AbortSignal;
  onEvent?: (e: GenerationEvent) => void;
}

interface ResolvedRequest {
  spec: string;
  name: string;
  version: string;
  /** The architecture apt will install (native, or `all`). */
  architecture: string;
  catalog: CatalogPackage;
  /** Specs installed beside it so its version locks hold (see version-siblings.ts); no manifest. */
  siblings: string[];
}

/** What apt-get's output says when the archive could not be reached: worth one retry. */
const DOWNLOAD_FAILURE =
  /(Failed to fetch|Unable to fetch|Could not connect|Temporary failure resolving|Connection failed|Hash Sum mismatch)/;

export async function generateDebian(opts: DebianGenerationOptions): Promise<GenerationResult> {
  const emit = opts.onEvent ?? (() => {});
  const result = emptyResult();
  // apt wants its partial directory to exist; the cache may be new.
  if (opts.aptCache !== undefined) fs.mkdirSync(path.join(opts.aptCache, 'partial'), { recursive: true });
  const pool = new HashPool({ threads: opts.hashThreads, capabilities: 'all', md5: true });
  try {
    const baseline = await inspectImage(opts, result);
    const resolved: ResolvedRequest[] = [];
    for (const request of opts.requests) {
      try {
        resolved.push(resolveRequest(request, baseline.catalog, opts.platform.arch));
      } catch (e) {
        recordFailure(result, emit, { request: requestText(request), ...request, ...failureOf(e) });
      }
    }
    await attachSiblings(opts, resolved, baseline, result);
    const batchSize = Math.max(1, opts.batchSize ?? GENERATION_DEFAULTS.batchSize);
    const queue: ResolvedRequest[][] = [];
    for (let i = 0; i < resolved.length; i += batchSize) queue.push(resolved.slice(i, i + batchSize));
    const ctx: BatchContext = {
      opts,
      pool,
      baseline,
      result,
      emit,
      sink: sinkOf(opts),
      isolated: [],
      aloneRound: false,
    };
    await runLanes(ctx, queue, opts.jobs ?? GENERATION_DEFAULTS.jobs);
    // Manifests a batch may have changed: each package again, alone in a fresh container.
    const alone = ctx.isolated.splice(0).map((r) => [r]);
    ctx.aloneRound = true;
    await runLanes(ctx, alone, opts.jobs ?? GENERATION_DEFAULTS.jobs);
  } finally {
    await pool.close();
  }
  return result;
}

interface ImageBaseline {
  /** `name:arch:version` of every package already in the image. */
  installed: Set<string>;
  /** `name:arch` → version of every package already in the image. */
  installedVersions: Map<string, string>;
  /** The catalog the image's apt lists offer, by `name`. */
  catalog: Map<string, CatalogPackage[]>;
  aptVersion: string;
  /** What batch-isolation.ts compares a batch's manifests with. */
  isolation: IsolationBaseline;
}

/** Reads the image once: what it already has installed, and what its apt lists offer. */
async function inspectImage(opts: DebianGenerationOptions, result: GenerationResult): Promise<ImageBaseline> {
  return inContainer(opts, ['apt-get', '--version'], result, async ({ mount }) => {
    const db = await readDpkgDatabase(mount);
    const lists = readAptLists(RootDir.open(mount), opts.platform.arch);
    const catalog = new Map<string, CatalogPackage[]>();
    for (const p of lists.packages) {
      const list = catalog.get(p.name);
      if (list === undefined) catalog.set(p.name, [p]);
      else list.push(p);
    }
    const accounts = readRootAccounts(RootDir.open(mount));
    return {
      isolation: {
        uids: new Set(accounts.users.keys()),
        gids: new Set(accounts.groups.keys()),
        installedNames: new Set(db.packages.map((p) => p.name)),
      },
      installed: new Set(db.packages.map(key)),
      installedVersions: new Map(db.packages.map((p) => [`${p.name}:${p.architecture}`, p.version])),
      catalog,
      aptVersion: db.find('apt')?.version ?? 'unknown',
    };
  });
}

function resolveRequest(
  request: PackageRequest,
  catalog: Map<string, CatalogPackage[]>,
  nativeArch: string,
): ResolvedRequest {
  const offered = (catalog.get(request.name) ?? []).filter(
    (p) => p.architecture === nativeArch || p.architecture === 'all',
  );
  if (offered.length === 0) {
    throw new GeneratorError(
      'UNKNOWN_PACKAGE',
      `${request.name}: no such package in the image's repositories`,
    );
  }
  const version =
    request.version ??
    (maxVersion(
      'dpkg',
      offered.map((p) => p.version),
    ) as string);
  const match = offered.find((p) => p.version === version);
  if (match === undefined) {
    const versions = [...new Set(offered.map((p) => p.version))].join(', ');
    throw new GeneratorError(
      'UNKNOWN_VERSION',
      `${request.name}: version ${version} is not offered by the image's repositories (offered: ${versions})`,
    );
  }
  return {
    spec: aptSpec(match, nativeArch),
    name: match.name,
    version: match.version,
    architecture: match.architecture,
    catalog: match,
    siblings: [],
  };
}

/**
 * Requests older than the newest the lists offer get the siblings their version locks need (apt
 * will not pick non-candidate versions for them itself). One container asks apt for the `=`
 * dependencies of all of them; requests for the newest versions need nothing and cost nothing.
 */
async function attachSiblings(
  opts: DebianGenerationOptions,
  resolved: ResolvedRequest[],
  baseline: ImageBaseline,
  result: GenerationResult,
): Promise<void> {
  const older = resolved.filter((r) => isOlderThanOffered(r.catalog, baseline.catalog.get(r.name) ?? []));
  if (older.length === 0) return;
  // The same source's packages at that version are asked about too: their own locks are followed.
  const specs = new Set<string>();
  for (const r of older) {
    specs.add(r.spec);
    for (const p of sameSourceVersion(r.catalog, baseline.catalog, opts.platform.arch))
      specs.add(aptSpec(p, opts.platform.arch));
  }
  const exact = await readDependencies(opts, [...specs], result);
  for (const r of older) {
    r.siblings = versionLockedSiblings({
      wanted: r.catalog,
      exactDepends: exact.get(`${r.name}=${r.version}`) ?? new Map(),
      dependsOf: (name, version) => exact.get(`${name}=${version}`),
      catalog: baseline.catalog,
      installed: baseline.installedVersions,
      nativeArch: opts.platform.arch,
    }).map((p) => aptSpec(p, opts.platform.arch));
  }
}

/** The binary packages the lists offer built from `wanted`'s source at its version (native or all). */
function sameSourceVersion(
  wanted: CatalogPackage,
  catalog: ReadonlyMap<string, readonly CatalogPackage[]>,
  nativeArch: string,
): CatalogPackage[] {
  const out: CatalogPackage[] = [];
  for (const versions of catalog.values())
    for (const p of versions)
      if (
        p.source.name === wanted.source.name &&
        p.source.version === wanted.source.version &&
        p.name !== wanted.name &&
        (p.architecture === nativeArch || p.architecture === 'all')
      )
        out.push(p);
  return out;
}

/** `apt-cache show` of exact versions, in a container of the image (its lists, its apt). */
async function readDependencies(
  opts: DebianGenerationOptions,
  specs: string[],
  result: GenerationResult,
): Promise<Dependencies> {
  const command = ['apt-cache', 'show', ...specs];
  return inContainer(opts, command, result, (r) => {
    if (r.code !== 0 && r.stdout.trim() === '') {
      throw new GeneratorError('GENERATION_FAILED', `apt-cache show failed: ${aptError(r.stderr, r.stdout)}`);
    }
    return Promise.resolve(parseDependencies(r.stdout));
  });
}

interface BatchContext {
  opts: DebianGenerationOptions;
  pool: HashPool;
  baseline: ImageBaseline;
  result: GenerationResult;
  emit: (e: GenerationEvent) => void;
  sink: ManifestSink;
  /** Requests set aside by batch-isolation.ts, to be made alone. */
  isolated: ResolvedRequest[];
  /** True while those are made: nothing is set aside again. */
  aloneRound: boolean;
}

/** Hooks that let a lane install its next batch while this one's manifests are made. */
interface Pipeline {
  /** Called once the batch's install ended (success or not): the lane may start the next. */
  installed: () => void;
  /** The lane's previous batch: its manifests are made before this batch's (one hashing at a time). */
  after: Promise<void>;
}

/**
 * `lanes` at once take batches from the queue; each installs batch n+1 while batch n's manifests
 * are made, and waits for batch n to be done before it installs batch n+2 (so a lane holds at
 * most two containers and one batch of observations).
 */
async function runLanes(ctx: BatchContext, queue: ResolvedRequest[][], lanes: number): Promise<void> {
  const lane = async () => {
    let previous: Promise<void> = Promise.resolve();
    for (let batch = queue.shift(); batch !== undefined; batch = queue.shift()) {
      let installed!: () => void;
      const installEnded = new Promise<void>((resolve) => (installed = resolve));
      const current = runBatch(ctx, batch, false, { installed, after: previous });
      await Promise.race([installEnded, current.catch(() => {})]);
      await previous;
      previous = current;
    }
    await previous;
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, queue.length)) }, lane));
}

/**
 * One container installs the batch. If apt refuses the batch (one broken package fails the whole
 * transaction), the batch is split in two and each half tried again, so one bad package fails alone.
 */
async function runBatch(
  ctx: BatchContext,
  batch: ResolvedRequest[],
  retried = false,
  pipeline?: Pipeline,
): Promise<void> {
  const { opts, emit } = ctx;
  emit({ kind: 'batch-start', packages: batch.map((r) => r.spec) });
  const specs = [...new Set([...batch.map((r) => r.spec), ...batch.flatMap((r) => r.siblings)])];
  const conflict = conflictingSpec(specs);
  if (conflict !== undefined) {
    pipeline?.installed();
    return splitOrFail(ctx, batch, conflict, retried, pipeline);
  }
  const container = {
    ...opts,
    ...(opts.aptCache ? { volumes: [{ host: opts.aptCache, container: APT_ARCHIVES }] } : {}),
  };
  const outcome = await inContainer(container, aptInstallCommand(specs), ctx.result, async (r) => {
    ctx.result.downloadMs += aptPhases(r.stdout).downloadMs;
    pipeline?.installed();
    if (r.code !== 0) return { failed: aptError(r.stderr, r.stdout) };
    await pipeline?.after.catch(() => {});
    const own = Date.now();
    try {
      await manifestsFromContainer(ctx, batch, r.mount);
    } finally {
      ctx.result.ownMs += Date.now() - own;
    }
    return { failed: undefined };
  }).finally(() => pipeline?.installed());
  if (outcome.failed === undefined) return;
  if (!retried && DOWNLOAD_FAILURE.test(outcome.failed)) {
    emit({ kind: 'retry', packages: batch.map((r) => r.spec), reason: outcome.failed });
    await delay(5000, opts.signal);
    return runBatch(ctx, batch, true, pipeline);
  }
  return splitOrFail(ctx, batch, outcome.failed, retried, pipeline);
}

/** A refused batch: bisected while it has more than one request, else that request fails. */
async function splitOrFail(
  ctx: BatchContext,
  batch: ResolvedRequest[],
  failed: string,
  retried: boolean,
  pipeline?: Pipeline,
): Promise<void> {
  if (batch.length > 1) {
    // Bisect: the packages apt can install together still share a container, and the one that
    // cannot ends up alone, in log2(batch) rounds rather than one container per package.
    ctx.emit({ kind: 'batch-split', packages: batch.map((r) => r.spec), reason: failed });
    const half = Math.ceil(batch.length / 2);
    await runBatch(ctx, batch.slice(0, half), retried, pipeline);
    await runBatch(ctx, batch.slice(half), retried, pipeline);
    return;
  }
  const { spec, name, version } = batch[0] as ResolvedRequest;
  const message = `${spec}: apt-get install failed: ${failed}`;
  recordFailure(ctx.result, ctx.emit, { request: spec, name, version, code: 'GENERATION_FAILED', message });
}

async function manifestsFromContainer(
  ctx: BatchContext,
  batch: ResolvedRequest[],
  mount: string,
): Promise<void> {
  const { opts } = ctx;
  const db = await readDpkgDatabase(mount);
  const targets = selectTargets(db, batch, ctx.baseline, opts.withDeps === true);
  // Every actual path of every target, inspected once.
  const actual = new Set<string>();
  for (const pkg of targets) {
    for (const f of pkg.files) if (f.path !== '/') actual.add(db.applyDiversions(f.path, pkg.name));
  }
  const paths = [...actual];
  const observed = await ctx.pool.inspectAll(mount, paths);
  const byPath = new Map<string, FileObservation>(paths.map((p, i) => [p, observed[i] as FileObservation]));
  const root = RootDir.open(mount);
  const accounts = readRootAccounts(root);
  const origins = new AccountOrigins(root, db.packages);
  const generatedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  // Alone means one requested package (its dependencies come with it, as they would on any
  // machine); the round of packages set aside signs what it makes.
  const shared = !ctx.aloneRound && batch.length > 1;
  for (const pkg of targets) {
    const catalogEntry = ctx.baseline.catalog
      .get(pkg.name)
      ?.find((c) => c.version === pkg.version && c.architecture === pkg.architecture);
    const provenance: Manifest['provenance'] = {
      generatedAt,
      generator: { name: 'sysattest-generator', version: GENERATOR_VERSION },
      keyFingerprint: opts.key.fingerprint,
      image: {
        id: opts.image.imageId,
        ...((opts.image.refreshedAt ?? opts.image.builtAt)
          ? { refreshedAt: toSeconds(opts.image.refreshedAt ?? opts.image.builtAt) }
          : {}),
      },
      installer: `apt ${ctx.baseline.aptVersion}`,
      ...(catalogEntry ? { archiveSha256: catalogEntry.sha256 } : {}),
    };
    const spec = `${pkg.name}:${pkg.architecture}=${pkg.version}`;
    const build = () =>
      buildManifest(pkg, {
        distroRelease: `${opts.platform.distro}/${opts.platform.release}`,
        provenance,
        accounts,
        divertedLocation: (p, name) => db.applyDiversions(p, name),
        diversions: db.diversions,
        observation: (p) => byPath.get(p),
      });
    let built: BuiltManifest | undefined;
    try {
      built = build();
    } catch {
      // handOver builds it again and records the failure with its code.
    }
    if (shared && built !== undefined) {
      const reason = isolationReason(pkg.name, built, db.diversions, ctx.baseline.isolation, (account) =>
        origins.names(pkg.name, account),
      );
      const request = reason === undefined ? undefined : aloneRequest(pkg, batch, ctx, opts.platform.arch);
      if (reason !== undefined && request !== undefined) {
        ctx.result.isolated++;
        ctx.isolated.push(request);
        ctx.emit({ kind: 'isolated', name: pkg.name, version: pkg.version, reason });
        continue;
      }
    }
    const made = built;
    await handOver(pkg, spec, made === undefined ? build : () => made, {
      key: opts.key,
      sink: ctx.sink,
      into: ctx.result,
      emit: ctx.emit,
    });
  }
}

/**
 * The request that makes `pkg` alone: its own from the batch (with its siblings), or for a
 * dependency made with `withDeps`, its exact version from the catalog. Undefined when the
 * catalog no longer offers it (the batch's manifest is then kept: nothing better can be made).
 */
function aloneRequest(
  pkg: DpkgPackage,
  batch: ResolvedRequest[],
  ctx: BatchContext,
  nativeArch: string,
): ResolvedRequest | undefined {
  const own = batch.find(
    (r) => r.name === pkg.name && r.version === pkg.version && r.architecture === pkg.architecture,
  );
  if (own !== undefined) return own;
  try {
    return resolveRequest({ name: pkg.name, version: pkg.version }, ctx.baseline.catalog, nativeArch);
  } catch {
    return undefined;
  }
}

/** The requested packages as installed, plus (with deps) everything the install added. */
function selectTargets(
  db: DpkgDatabase,
  batch: ResolvedRequest[],
  baseline: ImageBaseline,
  withDeps: boolean,
): DpkgPackage[] {
  const targets = new Map<string, DpkgPackage>();
  for (const r of batch) {
    const pkg = db.findAll(r.name).find((p) => p.version === r.version && p.architecture === r.architecture);
    if (pkg === undefined) {
      throw new GeneratorError(
        'GENERATION_FAILED',
        `${r.spec} is not installed after apt-get reported success`,
      );
    }
    targets.set(key(pkg), pkg);
  }
  if (withDeps) for (const p of db.packages) if (!baseline.installed.has(key(p))) targets.set(key(p), p);
  return [...targets.values()];
}

function aptError(stderr: string, stdout: string): string {
  const errors = `${stdout}\n${stderr}`
    .split('\n')
    .filter((l) => /^E: /.test(l))
    .map((l) => l.slice(3).trim());
  return errors.length > 0 ? errors.slice(0, 3).join('; ') : stderrTail(stderr, 400) || 'no error output';
}

function key(p: { name: string; architecture: string; version: string }): string {
  return `${p.name}:${p.architecture}:${p.version}`;
}

function requestText(r: PackageRequest): string {
  return r.version === undefined ? r.name : `${r.name}=${r.version}`;
}

function toSeconds(iso: string): string {
  return new Date(iso).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new GeneratorError('INTERRUPTED', 'interrupted'));
      },
      { once: true },
    );
  });
}

export interface DebianCatalogOptions {
  platform: Platform;
  image: PlatformImage;
  podman: Podman;
  key: SigningKey;
  network?: string;
  signal?: AbortSignal;
}

/**
 * A signed catalog snapshot of what the image's repositories offer, read from the apt lists that
 * `apt-get update` left in the image (apt checked the InRelease signatures and index hashes).
 */
export async function catalogDebian(
  opts: DebianCatalogOptions,
): Promise<{ catalog: Catalog; signed: SignedDocument; warnings: string[] }> {
  const timing = { podmanMs: 0, packageManagerMs: 0 };
  const lists = await inContainer(opts, ['apt-get', '--version'], timing, ({ mount }) =>
    Promise.resolve(readAptLists(RootDir.open(mount), opts.platform.arch)),
  );
  const catalog: Catalog = {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: `${opts.platform.distro}/${opts.platform.release}/${opts.platform.arch}`,
    generatedAt: toSeconds(new Date().toISOString()),
    provenance: {
      generator: { name: 'sysattest-generator', version: GENERATOR_VERSION },
      keyFingerprint: opts.key.fingerprint,
      image: { id: opts.image.imageId },
      sources: lists.sources,
    },
    packages: sortCatalogPackages(lists.packages),
  };
  const signed = await signCatalog(catalog, opts.key);
  return { catalog, signed, warnings: lists.warnings };
}
