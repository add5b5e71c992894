import { performance } from 'node:perf_hooks';
import {
  HashPool,
  RootDir,
  detectPlatforms,
  formatPlatform,
  isSysattestError,
  readDpkgDatabase,
  readRootAccounts,
  verifyManifest,
  type DpkgPackage,
  type FileObservation,
  type Platform,
  type TrustedKeyring,
  type VerifiedManifest,
} from '@sysattest/core';
import type { ManifestCache } from '../cache/manifest-cache.js';
import { compareEntries, locationOf, type Finding } from './compare.js';
import {
  REPORT_SCHEMA_ID,
  REPORT_SCHEMA_VERSION,
  countByClass,
  sortFindings,
  type PackageResult,
  type UnverifiedReason,
  type VerifyReport,
} from './report.js';
import type { ManifestFetchResult, ManifestRequest, ManifestSource } from './source.js';

export interface VerifyMachineOptions {
  /** The root to check (default `/`). */
  root?: string;
  /** The pinned keys every manifest is verified against before use. */
  keyring: TrustedKeyring;
  /** Where manifests come from; undefined = offline (the cache alone). */
  source?: ManifestSource;
  /** Verified manifests kept between runs (re-verified on every read). */
  cache?: ManifestCache;
  /** Only these packages (`name` or `name:arch`); default every installed package. */
  packages?: readonly string[];
  /** Count conffile changes as failures. */
  includeConfig?: boolean;
  /** Hash pool threads (default: the CPUs); ignored when `pool` is given. */
  jobs?: number;
  /** A pool to use (left open); otherwise one is made and closed. */
  pool?: HashPool;
  /** Items per ManifestSource.fetch call (default 256). */
  fetchBatchSize?: number;
  /** Verification time (tests). */
  now?: Date;
  /** Progress of the hashing phase. */
  onProgress?: (p: { filesDone: number; filesTotal: number; bytesDone: number }) => void;
}

interface Checked {
  pkg: DpkgPackage;
  manifest: VerifiedManifest;
}

/**
 * Checks every installed package under `root` against its signed manifest:
 *  1. reads the dpkg database under the root (never the host's) and detects the platform;
 *  2. gets a manifest per package — from the cache (re-verified), else from the source in batches;
 *  3. verifies EVERY manifest against the pinned keyring before reading it, and refuses one that is
 *     not the manifest asked for (other package, version, architecture or platform): both are
 *     `bad-signature` at package level, and nothing of that package is compared (so nothing of it
 *     is reported clean either);
 *  4. hashes every path of every verified manifest (at its diverted location) in one HashPool run;
 *  5. compares (compare.ts) and reports.
 * Local md5sums are never used as a reference (trust model rule 2).
 */
export async function verifyMachine(options: VerifyMachineOptions): Promise<VerifyReport> {
  const started = performance.now();
  const root = options.root ?? '/';
  const db = await readDpkgDatabase(root);
  const detected = await detectPlatforms(root);
  const primary = detected.primary;

  const wanted = options.packages === undefined ? undefined : new Set(options.packages);
  const installed = db.packages.filter(
    (p) => wanted === undefined || wanted.has(p.name) || wanted.has(`${p.name}:${p.architecture}`),
  );

  const results = new Map<DpkgPackage, PackageResult>();
  const findings: Finding[] = [];
  const checked: Checked[] = [];

  const unverified = (pkg: DpkgPackage, reason: UnverifiedReason): void => {
    results.set(pkg, { ...ident(pkg), status: 'unverified', reason });
    findings.push({
      class: 'unverified',
      package: pkg.name,
      arch: pkg.architecture,
      detail: `${pkg.name} ${pkg.version}: no trusted manifest (${reason})`,
      failure: false,
    });
  };
  const refused = (pkg: DpkgPackage, reason: string): void => {
    results.set(pkg, { ...ident(pkg), status: 'bad-signature', reason });
    findings.push({
      class: 'bad-signature',
      package: pkg.name,
      arch: pkg.architecture,
      detail: `${pkg.name} ${pkg.version}: manifest refused, its files are not checked: ${reason}`,
      failure: true,
    });
  };
  const accepted = (pkg: DpkgPackage, manifest: VerifiedManifest): void => {
    results.set(pkg, { ...ident(pkg), status: 'verified', signer: manifest.signerFingerprint });
    checked.push({ pkg, manifest });
  };

  // Per architecture (native, foreign, `all`): one platform each.
  const byArch = new Map<string, DpkgPackage[]>();
  for (const p of installed) {
    const list = byArch.get(p.architecture);
    if (list === undefined) byArch.set(p.architecture, [p]);
    else list.push(p);
  }
  const batchSize = Math.max(1, options.fetchBatchSize ?? 256);
  for (const [arch, pkgs] of byArch) {
    const platform: Platform = { ...primary, arch };
    const toFetch: DpkgPackage[] = [];
    const cache = options.cache;
    const fromCache = await mapLimit(pkgs, CONCURRENCY, (pkg) =>
      cache === undefined
        ? Promise.resolve(undefined)
        : cache
            .get(platform, { name: pkg.name, version: pkg.version, arch }, options.keyring)
            .catch(() => undefined),
    );
    for (const [i, pkg] of pkgs.entries()) {
      const cached = fromCache[i];
      if (cached !== undefined) accepted(pkg, cached);
      else toFetch.push(pkg);
    }
    for (let i = 0; i < toFetch.length; i += batchSize) {
      const batch = toFetch.slice(i, i + batchSize);
      const source = options.source;
      if (source === undefined) {
        for (const pkg of batch) unverified(pkg, 'no-manifest');
        continue;
      }
      const requests: ManifestRequest[] = batch.map((p) => ({ name: p.name, version: p.version, arch }));
      const fetched = await source.fetch(platform, requests);
      const outcomes = await mapLimit(batch, CONCURRENCY, async (pkg, j) => {
        const r: ManifestFetchResult | undefined = fetched[j];
        if (r === undefined) return { unverified: 'no-manifest' as const };
        if (r.status !== 'ok') return { unverified: r.status };
        return { verified: await verifyFor(pkg, platform, r.bytes, r.signature, options) };
      });
      for (const [j, pkg] of batch.entries()) {
        const outcome = outcomes[j];
        if (outcome === undefined || 'unverified' in outcome) {
          unverified(pkg, outcome?.unverified ?? 'no-manifest');
        } else if (typeof outcome.verified === 'string') {
          refused(pkg, outcome.verified);
        } else {
          accepted(pkg, outcome.verified);
          await options.cache?.put(outcome.verified).catch(() => undefined);
        }
      }
    }
  }
  await options.cache?.prune().catch(() => undefined);

  // Every location of every verified manifest, hashed in one run.
  const localDiversion = (pkg: DpkgPackage) => (p: string) => db.applyDiversions(p, pkg.name);
  const locations = new Set<string>();
  for (const { pkg, manifest } of checked) {
    for (const e of manifest.content.entries) locations.add(locationOf(e, localDiversion(pkg)));
  }
  const paths = [...locations];
  const pool = options.pool ?? new HashPool({ capabilities: 'executable', threads: options.jobs });
  let observations: FileObservation[];
  try {
    observations = await pool.inspectAll(root, paths, { onProgress: options.onProgress });
  } finally {
    if (options.pool === undefined) await pool.close();
  }
  const byPath = new Map<string, FileObservation>();
  for (const [i, p] of paths.entries()) {
    const o = observations[i];
    if (o !== undefined) byPath.set(p, o);
  }

  const accounts = readRootAccounts(RootDir.open(root));
  let filesChecked = 0;
  for (const { pkg, manifest } of checked) {
    filesChecked += manifest.content.entries.length;
    findings.push(
      ...compareEntries(
        { name: pkg.name, arch: pkg.architecture },
        manifest.content.entries,
        (location) => byPath.get(location),
        { includeConfig: options.includeConfig, accounts, localDiversion: localDiversion(pkg) },
      ),
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
  };
}

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

function ident(pkg: DpkgPackage): { name: string; version: string; arch: string } {
  return { name: pkg.name, version: pkg.version, arch: pkg.architecture };
}

/**
 * Verifies a manifest offered for `pkg` on `platform`: the signature against the pinned keys, then
 * that it is that package's manifest. Returns the verified manifest, or why it was refused.
 */
async function verifyFor(
  pkg: DpkgPackage,
  platform: Platform,
  bytes: Uint8Array,
  signature: string,
  options: { keyring: TrustedKeyring; now?: Date },
): Promise<VerifiedManifest | string> {
  let manifest: VerifiedManifest;
  try {
    manifest = await verifyManifest(
      bytes,
      signature,
      options.keyring,
      options.now ? { now: options.now } : {},
    );
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
