export * from './schema.js';
export {
  CATALOG_KIND,
  newestVersions,
  serialiseCatalog,
  signCatalog,
  sortCatalogPackages,
  verifyCatalog,
  type VerifiedCatalog,
} from './catalog.js';
