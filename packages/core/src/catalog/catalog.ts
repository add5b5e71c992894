import { CatalogError } from '../errors.js';
import type { SigningKey, TrustedKeyring } from '../openpgp/index.js';
import {
  serialiseDocument,
  signDocument,
  verifyDocument,
  type DocumentKind,
  type VerifyDocumentOptions,
  type SignedDocument,
  type VerifiedDocument,
} from '../signed/signed-document.js';
import type { VersionScheme } from '../versions/index.js';
import {
  CATALOG_LIMITS,
  catalogSchema,
  compareCatalogKeys,
  type Catalog,
  type CatalogPackage,
} from './schema.js';

const CODES = {
  TOO_LARGE: 'CATALOG_TOO_LARGE',
  INVALID: 'CATALOG_INVALID',
  KEY_MISMATCH: 'CATALOG_MISMATCH',
} as const;

export const CATALOG_KIND: DocumentKind<Catalog> = {
  what: 'catalog snapshot',
  schema: catalogSchema,
  maxBytes: CATALOG_LIMITS.maxBytes,
  keyFingerprintOf: (c) => c.provenance.keyFingerprint,
  describe: (c) => `${c.platform} at ${c.generatedAt}`,
  error: (code, message) => new CatalogError(CODES[code], message),
};

export type VerifiedCatalog = VerifiedDocument<Catalog>;

export function serialiseCatalog(catalog: Catalog): Uint8Array {
  return serialiseDocument(CATALOG_KIND, catalog);
}

export function signCatalog(catalog: Catalog, key: SigningKey): Promise<SignedDocument> {
  return signDocument(CATALOG_KIND, catalog, key);
}

export function verifyCatalog(
  bytes: Uint8Array,
  signature: string,
  keyring: TrustedKeyring,
  options: VerifyDocumentOptions = {},
): Promise<VerifiedCatalog> {
  return verifyDocument(CATALOG_KIND, bytes, signature, keyring, options);
}

/** Sorts entries into the canonical catalog order (a copy; the input is left alone). */
export function sortCatalogPackages(packages: readonly CatalogPackage[]): CatalogPackage[] {
  return [...packages].sort(compareCatalogKeys);
}

/**
 * The newest version of each package name + architecture in a catalog, by the distribution's own
 * ordering (dpkg for Debian). Key: `name:arch`.
 */
export function newestVersions(
  catalog: Pick<Catalog, 'packages'>,
  scheme: VersionScheme,
): Map<string, CatalogPackage> {
  const newest = new Map<string, CatalogPackage>();
  for (const p of catalog.packages) {
    const key = `${p.name}:${p.architecture}`;
    const current = newest.get(key);
    if (current === undefined || scheme.compare(p.version, current.version) > 0) newest.set(key, p);
  }
  return newest;
}
