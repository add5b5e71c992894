/**
 * The store's read model: the paginated, indexed queries behind the dashboard's views (see the
 * indexes in migrations.ts). It only reads, and it cannot read tokens (read-context.ts); writes go
 * through the store's other modules.
 */
export {
  fleet,
  platformsWithCatalog,
  queueCounts,
  type JobCounts,
  type PlatformOverview,
  type QueueCounts,
} from './fleet.js';
export { jobsPage, workers, type JobList, type WorkerActivity } from './jobs.js';
export { manifestSummary, type ManifestSummary } from './manifest-summary.js';
export {
  packageVersions,
  type ManifestStatus,
  type PackageOnPlatform,
  type PackageVersion,
} from './package-versions.js';
export { searchPackages, trackedPackagesPage, type PackageMatch } from './packages.js';
export { readContext, type Page, type PageRequest, type ReadContext } from './read-context.js';
export { newestSnapshotId, packageUpgrades, type PackageUpgrade } from './upgrades.js';
