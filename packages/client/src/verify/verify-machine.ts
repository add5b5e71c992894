import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  HashPool,
  RootDir,
  SysattestError,
  detectPlatforms,
  formatPlatform,
  isValidPlatformComponent,
  readRootAccounts,
  versionSchemeForDistro,
  type Diversion,
  type InstalledPackage,
  type Platform,
  type TrustedKeyring,
} from '@sysattest/core';
import type { ManifestCache } from '../cache/manifest-cache.js';
import {
  DEFAULT_CATALOG_MAX_AGE_DAYS,
  contradictedStatuses,
  loadCatalogs,
  outdatedFindings,
  type CatalogView,
} from './catalog-snapshots.js';
import { ChunkChecker, type Checked, type HashedAhead } from './chunk-check.js';
import type { Finding } from './compare.js';
import { collectGarbage } from './gc.js';
import { HashRuns, type HashProgress } from './hash-runs.js';
import { knownContent, type ReverseLookup } from './known-content.js';
import { judgeDiversions, type LocalClaimPolicy } from './local-claims.js';
import { isArchIndependent, readLocalDatabase, type LocalDatabase } from './local-database.js';
import { findForeignOrigins } from './origin.js';
import {
  REPORT_SCHEMA_ID,
  REPORT_SCHEMA_VERSION,
  countByClass,
  sortFindings,
  type PackageResult,
  type UnverifiedReason,
  type VerifyReport,
} from './report.js';
import type { ManifestSource } from './source.js';
import { readStatOverrides } from './statoverride.js';
import { TrustResolver, type Chunk, type Resolution } from './trust-resolution.js';
import {
  DEFAULT_SCAN_DIRS,
  canonicalOf,
  readAlternativeLinks,
  scanUnowned,
  unownedFindings,
} from './unowned.js';

export type { ReverseLookupHit } from './known-content.js';
import { countUnverified } from './unverified-advice.js';

export interface VerifyMachineOptions extends LocalClaimPolicy {
  /** The root to check (default `/`). */
  root?: string;
  /** The pinned keys every manifest is verified against before use. */
  keyring: TrustedKeyring;
  /** Where manifests come from; undefined = offline (the cache alone). */
  source?: ManifestSource;
  /** Verified manifests kept between runs (used again through their seal, else verified again). */
  cache?: ManifestCache;
  /** Only these packages (`name` or `name:arch`); default every installed package. */
  packages?: readonly string[];
  /** Count conffile changes as failures. */
  includeConfig?: boolean;
  /** Hash pool threads (default: the CPUs); ignored when `pool` is given. */
  jobs?: number;
  /** A pool to use (left open); otherwise one is made and closed. */
  pool?: HashPool;
  /**
   * Most packages per chunk: one lookup and one hashing run (default 128). A chunk also ends at
   * about CHUNK_PATHS paths (the first at a quarter of that), so runs are even and hashing starts
   * early.
   */
  fetchBatchSize?: number;
  /** Look for files no package owns under these directories (`--scan-unowned`). */
  scanUnowned?: boolean | { dirs?: readonly string[] };
  /** Where a content hash is known from (the server's reverse lookup); without it, unowned files are not looked up. */
  reverseLookup?: ReverseLookup;
  /** A catalog snapshot older than this many days is a `stale-catalog` finding (default 7). */
  catalogMaxAgeDays?: number;
  /** Verification time (tests). */
  now?: Date;
  /** Progress of the hashing phase. */
  onProgress?: (p: HashProgress) => void;
}

/**
 * Checks every installed package under `root` against its signed manifest, in these steps:
 *  1. read the package database under the root (never the host's: local-database.ts);
 *  2. resolve what is trusted for each package (trust-resolution.ts): cached or fetched
 *     manifests, every one verified against the pinned keys, the server's answers only choosing
 *     what to fetch;
 *  3. hash and compare, a chunk of packages at a time while the next chunk resolves
 *     (chunk-check.ts), with the machine's stat overrides and diversions judged against the
 *     signed manifests (local-claims.ts): nothing local relaxes a signed expectation unless the
 *     operator's configuration accepts it, and what it accepts is listed;
 *  4. judge the server's unsigned statuses and "newest versions" against the signed catalog
 *     snapshots, remembered per platform so a server cannot roll them back (catalog-snapshots.ts);
 *  5. optionally scan the system directories for files no package owns (unowned.ts), where only
 *     a verified manifest makes a content "known" (known-content.ts);
 *  6. build the report.
 * Local md5sums, rpm digests and apk checksums are never used as a reference (trust model rule 2).
 */
export async function verifyMachine(options: VerifyMachineOptions): Promise<VerifyReport> {
  const started = performance.now();
  // The hash threads start now, while the package database is read and the first manifests are
  // fetched (close() lets a thread finish starting before it stops it).
  const ownPool =
    options.pool === undefined
      ? new HashPool({
          capabilities: 'executable',
          threads: options.jobs,
          maxInFlightPerWorker: 8,
          runOrder: 'first-come',
        })
      : undefined;
  try {
    return await verifyWith(options.pool ?? (ownPool as HashPool), options, started);
  } finally {
    await ownPool?.close();
  }
}

/** The machine as its package database describes it, cut into chunks. */
interface Machine {
  root: string;
  rootDir: RootDir;
  db: LocalDatabase;
  primary: Platform;
  installed: readonly InstalledPackage[];
  byArch: Map<string, InstalledPackage[]>;
  chunks: Chunk[];
  notes: string[];
}

async function verifyWith(
  pool: HashPool,
  options: VerifyMachineOptions,
  started: number,
): Promise<VerifyReport> {
  const machine = await readMachine(options);
  const { primary, installed } = machine;
  const resolver = new TrustResolver({ ...options, primary, byArch: machine.byArch });
  const checker = startChecker(machine, pool, options);
  const verdicts = new Verdicts();

  // Every lookup names its catalog snapshot: they are loaded while the last chunk hashes.
  let catalogsLoading: Promise<CatalogView | undefined> = Promise.resolve(undefined);
  await checkChunks(machine, resolver, checker, verdicts, options, () => {
    catalogsLoading = loadCatalogs({
      ...options,
      platforms: [...resolver.platforms],
      installed,
      platformOf: (pkg) => lookupPlatformOf(primary, pkg),
      scheme: versionSchemeForDistro(primary.distro),
      maxAgeDays: options.catalogMaxAgeDays ?? DEFAULT_CATALOG_MAX_AGE_DAYS,
      ...(resolver.unavailable === undefined ? {} : { unavailable: resolver.unavailable.message }),
    });
    catalogsLoading.catch(() => undefined); // awaited below
  });
  const catalogs = await catalogsLoading;
  if (resolver.unavailable !== undefined && resolver.fromCache === 0) throw resolver.unavailable;
  // The cache's bounds can only have been passed by what this run stored.
  if (resolver.stored > 0) await options.cache?.prune().catch(() => undefined);

  const diverted = checker.divertedPaths();
  const diversions = judgeDiversions(
    relevantDiversions(machine, diverted, options),
    { ...verdicts.declared(), shipsVerified: (p) => diverted.has(p) },
    options,
  );
  await checker.finishDiverted(diversions.honoured);
  checker.finishDirectories();
  verdicts.findings.push(...checker.findings, ...diversions.findings, ...resolver.conflicts);
  await markForeignOrigins(machine, verdicts);
  if (catalogs !== undefined) judgeByCatalogs(machine, catalogs, resolver, verdicts);
  else for (const [pkg, v] of resolver.claims) verdicts.result(pkg).newestVersionClaimed = v;

  if (options.scanUnowned !== undefined && options.scanUnowned !== false) {
    collectGarbage(); // what the chunks left behind goes first
    verdicts.findings.push(
      ...(await findUnowned(machine, pool, checker, diversions.honoured, verdicts, options)),
    );
  }
  const notes = [...machine.notes, ...resolver.notes, ...(catalogs?.notes ?? [])];
  const reads = options.cache?.reads;
  if (reads !== undefined && resolver.fromCache + resolver.stored > 0) {
    // What a second run saves is visible: nothing fetched, nothing verified again (the seal).
    notes.push(
      `manifests: ${resolver.stored} fetched and verified, ${resolver.fromCache} from the cache ` +
        `(${reads.sealed} opened by their seal, ${reads.inFull} verified in full again)`,
    );
  }
  return buildReport(machine, verdicts, catalogs, checker.filesChecked, notes, started);
}

/** Step 1: the package database, the platform, the packages asked for, in chunks. */
async function readMachine(options: VerifyMachineOptions): Promise<Machine> {
  const root = options.root ?? '/';
  const db = await readLocalDatabase(root);
  const primary = (await detectPlatforms(root)).primary;
  const installed = selectPackages(db, options.packages, root);
  const byArch = new Map<string, InstalledPackage[]>();
  for (const p of installed) {
    const list = byArch.get(p.architecture);
    if (list === undefined) byArch.set(p.architecture, [p]);
    else list.push(p);
  }
  const batchSize = Math.max(1, options.fetchBatchSize ?? DEFAULT_BATCH);
  return {
    root,
    rootDir: RootDir.open(root),
    db,
    primary,
    installed,
    byArch,
    chunks: chunksOf(byArch, batchSize),
    notes: [...db.notes],
  };
}

/**
 * The packages to check: all, or those `--packages` names plus the packages whose diversions
 * claim one of their paths (only a diverting package's verified manifest can back a diversion,
 * so it is resolved, and checked, too).
 */
function selectPackages(
  db: LocalDatabase,
  wanted: readonly string[] | undefined,
  root: string,
): InstalledPackage[] {
  const all = db.packages;
  if (wanted === undefined) return [...all];
  const asked = new Set(wanted);
  const names = new Set<string>();
  for (const p of all) names.add(p.name).add(`${p.name}:${p.architecture}`);
  const missing = [...asked].filter((w) => !names.has(w));
  if (missing.length > 0) {
    throw new SysattestError('PACKAGE_NOT_INSTALLED', `not installed under ${root}: ${missing.join(', ')}`);
  }
  const chosen = all.filter((p) => asked.has(p.name) || asked.has(`${p.name}:${p.architecture}`));
  const diverters = new Map(db.diversions.map((d) => [d.from, d.by]));
  for (const p of chosen)
    for (const f of p.files) {
      const by = diverters.get(f.path);
      if (by !== undefined && by !== p.name) asked.add(by);
    }
  return all.filter((p) => asked.has(p.name) || asked.has(`${p.name}:${p.architecture}`));
}

/**
 * Per architecture, chunks of at most `batchSize` packages and about CHUNK_PATHS paths (the
 * first a quarter of that, so hashing starts early): one lookup platform each (`all` packages
 * are asked about on the native platform; their manifests live on `…/all`).
 */
function chunksOf(byArch: ReadonlyMap<string, InstalledPackage[]>, batchSize: number): Chunk[] {
  const chunks: Chunk[] = [];
  for (const [arch, pkgs] of byArch) {
    let current: InstalledPackage[] = [];
    let paths = 0;
    for (const p of pkgs) {
      const limit = chunks.length === 0 ? CHUNK_PATHS / 4 : CHUNK_PATHS;
      if (current.length > 0 && (current.length >= batchSize || paths + p.files.length > limit)) {
        chunks.push({ arch, pkgs: current });
        current = [];
        paths = 0;
      }
      current.push(p);
      paths += p.files.length;
    }
    if (current.length > 0) chunks.push({ arch, pkgs: current });
  }
  return chunks;
}

function startChecker(machine: Machine, pool: HashPool, options: VerifyMachineOptions): ChunkChecker {
  const { db, rootDir, installed } = machine;
  const overrides = db.statOverrides ? readStatOverrides(rootDir) : { overrides: new Map(), notes: [] };
  machine.notes.push(...overrides.notes);
  const estimate = installed.reduce((n, p) => n + p.files.length, 0);
  return new ChunkChecker({
    runs: new HashRuns(pool, machine.root, estimate, options.onProgress),
    diversions: new Map<string, Diversion>(db.diversions.map((d) => [d.from, d])),
    overrides: overrides.overrides,
    accounts: readRootAccounts(rootDir),
    policy: options,
    includeConfig: options.includeConfig,
    collectPaths: options.scanUnowned !== undefined && options.scanUnowned !== false,
    localState: (pkg) => db.localState(pkg),
    isMountPoint: (location) => isMountPoint(rootDir, location),
  });
}

/** A directory whose device is not its parent's, inside the root (false when either cannot be read). */
function isMountPoint(root: RootDir, location: string): boolean {
  if (location === '/') return false;
  try {
    const dir = fs.lstatSync(root.resolve(location));
    const parent = fs.lstatSync(root.resolve(path.posix.dirname(location), { followFinal: true }));
    return dir.isDirectory() && dir.dev !== parent.dev;
  } catch {
    return false;
  }
}

/**
 * Steps 2 and 3 as a pipeline: the first HASHING_AHEAD chunks are hashed ahead (the local lists
 * of packages the cache holds); chunk i+1 resolves while chunk i hashes, and is queued on the
 * pool before chunk i is compared, so the hash threads never wait for the main thread.
 */
async function checkChunks(
  machine: Machine,
  resolver: TrustResolver,
  checker: ChunkChecker,
  verdicts: Verdicts,
  options: VerifyMachineOptions,
  afterLookups: () => void,
): Promise<void> {
  const { chunks } = machine;
  const ahead: (HashedAhead | undefined)[] = [];
  const startAhead = (k: number): void => {
    const chunk = chunks[k];
    if (chunk !== undefined && ahead[k] === undefined)
      ahead[k] = checker.hashAhead(cachedPaths(resolver, chunk, options));
  };
  for (let k = 0; k < HASHING_AHEAD; k++) startAhead(k);
  collectGarbage(); // what reading the package database left behind; the threads have work now
  const resolve = async (chunk: Chunk): Promise<Checked[]> =>
    verdicts.recordAll(await resolver.resolve(chunk));
  let next = chunks[0] === undefined ? undefined : resolve(chunks[0]);
  const hashing: Promise<void>[] = [];
  for (let i = 0; next !== undefined; i++) {
    const current = await next;
    const following = chunks[i + 1];
    next = following === undefined ? undefined : resolve(following);
    next?.catch(() => undefined); // awaited on a later turn
    const hashedAhead = ahead[i] ?? checker.hashAhead(cachedPaths(resolver, chunks[i] as Chunk, options));
    ahead[i] = undefined;
    const done = checker.check(current, hashedAhead).then(() => {
      current.length = 0;
    });
    startAhead(i + HASHING_AHEAD);
    done.catch(() => undefined);
    hashing.push(done);
    if (hashing.length >= HASHING_AHEAD) {
      await hashing.shift();
      // A full collection now and then keeps the peak down; each costs tens of milliseconds.
      if (i % GC_EVERY_CHUNKS === 0) collectGarbage();
    }
  }
  // Once the others are compared and collected (a snapshot's parse adds several times its size).
  while (hashing.length > 1) await hashing.shift();
  collectGarbage();
  afterLookups();
  for (const done of hashing.splice(0)) await done;
}

/**
 * The diversions to judge: all of them, or with `--packages` those that touch the packages
 * checked: made by one of them, or claiming one of their paths.
 */
function relevantDiversions(
  machine: Machine,
  claimed: ReadonlySet<string>,
  options: VerifyMachineOptions,
): readonly Diversion[] {
  if (options.packages === undefined) return machine.db.diversions;
  const names = new Set(machine.installed.map((p) => p.name));
  return machine.db.diversions.filter((d) => names.has(d.by) || claimed.has(d.from));
}

/** The paths the local database lists for a chunk's packages whose manifest the cache holds. */
function* cachedPaths(
  resolver: TrustResolver,
  chunk: Chunk,
  options: VerifyMachineOptions,
): Generator<string> {
  const cache = options.cache;
  if (cache === undefined || !isValidPlatformComponent(chunk.arch)) return;
  const { manifest } = resolver.platformsOf(chunk.arch);
  for (const pkg of chunk.pkgs) {
    if (!cache.has(manifest, { name: pkg.name, version: pkg.version, arch: chunk.arch })) continue;
    for (const f of pkg.files) yield f.path;
  }
}

/** Packages the server does not offer: from a repository it does not track? (apt's lists tell.) */
async function markForeignOrigins(machine: Machine, verdicts: Verdicts): Promise<void> {
  if (!machine.db.aptOrigins) return;
  const notInCatalog = [...verdicts.results].flatMap(([pkg, r]) =>
    r.reason === 'not-in-catalog' ? [pkg] : [],
  );
  const foreign = await findForeignOrigins(machine.rootDir, machine.primary.distro, notInCatalog);
  for (const pkg of notInCatalog) {
    const f = foreign.get(`${pkg.name}\0${pkg.version}`);
    if (f === undefined) continue;
    verdicts.unverified(
      pkg,
      'foreign-origin',
      `offered by ${f.origin} (${f.list}), a repository the server does not track`,
    );
    verdicts.result(pkg).origin = f.origin;
  }
}

/** Step 4: the server's statuses and the installed versions against the signed catalogs. */
function judgeByCatalogs(
  machine: Machine,
  catalogs: CatalogView,
  resolver: TrustResolver,
  verdicts: Verdicts,
): void {
  const platformOf = (pkg: InstalledPackage): string | undefined => lookupPlatformOf(machine.primary, pkg);
  verdicts.findings.push(...catalogs.findings, ...contradictedStatuses(resolver.said, catalogs, platformOf));
  const scheme = versionSchemeForDistro(machine.primary.distro);
  verdicts.findings.push(
    ...outdatedFindings(machine.installed, catalogs, { platformOf, scheme }, (pkg, newest) => {
      verdicts.result(pkg).newestVersion = newest;
    }),
  );
  for (const [pkg, v] of resolver.claims) {
    const platform = platformOf(pkg);
    if (platform !== undefined && !catalogs.newest.has(platform))
      verdicts.result(pkg).newestVersionClaimed = v;
  }
}

function lookupPlatformOf(primary: Platform, pkg: InstalledPackage): string | undefined {
  if (!isValidPlatformComponent(pkg.architecture)) return undefined;
  return formatPlatform({
    ...primary,
    arch: isArchIndependent(pkg.architecture) ? primary.arch : pkg.architecture,
  });
}

/** Step 5: files no package owns, in the scan directories. */
async function findUnowned(
  machine: Machine,
  pool: HashPool,
  checker: ChunkChecker,
  honoured: ReadonlyMap<string, Diversion>,
  verdicts: Verdicts,
  options: VerifyMachineOptions,
): Promise<Finding[]> {
  const { rootDir, db } = machine;
  const owned = new Set<string>();
  const own = (p: string): void => {
    const c = canonicalOf(rootDir, p);
    if (c !== undefined) owned.add(c);
  };
  // A verified package owns what its signed manifest lists; any other, what the database says.
  for (const pkg of db.packages)
    if (verdicts.results.get(pkg)?.status !== 'verified') for (const f of pkg.files) own(f.path);
  for (const p of checker.manifestPaths) own(p);
  for (const p of db.alsoOwned()) own(p);
  for (const d of honoured.values()) {
    own(d.from);
    own(d.to);
  }
  const alternatives = new Set<string>();
  if (db.alternativesDir !== undefined)
    for (const link of readAlternativeLinks(rootDir, db.alternativesDir)) {
      const c = canonicalOf(rootDir, link);
      if (c !== undefined) alternatives.add(c);
    }
  const dirs =
    (typeof options.scanUnowned === 'object' ? options.scanUnowned.dirs : undefined) ?? DEFAULT_SCAN_DIRS;
  const scan = scanUnowned(rootDir, dirs, owned);
  owned.clear();
  machine.notes.push(...scan.notes);
  return unownedFindings(machine.root, pool, scan.paths, alternatives, (observations) =>
    knownContent(observations, { ...options, primary: machine.primary, notes: machine.notes }),
  );
}

/** Step 6. */
function buildReport(
  machine: Machine,
  verdicts: Verdicts,
  catalogs: CatalogView | undefined,
  filesChecked: number,
  notes: string[],
  started: number,
): VerifyReport {
  const packages = machine.installed.map((p) => verdicts.result(p));
  const sorted = sortFindings(verdicts.findings);
  return {
    schema: REPORT_SCHEMA_ID,
    schemaVersion: REPORT_SCHEMA_VERSION,
    root: machine.root,
    platform: formatPlatform(machine.primary),
    summary: {
      packages: packages.length,
      verified: packages.filter((p) => p.status === 'verified').length,
      unverified: packages.filter((p) => p.status === 'unverified').length,
      unverifiedByReason: countUnverified(packages),
      badSignature: packages.filter((p) => p.status === 'bad-signature').length,
      filesChecked,
      failures: sorted.filter((f) => f.failure).length,
      findingsByClass: countByClass(sorted),
      durationMs: Math.round(performance.now() - started),
    },
    findings: sorted,
    packages,
    catalogs: catalogs?.results ?? [],
    notes,
  };
}

/** Each package's result and the findings so far; and the diversions verified manifests declare. */
class Verdicts {
  readonly results = new Map<InstalledPackage, PackageResult>();
  readonly findings: Finding[] = [];
  private readonly declaredBy = new Map<string, Set<string>>();
  private readonly unverifiedFindings = new Map<InstalledPackage, Finding>();

  result(pkg: InstalledPackage): PackageResult {
    return this.results.get(pkg) as PackageResult;
  }

  /** Records each resolution; returns the verified packages' entries to check. */
  recordAll(resolutions: readonly Resolution[]): Checked[] {
    const out: Checked[] = [];
    for (const r of resolutions) {
      if (r.kind === 'unverified') this.unverified(r.pkg, r.reason, r.why);
      else if (r.kind === 'refused') this.refused(r.pkg, r.reason);
      else {
        const m = r.manifest;
        this.results.set(r.pkg, { ...ident(r.pkg), status: 'verified', signer: m.signerFingerprint });
        const declared = this.declaredBy.get(r.pkg.name) ?? new Set<string>();
        for (const d of m.content.diversions ?? []) declared.add(`${d.from}\0${d.to}`);
        this.declaredBy.set(r.pkg.name, declared);
        out.push({ pkg: r.pkg, entries: m.content.entries });
      }
    }
    return out;
  }

  /** A package's reason, set (or, for a foreign origin found later, replaced) with its finding. */
  unverified(pkg: InstalledPackage, reason: UnverifiedReason, why?: string): void {
    this.results.set(pkg, { ...ident(pkg), status: 'unverified', reason });
    const detail = `${pkg.name} ${pkg.version}: no trusted manifest (${reason}${why ? `: ${why}` : ''})`;
    const known = this.unverifiedFindings.get(pkg);
    if (known !== undefined) {
      known.detail = detail;
      return;
    }
    const finding: Finding = {
      class: 'unverified',
      package: pkg.name,
      arch: pkg.architecture,
      detail,
      failure: false,
    };
    this.unverifiedFindings.set(pkg, finding);
    this.findings.push(finding);
  }

  private refused(pkg: InstalledPackage, reason: string): void {
    this.results.set(pkg, { ...ident(pkg), status: 'bad-signature', reason });
    this.findings.push({
      class: 'bad-signature',
      package: pkg.name,
      arch: pkg.architecture,
      detail: `${pkg.name} ${pkg.version}: manifest refused, its files are not checked: ${reason}`,
      failure: true,
    });
  }

  /** The diversions the verified manifests declare, by diverting package (local-claims.ts). */
  declared(): {
    declares(name: string, from: string, to: string): boolean;
    isVerified(name: string): boolean;
  } {
    return {
      declares: (name, from, to) => this.declaredBy.get(name)?.has(`${from}\0${to}`) === true,
      isVerified: (name) => this.declaredBy.has(name),
    };
  }
}

function ident(pkg: InstalledPackage): { name: string; version: string; arch: string } {
  return { name: pkg.name, version: pkg.version, arch: pkg.architecture };
}

/** Chunks hashing or queued on the pool at once (first come, first served). */
const HASHING_AHEAD = 3;

/** A full garbage collection after every this many chunks (see checkChunks). */
const GC_EVERY_CHUNKS = 4;

/** Paths (as the package database lists them) per chunk, about: see fetchBatchSize. */
const CHUNK_PATHS = 8000;

/** Packages per lookup and per hashing chunk (see verifyMachine). */
const DEFAULT_BATCH = 128;
