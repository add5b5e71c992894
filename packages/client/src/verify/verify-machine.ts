import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  HashPool,
  RootDir,
  SysattestError,
  detectPlatforms,
  formatPlatform,
  isSysattestError,
  isValidPlatformComponent,
  newestVersions,
  readRootAccounts,
  verifyCatalog,
  verifyManifest,
  versionSchemeForDistro,
  type FileObservation,
  type InstalledPackage,
  type ManifestEntry,
  type Platform,
  type TrustedKeyring,
  type VerifiedCatalog,
  type VerifiedManifest,
  type VersionScheme,
} from '@sysattest/core';
import type { ManifestCache } from '../cache/manifest-cache.js';
import { compareEntries, locationOf, type Finding } from './compare.js';
import { findForeignOrigins } from './origin.js';
import { collectGarbage } from './gc.js';
import { isArchIndependent, readLocalDatabase, type LocalDatabase } from './local-database.js';
import {
  REPORT_SCHEMA_ID,
  REPORT_SCHEMA_VERSION,
  countByClass,
  sortFindings,
  type CatalogResult,
  type PackageResult,
  type UnverifiedReason,
  type VerifyReport,
} from './report.js';
import type {
  ManifestFetchResult,
  ManifestRequest,
  ManifestSource,
  ManifestStatus,
  OfferedCatalog,
} from './source.js';
import { applyStatOverride, readStatOverrides } from './statoverride.js';
import { DEFAULT_SCAN_DIRS, canonicalOf, readAlternativeLinks, scanUnowned } from './unowned.js';

export interface ReverseLookupHit {
  platform: string;
  name: string;
  version: string;
  arch: string;
  path: string;
}

export interface VerifyMachineOptions {
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
  reverseLookup?: (
    hashes: readonly string[],
  ) => Promise<Map<string, { hits: ReverseLookupHit[]; truncated: boolean }>>;
  /** Verification time (tests). */
  now?: Date;
  /** Progress of the hashing phase. */
  onProgress?: (p: { filesDone: number; filesTotal: number; bytesDone: number }) => void;
}

/** A package whose manifest verified: only its entries are kept (the bytes go once cached). */
interface Checked {
  pkg: InstalledPackage;
  entries: readonly ManifestEntry[];
}

/** A source failure that means "the server is not there" (exit 69) rather than a bug. */
function isUnavailable(e: unknown): e is SysattestError {
  return isSysattestError(e) && (e as { exitCode?: unknown }).exitCode === 69;
}

/**
 * Checks every installed package under `root` against its signed manifest:
 *  1. reads the package database under the root (never the host's: dpkg, rpm or apk, see
 *     local-database.ts) and detects the platform;
 *  2. asks the source for every package's state and manifest digest (digests only), takes the
 *     manifests the cache holds with that digest (sealed, else verified again), fetches the rest;
 *     when the source is unavailable, the packages the cache has are still checked (the others
 *     are unverified: `server-unreachable`); with nothing cached the error is thrown (exit 69);
 *  3. verifies EVERY manifest against the pinned keyring before reading it, and refuses one that is
 *     not the manifest asked for (other package, version, architecture or platform): both are
 *     `bad-signature` at package level, and nothing of that package is compared (so nothing of it
 *     is reported clean either);
 *  4. `outdated` only from a catalog snapshot whose signature verified against the same keyring
 *     (the server's own "newest version" claim is never believed on its own);
 *  5. hashes every path of every verified manifest (at its diverted location), a chunk of packages
 *     at a time while the next chunk is fetched (for packages already cached, starting from the
 *     paths the local database lists before their manifests are even opened: see hashAhead), and
 *     compares (compare.ts), with
 *     dpkg-statoverride's owner and mode where one is set, and rpm's %ghost and not-installed
 *     paths excused only where the manifest agrees (compare.ts);
 *  6. optionally scans the system directories for files no package owns (unowned.ts).
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

async function verifyWith(
  pool: HashPool,
  options: VerifyMachineOptions,
  started: number,
): Promise<VerifyReport> {
  const root = options.root ?? '/';
  const db = await readLocalDatabase(root);
  const detected = await detectPlatforms(root);
  const primary = detected.primary;
  const rootDir = RootDir.open(root);
  const notes: string[] = [...db.notes];

  const wanted = options.packages === undefined ? undefined : new Set(options.packages);
  if (wanted !== undefined) {
    const names = new Set<string>();
    for (const p of db.packages) names.add(p.name).add(`${p.name}:${p.architecture}`);
    const missing = [...wanted].filter((w) => !names.has(w));
    if (missing.length > 0) {
      throw new SysattestError('PACKAGE_NOT_INSTALLED', `not installed under ${root}: ${missing.join(', ')}`);
    }
  }
  const installed = db.packages.filter(
    (p) => wanted === undefined || wanted.has(p.name) || wanted.has(`${p.name}:${p.architecture}`),
  );

  const results = new Map<InstalledPackage, PackageResult>();
  const findings: Finding[] = [];
  const claims = new Map<InstalledPackage, string>();

  const unverified = (pkg: InstalledPackage, reason: UnverifiedReason, why?: string): void => {
    results.set(pkg, { ...ident(pkg), status: 'unverified', reason });
    findings.push({
      class: 'unverified',
      package: pkg.name,
      arch: pkg.architecture,
      detail: `${pkg.name} ${pkg.version}: no trusted manifest (${reason}${why ? `: ${why}` : ''})`,
      failure: false,
    });
  };
  const refused = (pkg: InstalledPackage, reason: string): void => {
    results.set(pkg, { ...ident(pkg), status: 'bad-signature', reason });
    findings.push({
      class: 'bad-signature',
      package: pkg.name,
      arch: pkg.architecture,
      detail: `${pkg.name} ${pkg.version}: manifest refused, its files are not checked: ${reason}`,
      failure: true,
    });
  };
  const accepted = (pkg: InstalledPackage, manifest: VerifiedManifest): Checked => {
    results.set(pkg, { ...ident(pkg), status: 'verified', signer: manifest.signerFingerprint });
    return { pkg, entries: manifest.content.entries };
  };

  // Per architecture (native, foreign, `all`/`noarch`): one lookup platform each. Architecture-
  // independent packages are asked about on the native platform (whose catalog lists them); their
  // manifests live on `distro/release/all` (dpkg) or `distro/release/noarch` (rpm, apk), as the
  // generator names them (the package's own architecture completes the platform id). Work goes
  // in chunks of one lookup batch: the next chunk's manifests are fetched and verified while this
  // chunk's files are hashed, and a chunk's manifests are dropped once compared, so memory stays
  // bounded by a chunk, not the machine.
  const byArch = new Map<string, InstalledPackage[]>();
  for (const p of installed) {
    const list = byArch.get(p.architecture);
    if (list === undefined) byArch.set(p.architecture, [p]);
    else list.push(p);
  }
  const batchSize = Math.max(1, options.fetchBatchSize ?? DEFAULT_BATCH);
  const chunks: { arch: string; pkgs: InstalledPackage[] }[] = [];
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
  const notInCatalog: InstalledPackage[] = [];
  const verifying = new WeightedLimit(VERIFY_BUDGET_BYTES);
  let unavailable: SysattestError | undefined;
  let fromCacheCount = 0;
  /** Manifests put in the cache by this run. */
  let stored = 0;

  /**
   * Every package of one architecture asked about at once, digests only (a few requests per run,
   * not one per chunk: a warm run then waits for the server once). Undefined when the source
   * cannot answer that way or is unreachable (then `unavailable` is set).
   */
  const statusRequests = new Map<string, Promise<Map<InstalledPackage, ManifestStatus> | undefined>>();
  const statusesOf = (
    arch: string,
    platform: Platform,
  ): Promise<Map<InstalledPackage, ManifestStatus> | undefined> => {
    let pending = statusRequests.get(arch);
    if (pending === undefined) {
      pending = (async () => {
        const source = options.source;
        if (source?.statuses === undefined || unavailable !== undefined) return undefined;
        const pkgs = byArch.get(arch) ?? [];
        const out = new Map<InstalledPackage, ManifestStatus>();
        try {
          for (let i = 0; i < pkgs.length; i += STATUS_BATCH) {
            const part = pkgs.slice(i, i + STATUS_BATCH);
            const said = await source.statuses(
              platform,
              part.map((p) => ({ name: p.name, version: p.version, arch })),
            );
            part.forEach((p, j) => {
              const s = said[j];
              if (s !== undefined) out.set(p, s);
            });
          }
        } catch (e) {
          if (!isUnavailable(e)) throw e;
          unavailable ??= e;
          notes.push(e.message);
          return undefined;
        }
        return out;
      })();
      statusRequests.set(arch, pending);
    }
    return pending;
  };

  const resolveChunk = async ({
    arch,
    pkgs,
  }: {
    arch: string;
    pkgs: InstalledPackage[];
  }): Promise<Checked[]> => {
    const out: Checked[] = [];
    const platform: Platform = { ...primary, arch: isArchIndependent(arch) ? primary.arch : arch };
    const manifestPlatform: Platform = { ...primary, arch };
    if (!isValidPlatformComponent(arch)) {
      // No platform can be named after it (an rpm without an architecture): nothing to ask for.
      for (const pkg of pkgs) unverified(pkg, 'unknown-platform', `architecture ${JSON.stringify(arch)}`);
      return out;
    }
    const cache = options.cache;
    const source = options.source;
    const requestsFor = (list: readonly InstalledPackage[]): ManifestRequest[] =>
      list.map((p) => ({ name: p.name, version: p.version, arch }));
    // What the server says now, digests only (see statusesOf). A client whose cache holds the
    // manifests needs nothing more, and the answers name the catalog snapshots, so `outdated` is
    // checked on runs that fetch no manifest at all.
    let statuses: (ManifestStatus | undefined)[] | undefined;
    if (cache !== undefined) {
      const known = await statusesOf(arch, platform);
      if (known !== undefined) statuses = pkgs.map((p) => known.get(p));
    }
    const fromCache = await mapLimit(pkgs, CONCURRENCY, async (pkg, i) => {
      const said = statuses?.[i];
      if (said?.newestVersion !== undefined) claims.set(pkg, said.newestVersion);
      if (cache === undefined) return undefined;
      // Cache reads are synchronous: a turn of the event loop between them lets the hash pool
      // hand the threads their next batches (a chain of resolved promises would not).
      await nextTurn();
      const m = await cache
        .get(manifestPlatform, { name: pkg.name, version: pkg.version, arch }, options.keyring)
        .catch(() => undefined);
      if (m !== undefined && m.bytes.length > LARGE_MANIFEST_BYTES) collectGarbage();
      // The server holds other signed bytes for this version now: those are fetched and checked.
      if (m !== undefined && said?.status === 'ok' && said.digest !== m.digest) return undefined;
      return m;
    });
    const batch: InstalledPackage[] = [];
    for (const [i, pkg] of pkgs.entries()) {
      const cached = fromCache[i];
      const said = statuses?.[i];
      if (cached !== undefined) {
        out.push(accepted(pkg, cached));
        fromCacheCount++;
      } else if (said !== undefined && said.status !== 'ok') {
        if (said.status === 'not-in-catalog') notInCatalog.push(pkg);
        else unverified(pkg, said.status);
      } else batch.push(pkg);
    }
    fromCache.length = 0;
    if (batch.length === 0) return out;
    if (source === undefined) {
      for (const pkg of batch) unverified(pkg, 'not-cached', 'offline, and not in the local cache');
      return out;
    }
    if (unavailable !== undefined) {
      for (const pkg of batch) unverified(pkg, 'server-unreachable');
      return out;
    }
    // In groups: an answer holds its manifests inline (base64 in JSON), so a smaller group keeps
    // the peak memory of a first run down; the groups of a chunk follow each other.
    for (let g = 0; g < batch.length; g += FETCH_GROUP) {
      const group = batch.slice(g, g + FETCH_GROUP);
      if (unavailable !== undefined) {
        for (const pkg of group) unverified(pkg, 'server-unreachable');
        continue;
      }
      let fetched: ManifestFetchResult[];
      try {
        fetched = await source.fetch(platform, requestsFor(group));
      } catch (e) {
        if (!isUnavailable(e)) throw e;
        unavailable ??= e;
        notes.push(e.message);
        for (const pkg of group) unverified(pkg, 'server-unreachable');
        continue;
      }
      const outcomes = await mapLimit(group, CONCURRENCY, async (pkg, j) => {
        const r: ManifestFetchResult | undefined = fetched[j];
        if (r?.newestVersion !== undefined) claims.set(pkg, r.newestVersion);
        if (r === undefined) return { unverified: 'not-in-catalog' as const };
        if (r.status !== 'ok') return { unverified: r.status };
        // The answer it came in (its base64 text and parse) is garbage now: free it before a large
        // manifest's parse adds several times its size on top.
        if (r.bytes.length > LARGE_MANIFEST_BYTES) collectGarbage();
        const verified = await verifying.run(r.bytes.length, () =>
          verifyFor(pkg, manifestPlatform, r.bytes, r.signature, options),
        );
        // Verifying a large manifest leaves several times its size of garbage: collect it now,
        // before it piles up with the next one's.
        if (r.bytes.length > LARGE_MANIFEST_BYTES) collectGarbage();
        return { verified };
      });
      fetched = [];
      for (const [j, pkg] of group.entries()) {
        const outcome = outcomes[j];
        if (outcome === undefined || 'unverified' in outcome) {
          const reason = outcome?.unverified ?? 'not-in-catalog';
          if (reason === 'not-in-catalog') notInCatalog.push(pkg);
          else unverified(pkg, reason);
        } else if (typeof outcome.verified === 'string') {
          refused(pkg, outcome.verified);
        } else {
          out.push(accepted(pkg, outcome.verified));
          await options.cache
            ?.put(outcome.verified, options.keyring)
            .then(() => stored++)
            .catch(() => undefined);
        }
      }
    }
    return out;
  };

  let filesChecked = 0;
  /**
   * With --scan-unowned: every location the verified manifests name (diverted ones included).
   * They, not the machine's own file lists, say what a verified package owns: a path added to
   * the local database (an rpm header rewritten with --justdb, say) must not hide a planted file.
   */
  const manifestPaths: string[] = [];
  const scanning = options.scanUnowned !== undefined && options.scanUnowned !== false;
  // Progress over all chunks: the total is estimated from the package database's file lists.
  // Two chunks hash at once (see below): what finished runs did, plus each running run's share.
  const estimate = installed.reduce((n, p) => n + p.files.length, 0);
  const finished = { files: 0, bytes: 0, listed: 0 };
  const running = new Map<number, { files: number; bytes: number; listed: number }>();
  let nextRun = 0;
  const reportProgress = (): void => {
    const onProgress = options.onProgress;
    if (onProgress === undefined) return;
    let files = finished.files;
    let bytes = finished.bytes;
    let listed = finished.listed;
    for (const r of running.values()) {
      files += r.files;
      bytes += r.bytes;
      listed += r.listed;
    }
    onProgress({ filesDone: files, filesTotal: Math.max(estimate, listed), bytesDone: bytes });
  };

  /** One HashPool run over `paths`, counted in the progress. */
  const hashRun = async (paths: readonly string[]): Promise<FileObservation[]> => {
    if (paths.length === 0) return [];
    const runId = nextRun++;
    const mine = { files: 0, bytes: 0, listed: paths.length };
    running.set(runId, mine);
    try {
      return await pool.inspectAll(root, paths, {
        onProgress: (p) => {
          mine.files = p.filesDone;
          mine.bytes = p.bytesDone;
          reportProgress();
        },
      });
    } finally {
      running.delete(runId);
      finished.files += paths.length;
      finished.bytes += mine.bytes;
      finished.listed += paths.length;
    }
  };

  /**
   * Hashing ahead of the manifests: a chunk's packages whose manifest the cache holds (the usual
   * nightly run) have their paths, as the package database lists them, hashed while the
   * manifests are still being opened, so the hash threads start as soon as the database is read.
   * What the manifests then name is compared against these observations; a location the database
   * did not list (or a package fetched now) is hashed in a second run. The database only chooses
   * what to read early: every expectation still comes from the verified manifest, and whatever
   * the early run observed that no verified manifest names is dropped.
   */
  const hashAhead = (chunk: { arch: string; pkgs: InstalledPackage[] }): HashedAhead => {
    const indexOf = new Map<string, number>();
    const paths: string[] = [];
    const cache = options.cache;
    if (cache !== undefined && isValidPlatformComponent(chunk.arch)) {
      const manifestPlatform: Platform = { ...primary, arch: chunk.arch };
      for (const pkg of chunk.pkgs) {
        if (!cache.has(manifestPlatform, { name: pkg.name, version: pkg.version, arch: chunk.arch }))
          continue;
        const divert = db.localDiversion(pkg);
        for (const f of pkg.files) {
          const location = divert?.(f.path) ?? f.path;
          if (!indexOf.has(location)) {
            indexOf.set(location, paths.length);
            paths.push(location);
          }
        }
      }
    }
    const observations = hashRun(paths);
    observations.catch(() => undefined); // awaited by hashAndCompare
    return { indexOf, observations };
  };

  /** Hashes every location of a chunk's manifests (beyond what was hashed ahead), and compares. */
  const hashAndCompare = async (chunk: readonly Checked[], ahead: HashedAhead): Promise<void> => {
    const early = await ahead.observations;
    // Each entry's location, worked out once, and where its observation is: slot >= 0 is
    // early[slot]; slot < 0 is later[-1 - slot], a location hashed now (each location once:
    // directories are shared by many packages).
    const laterIndex = new Map<string, number>();
    const laterPaths: string[] = [];
    const placed = chunk.map(({ pkg, entries }) => {
      const divert = db.localDiversion(pkg);
      const locations = new Array<string>(entries.length);
      const slots = new Int32Array(entries.length);
      for (let k = 0; k < entries.length; k++) {
        const e = entries[k] as ManifestEntry;
        const location = locationOf(e, divert);
        locations[k] = location;
        let slot = ahead.indexOf.get(location);
        if (slot === undefined) {
          let j = laterIndex.get(location);
          if (j === undefined) {
            j = laterPaths.length;
            laterIndex.set(location, j);
            laterPaths.push(location);
          }
          slot = -1 - j;
        }
        slots[k] = slot;
        if (scanning) {
          manifestPaths.push(location);
          if (e.type !== 'absent' && e.divertedTo !== undefined) manifestPaths.push(e.divertedTo);
        }
      }
      return { locations, slots };
    });
    laterIndex.clear();
    const later = await hashRun(laterPaths);
    chunk.forEach(({ pkg, entries: shipped }, c) => {
      const { locations, slots } = placed[c] as (typeof placed)[number];
      filesChecked += shipped.length;
      const localState = db.localState(pkg);
      const entries: readonly ManifestEntry[] =
        overrides.overrides.size === 0
          ? shipped
          : shipped.map((e, k) =>
              applyStatOverride(
                e,
                overrides.overrides.get(locations[k] as string) ?? overrides.overrides.get(e.path),
                accounts,
              ),
            );
      findings.push(
        ...compareEntries(
          { name: pkg.name, arch: pkg.architecture },
          entries,
          (_location, k) => {
            const slot = slots[k] as number;
            return slot >= 0 ? early[slot] : later[-1 - slot];
          },
          {
            includeConfig: options.includeConfig,
            accounts,
            locations,
            ...(localState === undefined ? {} : { localState }),
          },
        ),
      );
    });
  };

  const catalogs: CatalogResult[] = [];

  /**
   * The catalog snapshots the lookups named, each fetched and verified once per digest (the cache
   * keeps them sealed for the next runs), and the newest version of every package in each.
   * Undefined when there is no source that offers them or it is unreachable. Started once every
   * chunk's lookup is done (the lookups name the snapshots), so it overlaps the last hashing.
   */
  const loadCatalogs = async (): Promise<
    { newestByPlatform: Map<string, Map<string, { version: string }>>; scheme: VersionScheme } | undefined
  > => {
    const source = options.source;
    if (
      source === undefined ||
      unavailable !== undefined ||
      source.snapshotDigests === undefined ||
      source.catalog === undefined
    ) {
      return undefined;
    }
    const scheme = versionSchemeForDistro(primary.distro);
    const newestByPlatform = new Map<string, Map<string, { version: string }>>();
    const installedKeys = new Set(installed.map((p) => `${p.name}:${p.architecture}`));
    const verifyOffered = async (doc: OfferedCatalog): Promise<VerifiedCatalog> => {
      const v = await verifyCatalog(doc.bytes, doc.signature, options.keyring, {
        adoptBytes: true,
        ...(options.now ? { now: options.now } : {}),
      });
      if (v.digest !== doc.digest)
        throw new SysattestError('CATALOG_MISMATCH', `it is snapshot ${v.digest}, not ${doc.digest}`);
      await options.cache?.putCatalog(v, options.keyring).catch(() => undefined);
      return v;
    };
    const fetchOne = source.catalog.bind(source);
    const offered = [...source.snapshotDigests()].map(([platformId, digest]) => ({
      platformId,
      digest,
      get: async (): Promise<VerifiedCatalog | undefined> => {
        const cached = await options.cache?.getCatalog(digest, options.keyring).catch(() => undefined);
        if (cached !== undefined) return cached;
        const doc = await fetchOne(digest);
        return doc === undefined ? undefined : verifyOffered(doc);
      },
    }));
    for (const { platformId, digest, get } of offered) {
      let v: VerifiedCatalog | undefined;
      try {
        v = await get();
        if (v !== undefined && v.content.platform !== platformId)
          throw new SysattestError('CATALOG_MISMATCH', `it is the catalog of ${v.content.platform}`);
      } catch (e) {
        if (isUnavailable(e)) {
          notes.push(`catalog snapshots not fetched: ${e.message}`);
          break;
        }
        if (!isSysattestError(e)) throw e;
        catalogs.push({
          platform: platformId,
          digest,
          status: 'refused',
          reason: `${e.code}: ${e.message}`,
        });
        continue;
      }
      if (v === undefined) continue; // the source no longer has it
      // Kept: the installed packages' newest versions only (not the whole snapshot's objects).
      const newest = new Map<string, { version: string }>();
      for (const [key, p] of newestVersions(v.content, scheme))
        if (installedKeys.has(key)) newest.set(key, { version: p.version });
      newestByPlatform.set(platformId, newest);
      catalogs.push({
        platform: platformId,
        digest: v.digest,
        generatedAt: v.content.generatedAt,
        status: 'verified',
        signer: v.signerFingerprint,
      });
    }
    return { newestByPlatform, scheme };
  };
  // A pipeline: the first HASHING_AHEAD chunks are hashed ahead (see hashAhead) at once; chunk
  // i+1's manifests are resolved while chunk i hashes, and chunk i+1 is queued on the pool before
  // chunk i is compared, so the hash threads never wait for the main thread between chunks (at
  // most about HASHING_AHEAD chunks hash or wait at once).
  const ahead: (HashedAhead | undefined)[] = [];
  const startAhead = (k: number): void => {
    const chunk = chunks[k];
    if (chunk !== undefined && ahead[k] === undefined) ahead[k] = hashAhead(chunk);
  };
  for (let k = 0; k < HASHING_AHEAD; k++) startAhead(k);
  // The threads have work now: what follows overlaps it.
  collectGarbage(); // what reading the package database left behind
  const accounts = readRootAccounts(rootDir);
  const overrides = db.statOverrides
    ? readStatOverrides(rootDir)
    : { overrides: new Map<string, never>(), notes: [] };
  notes.push(...overrides.notes);
  let next: Promise<Checked[]> | undefined = chunks[0] === undefined ? undefined : resolveChunk(chunks[0]);
  const hashing: Promise<void>[] = [];
  for (let i = 0; next !== undefined; i++) {
    const current = await next;
    const following = chunks[i + 1];
    next = following === undefined ? undefined : resolveChunk(following);
    // Awaited on a later turn; until then a rejection must not count as unhandled.
    next?.catch(() => undefined);
    const hashedAhead = ahead[i] ?? hashAhead(chunks[i] as (typeof chunks)[number]);
    ahead[i] = undefined;
    const done = hashAndCompare(current, hashedAhead).then(() => {
      current.length = 0;
    });
    startAhead(i + HASHING_AHEAD);
    done.catch(() => undefined);
    hashing.push(done);
    if (hashing.length >= HASHING_AHEAD) {
      await hashing.shift();
      // A full collection now and then keeps the peak down (V8 lets garbage pile up); each costs
      // the main thread tens of milliseconds, so not after every chunk.
      if (i % GC_EVERY_CHUNKS === 0) collectGarbage();
    }
  }
  // Every lookup is done, so every snapshot is named: they are loaded while the last chunk
  // hashes, once the others are compared and collected (a snapshot's parse adds several times
  // its size for a moment).
  while (hashing.length > 1) await hashing.shift();
  if (options.source?.snapshotDigests !== undefined) collectGarbage();
  const catalogsLoading = loadCatalogs();
  catalogsLoading.catch(() => undefined); // awaited below
  for (const done of hashing.splice(0)) await done;
  if (unavailable !== undefined && fromCacheCount === 0) throw unavailable;
  // The cache's bounds can only have been passed by what this run stored.
  if (stored > 0) await options.cache?.prune().catch(() => undefined);
  // Before the system directories are scanned: what the chunks left behind goes first.
  if (options.scanUnowned) collectGarbage();

  // Packages the catalog does not offer: from a repository the server does not track? (apt's
  // lists tell; an rpm or apk database records no repository, so those stay not-in-catalog.)
  const foreign = db.aptOrigins
    ? await findForeignOrigins(rootDir, primary.distro, notInCatalog)
    : new Map<string, never>();
  for (const pkg of notInCatalog) {
    const f = foreign.get(`${pkg.name}\0${pkg.version}`);
    if (f === undefined) unverified(pkg, 'not-in-catalog');
    else {
      unverified(
        pkg,
        'foreign-origin',
        `offered by ${f.origin} (${f.list}), a repository the server does not track`,
      );
      (results.get(pkg) as PackageResult).origin = f.origin;
    }
  }

  // Outdated: from verified catalog snapshots only (loaded while the last chunks hashed).
  const loaded = await catalogsLoading;
  if (loaded !== undefined) {
    const { newestByPlatform, scheme } = loaded;
    const catalogOf = new Map(catalogs.map((c) => [c.platform, c]));
    for (const pkg of installed) {
      if (!isValidPlatformComponent(pkg.architecture)) continue;
      const platformId = formatPlatform({
        ...primary,
        arch: isArchIndependent(pkg.architecture) ? primary.arch : pkg.architecture,
      });
      const newest = newestByPlatform.get(platformId)?.get(`${pkg.name}:${pkg.architecture}`);
      if (newest === undefined) {
        if (claims.has(pkg) && !newestByPlatform.has(platformId)) {
          (results.get(pkg) as PackageResult).newestVersionClaimed = claims.get(pkg);
        }
        continue;
      }
      (results.get(pkg) as PackageResult).newestVersion = newest.version;
      let older: boolean;
      try {
        older = scheme.compare(pkg.version, newest.version) < 0;
      } catch {
        continue;
      }
      if (older) {
        findings.push({
          class: 'outdated',
          package: pkg.name,
          arch: pkg.architecture,
          expected: newest.version,
          actual: pkg.version,
          detail:
            `${pkg.name} ${pkg.version} is older than ${newest.version}, the newest in the signed catalog ` +
            `of ${catalogOf.get(platformId)?.generatedAt ?? '?'}`,
          failure: false,
        });
      }
    }
  } else if (claims.size > 0) {
    for (const [pkg, v] of claims) (results.get(pkg) as PackageResult).newestVersionClaimed = v;
  }

  if (options.scanUnowned) {
    const dirs =
      (typeof options.scanUnowned === 'object' ? options.scanUnowned.dirs : undefined) ?? DEFAULT_SCAN_DIRS;
    findings.push(
      ...(await unownedFindings(
        rootDir,
        root,
        db,
        manifestPaths,
        (pkg) => results.get(pkg)?.status === 'verified',
        dirs,
        pool,
        options,
        notes,
      )),
    );
  }

  const packages = installed.map((p) => results.get(p) as PackageResult);
  const sorted = sortFindings(findings);
  return {
    schema: REPORT_SCHEMA_ID,
    schemaVersion: REPORT_SCHEMA_VERSION,
    root,
    platform: formatPlatform(primary),
    summary: {
      packages: packages.length,
      verified: packages.filter((p) => p.status === 'verified').length,
      unverified: packages.filter((p) => p.status === 'unverified').length,
      badSignature: packages.filter((p) => p.status === 'bad-signature').length,
      filesChecked,
      failures: sorted.filter((f) => f.failure).length,
      findingsByClass: countByClass(sorted),
      durationMs: Math.round(performance.now() - started),
    },
    findings: sorted,
    packages,
    catalogs,
    notes,
  };
}

async function unownedFindings(
  rootDir: RootDir,
  root: string,
  db: LocalDatabase,
  manifestPaths: readonly string[],
  isVerified: (pkg: InstalledPackage) => boolean,
  dirs: readonly string[],
  pool: HashPool,
  options: VerifyMachineOptions,
  notes: string[],
): Promise<Finding[]> {
  const owned = new Set<string>();
  const own = (p: string): void => {
    const c = canonicalOf(rootDir, p);
    if (c !== undefined) owned.add(c);
  };
  // A verified package owns what its signed manifest lists; any other, what the database says.
  for (const pkg of db.packages) if (!isVerified(pkg)) for (const f of pkg.files) own(f.path);
  for (const p of manifestPaths) own(p);
  for (const p of db.alsoOwned()) own(p);
  if (db.alternativesDir !== undefined)
    for (const link of readAlternativeLinks(rootDir, db.alternativesDir)) own(link);
  const scan = scanUnowned(rootDir, dirs, owned);
  owned.clear();
  notes.push(...scan.notes);
  if (scan.paths.length === 0) return [];
  const observations = await pool.inspectAll(root, scan.paths);
  const hashes = observations.flatMap((o) => (o.status === 'ok' && o.type === 'file' ? [o.sha256] : []));
  let known: Awaited<ReturnType<NonNullable<VerifyMachineOptions['reverseLookup']>>> | undefined;
  if (options.reverseLookup !== undefined && hashes.length > 0) {
    try {
      known = await options.reverseLookup(hashes);
    } catch (e) {
      if (!isUnavailable(e)) throw e;
      notes.push(`unowned files not looked up: ${e.message}`);
    }
  } else if (hashes.length > 0) {
    notes.push('unowned files not looked up: no server');
  }
  const out: Finding[] = [];
  for (const o of observations) {
    const base = { class: 'unowned' as const, package: '', arch: '', path: o.path };
    if (o.status !== 'ok') {
      out.push({
        ...base,
        detail: `${o.path}: no package owns it, and it cannot be inspected (${o.status})`,
        failure: true,
      });
      continue;
    }
    if (o.type !== 'file') {
      const what = o.type === 'symlink' ? `symlink -> ${o.target}` : o.type;
      out.push({
        ...base,
        actual: o.type,
        detail: `${o.path} (${what}): no package owns it`,
        failure: o.type !== 'symlink',
      });
      continue;
    }
    const hits = known?.get(o.sha256);
    const mode = (o.mode & 0o7777).toString(8).padStart(4, '0');
    if (hits !== undefined && hits.hits.length > 0) {
      const h = hits.hits[0] as ReverseLookupHit;
      const more =
        hits.hits.length > 1 ? ` and ${hits.hits.length - 1}${hits.truncated ? '+' : ''} more` : '';
      out.push({
        ...base,
        actual: o.sha256,
        known: true,
        detail: `${o.path} (mode ${mode}): no installed package owns it; the same content is ${h.path} in ${h.name} ${h.version} (${h.platform})${more}`,
        failure: false,
      });
    } else {
      out.push({
        ...base,
        actual: o.sha256,
        known: false,
        detail:
          `${o.path} (mode ${mode}, ${o.size} bytes): no installed package owns it` +
          (known === undefined ? ' (not looked up)' : ', and no manifest the server knows has this content'),
        failure: true,
      });
    }
  }
  return out;
}

/** A chunk's paths hashed before its manifests were opened (see hashAhead in verifyWith). */
interface HashedAhead {
  indexOf: ReadonlyMap<string, number>;
  observations: Promise<FileObservation[]>;
}

/** A manifest this large is followed by a garbage collection (see collectGarbage). */
const LARGE_MANIFEST_BYTES = 2 * 1024 * 1024;

/** Packages per fetch of manifests with their bytes inline (a first run; see resolveChunk). */
const FETCH_GROUP = 32;

/** Bytes of manifests verified at once: a parse holds several times its document's size. */
const VERIFY_BUDGET_BYTES = 8 * 1024 * 1024;

/**
 * At most `capacity` units of work at once, by weight; one heavier than the capacity runs alone.
 * Used so that several large manifests are not parsed and validated at the same time.
 */
class WeightedLimit {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly capacity: number) {}

  async run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
    const w = Math.min(Math.max(0, weight), this.capacity);
    while (this.used + w > this.capacity) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used += w;
    try {
      return await fn();
    } finally {
      this.used -= w;
      for (const wake of this.waiting.splice(0)) wake();
    }
  }
}

/**
 * Chunks hashing or queued on the pool (first come, first served) at once: one being hashed,
 * the next ones waiting behind it, so the threads are never idle while the main thread compares.
 */
const HASHING_AHEAD = 3;

/** Packages per digests-only lookup (see statusesOf). */
const STATUS_BATCH = 2000;

/** A full garbage collection after every this many chunks (see the pipeline loop). */
const GC_EVERY_CHUNKS = 4;

/** Paths (as the package database lists them) per chunk, about: see fetchBatchSize. */
const CHUNK_PATHS = 8000;

/** Packages per lookup and per hashing chunk (see verifyMachine). */
const DEFAULT_BATCH = 128;

/** Manifests verified (or cache entries read) at once: verification is mostly CPU, reads are I/O. */
const CONCURRENCY = 8;

/** `fn` over `items` with at most `limit` running at once; results in input order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function ident(pkg: InstalledPackage): { name: string; version: string; arch: string } {
  return { name: pkg.name, version: pkg.version, arch: pkg.architecture };
}

/**
 * Verifies a manifest offered for `pkg` on `platform` (its manifest platform): the signature
 * against the pinned keys, then that it is that package's manifest. Returns the verified
 * manifest, or why it was refused.
 */
async function verifyFor(
  pkg: InstalledPackage,
  platform: Platform,
  bytes: Uint8Array,
  signature: string,
  options: { keyring: TrustedKeyring; now?: Date },
): Promise<VerifiedManifest | string> {
  let manifest: VerifiedManifest;
  try {
    // The bytes were decoded for this call and are never changed: no copy (see adoptBytes).
    manifest = await verifyManifest(bytes, signature, options.keyring, {
      adoptBytes: true,
      ...(options.now ? { now: options.now } : {}),
    });
  } catch (e) {
    if (isSysattestError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  const m = manifest.content;
  const platformId = formatPlatform(platform);
  if (
    m.platform !== platformId ||
    m.package.name !== pkg.name ||
    m.package.version !== pkg.version ||
    m.package.architecture !== pkg.architecture
  ) {
    return (
      `MANIFEST_MISMATCH: asked for ${pkg.name} ${pkg.version} (${platformId}), ` +
      `got a manifest for ${m.package.name} ${m.package.version} (${m.platform})`
    );
  }
  return manifest;
}
