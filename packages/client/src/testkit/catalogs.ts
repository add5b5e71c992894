import { sortCatalogPackages, type Catalog } from '@sysattest/core';

/** A version a test's catalog lists: name, version, architecture. */
export type ListedVersion = readonly [name: string, version: string, architecture: string];

export interface ListingCatalog {
  platform: string;
  /** RFC 3339, seconds. */
  generatedAt: string;
  keyFingerprint: string;
  versions: readonly ListedVersion[];
  generator?: { name: string; version: string };
  imageId?: string;
}

/**
 * A catalog snapshot that lists the given versions and nothing else about them (each its own
 * source, placeholder size and archive digest), in the canonical order: what the client's tests
 * sign to say "the archive offers these". One home for the tests' catalogs.
 */
export function listingCatalog(c: ListingCatalog): Catalog {
  return {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: c.platform,
    generatedAt: c.generatedAt,
    provenance: {
      generator: c.generator ?? { name: 'test', version: '0' },
      keyFingerprint: c.keyFingerprint,
      image: { id: c.imageId ?? 'test-image' },
      sources: [],
    },
    packages: sortCatalogPackages(
      c.versions.map(([name, version, architecture]) => ({
        name,
        version,
        architecture,
        source: { name, version },
        size: 0,
        sha256: '0'.repeat(64),
      })),
    ),
  };
}
