/**
 * The store's read model: the paginated, indexed queries behind the dashboard's views (see the
 * indexes in migrations.ts). It only reads, and it cannot read tokens (read-context.ts); writes go
 * through the store's other modules. Its answers have the shapes of the dashboard's contract
 * (@sysattest/dashboard's backend.ts, types only), so each shape has one home.
 */
export { fleet, platformsWithCatalog, queueCounts } from './fleet.js';
export {
  DEFAULT_HOSTS_PAGE,
  hostCountsByVerdict,
  hostDetail,
  hostReport,
  hostsPage,
  hostsRunning,
  latestHostReport,
  type HostFilter,
  type HostPage,
  type HostRunning,
} from './hosts.js';
export { jobsPage, workers } from './jobs.js';
export { manifestSummary } from './manifest-summary.js';
export { packageVersions } from './package-versions.js';
export { searchPackages, trackedPackagesPage } from './packages.js';
export { readContext, type ReadContext } from './read-context.js';
export { newestSnapshotId, packageUpgrades } from './upgrades.js';
