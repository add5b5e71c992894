import { z } from 'zod';
import {
  fingerprint,
  packageName,
  platformId,
  sha256,
  shortText,
  timestamp,
  version,
} from '../signed/fields.js';

/**
 * Catalog snapshot v1: every package version a platform's repositories offered at one moment, as
 * the generator read it through the distribution's own tools (so apt/dnf/apk had already checked
 * the repository signatures). Signed like a manifest; a client uses it to tell "you are outdated"
 * (a newer version exists) from "the server is stale" (the snapshot is old) — trust model rule 4.
 */
export const CATALOG_SCHEMA_ID = 'sysattest.catalog';
export const CATALOG_SCHEMA_VERSION = 1;

export const CATALOG_LIMITS = {
  /** Debian bookworm main for one architecture is ~64,000 packages, ~15 MB here. */
  maxBytes: 128 * 1024 * 1024,
  maxPackages: 1_000_000,
  maxSources: 256,
} as const;

/** Architectures that mean "any": such packages appear in every architecture's catalog. */
export const ARCH_INDEPENDENT = new Set(['all', 'noarch']);

const originName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and - only');

/** An extra source the generator's image reads besides the distribution's archive. */
export const catalogOriginSchema = z.strictObject({
  /** The operator's name for the source (what packages' `origin` refers to). */
  name: originName,
  kind: z.enum(['snapshot', 'repository']),
  /** Snapshots: the date of the archive snapshot. */
  snapshotDate: timestamp.optional(),
});

export const catalogPackageSchema = z
  .strictObject({
    name: packageName,
    version,
    architecture: packageName,
    source: z.strictObject({ name: packageName, version }),
    /** Size of the package archive in bytes. */
    size: z.int().min(0).max(Number.MAX_SAFE_INTEGER),
    /**
     * The repository index's SHA-256 of the package archive (.deb, .rpm). Absent only when the
     * index records none and carries `apkChecksum` instead (Alpine's APKINDEX).
     */
    sha256: sha256.optional(),
    /**
     * Alpine: the APKINDEX `C:` checksum exactly as the index writes it, `Q1` + base64 of the
     * SHA-1 of the .apk's control segment (the gzip stream holding `.PKGINFO`, which in turn
     * records the SHA-256 of the data segment) — not a digest of the whole file. `Q2` is the
     * same with SHA-256. apk itself checks a downloaded package against it.
     */
    apkChecksum: z
      .string()
      .regex(
        /^(?:Q1[A-Za-z0-9+/]{27}=|Q2[A-Za-z0-9+/]{43}=)$/,
        'must be Q1 + base64 SHA-1 or Q2 + base64 SHA-256',
      )
      .optional(),
    /** Path of the archive in the repository (Debian's `Filename:`). */
    filename: shortText.optional(),
    /**
     * The extra source that offers this version (the `name` of a `provenance.sources[].origin`):
     * an archive snapshot or a third-party repository the operator configured. Absent: the
     * distribution's own archive.
     */
    origin: originName.optional(),
  })
  .refine((p) => p.sha256 !== undefined || p.apkChecksum !== undefined, {
    message: 'a package needs its archive sha256 or, for apk, its apkChecksum',
    path: ['sha256'],
  });

export const catalogSchema = z
  .strictObject({
    schema: z.literal(CATALOG_SCHEMA_ID),
    schemaVersion: z.literal(CATALOG_SCHEMA_VERSION),
    platform: platformId,
    /** When the snapshot was taken: the moment the repository indexes were read. */
    generatedAt: timestamp,
    provenance: z.strictObject({
      generator: z.strictObject({ name: shortText, version: shortText }),
      keyFingerprint: fingerprint,
      image: z.strictObject({ id: shortText }),
      /** The repositories read, as the package manager named them, with their index dates. */
      sources: z
        .array(
          z.strictObject({
            /** e.g. `Debian bookworm/main amd64` or a repository id. */
            name: shortText,
            /** The repository's own date for the index (Debian Release `Date:`), when it has one. */
            date: timestamp.optional(),
            /** Debian Release `Valid-Until:`. */
            validUntil: timestamp.optional(),
            /** Set when the index is an extra source's, not the distribution archive's. */
            origin: catalogOriginSchema.optional(),
          }),
        )
        .max(CATALOG_LIMITS.maxSources),
    }),
    /** Sorted by name, then architecture, then version string; one entry per triple. */
    packages: z.array(catalogPackageSchema).max(CATALOG_LIMITS.maxPackages),
  })
  .superRefine((c, ctx) => {
    const platformArch = c.platform.split('/')[2] as string;
    const origins = new Set(c.provenance.sources.flatMap((s) => (s.origin ? [s.origin.name] : [])));
    for (let i = 0; i < c.packages.length; i++) {
      const p = c.packages[i] as CatalogPackage;
      if (p.architecture !== platformArch && !ARCH_INDEPENDENT.has(p.architecture)) {
        ctx.addIssue({
          code: 'custom',
          path: ['packages', i, 'architecture'],
          message: `${p.name} ${p.version} is for ${p.architecture}, not ${platformArch}`,
        });
        return;
      }
      if (p.origin !== undefined && !origins.has(p.origin)) {
        ctx.addIssue({
          code: 'custom',
          path: ['packages', i, 'origin'],
          message: `${p.name} ${p.version} names origin ${p.origin}, which no source of the catalog is`,
        });
        return;
      }
      const prev = c.packages[i - 1];
      if (prev !== undefined && compareCatalogKeys(prev, p) >= 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['packages', i],
          message:
            compareCatalogKeys(prev, p) === 0
              ? `${p.name} ${p.version} (${p.architecture}) is listed twice`
              : `${p.name} ${p.version} (${p.architecture}) is out of order`,
        });
        return;
      }
    }
  });

export type Catalog = z.infer<typeof catalogSchema>;
export type CatalogPackage = z.infer<typeof catalogPackageSchema>;
export type CatalogOrigin = z.infer<typeof catalogOriginSchema>;

/** The canonical order of catalog entries (code units, not version order: no scheme needed). */
export function compareCatalogKeys(
  a: Pick<CatalogPackage, 'name' | 'architecture' | 'version'>,
  b: Pick<CatalogPackage, 'name' | 'architecture' | 'version'>,
): number {
  return cmp(a.name, b.name) || cmp(a.architecture, b.architecture) || cmp(a.version, b.version);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
