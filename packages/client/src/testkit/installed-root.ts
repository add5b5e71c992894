/**
 * Test and benchmark support (not part of the client's API): the reference a generator would
 * publish for the Debian packages installed under a root, made instead from that root's files as
 * they are now — one manifest per package by the generator's manifest builder over core's hash
 * pool, and the platform's catalog of the installed versions, both signed with the given key.
 * What it signs is what is there, so a verify against it finds nothing until a file changes.
 * Used by the verify bench (this machine's root) and the client .deb test (an image's root).
 */
import {
  HashPool,
  RootDir,
  detectPlatforms,
  formatPlatform,
  readDpkgDatabase,
  readRootAccounts,
  signCatalog,
  signManifest,
  type DetectedPlatforms,
  type DpkgDatabase,
  type FileObservation,
  type Manifest,
  type SignedDocument,
  type SigningKey,
} from '@sysattest/core';
import { listingCatalog, type ListedVersion } from './catalogs.js';
import { buildManifest } from '@sysattest/generator/dist/generation/manifest-builder.js';

export interface RootReferenceOptions {
  key: SigningKey;
  /** The provenance's generator and image id, and what installed the packages. */
  generator: { name: string; version: string };
  imageId: string;
  installer: string;
  /** Hash threads (core's default when absent). */
  threads?: number;
  /** Leave out a package whose manifest cannot be built (listed in `skipped`) instead of failing. */
  skipUnbuildable?: boolean;
}

export interface SignedPackageManifest {
  name: string;
  architecture: string;
  manifest: Manifest;
  signed: SignedDocument;
}

export interface RootReference {
  db: DpkgDatabase;
  primary: DetectedPlatforms['primary'];
  manifests: SignedPackageManifest[];
  /** `name:arch (reason)` of each package left out (only with `skipUnbuildable`). */
  skipped: string[];
  catalog: SignedDocument;
}

/** The signed manifests and catalog of the packages installed under `root` (see the header). */
export async function signRootReference(root: string, options: RootReferenceOptions): Promise<RootReference> {
  const db = await readDpkgDatabase(root);
  const { primary } = await detectPlatforms(root);
  const observations = await observeInstalledPaths(root, db, options.threads);
  const generatedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const provenance = {
    generatedAt,
    generator: options.generator,
    keyFingerprint: options.key.fingerprint,
    image: { id: options.imageId },
    installer: options.installer,
  };
  const accounts = readRootAccounts(RootDir.open(root));
  const manifests: SignedPackageManifest[] = [];
  const skipped: string[] = [];
  for (const pkg of db.packages) {
    let manifest: Manifest;
    try {
      manifest = buildManifest(pkg, {
        distroRelease: `${primary.distro}/${primary.release}`,
        provenance,
        accounts,
        divertedLocation: (p, name) => db.applyDiversions(p, name),
        diversions: db.diversions,
        observation: (p) => observations.get(p),
      }).manifest;
    } catch (e) {
      if (!options.skipUnbuildable) throw e;
      skipped.push(`${pkg.name}:${pkg.architecture} (${(e as Error).message})`);
      continue;
    }
    const signed = await signManifest(manifest, options.key);
    manifests.push({ name: pkg.name, architecture: pkg.architecture, manifest, signed });
  }
  const catalog = await signCatalog(
    listingCatalog({
      platform: formatPlatform(primary),
      generatedAt,
      keyFingerprint: options.key.fingerprint,
      versions: db.packages.map((p): ListedVersion => [p.name, p.version, p.architecture]),
      generator: options.generator,
      imageId: options.imageId,
    }),
    options.key,
  );
  return { db, primary, manifests, skipped, catalog };
}

/** Every path the packages list (diverted where dpkg's diversions say), inspected once. */
async function observeInstalledPaths(
  root: string,
  db: DpkgDatabase,
  threads: number | undefined,
): Promise<Map<string, FileObservation>> {
  const paths = [
    ...new Set(
      db.packages.flatMap((p) =>
        p.files.filter((f) => f.path !== '/').map((f) => db.applyDiversions(f.path, p.name)),
      ),
    ),
  ];
  const pool = new HashPool({ md5: true, capabilities: 'executable', ...(threads ? { threads } : {}) });
  try {
    const observed = await pool.inspectAll(root, paths);
    return new Map(paths.map((p, i) => [p, observed[i] as FileObservation]));
  } finally {
    await pool.close();
  }
}
