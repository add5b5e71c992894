/**
 * rpm's database (Fedora, RHEL and rebuilds, CBL-Mariner…), read without rpm: sqlite
 * `rpmdb.sqlite` and Berkeley DB `Packages`, with rpm's per-file digests, modes, owners, link
 * targets and flags.
 */
export {
  RPMFILE,
  RPM_DATABASE_DIRS,
  RPM_LIMITS,
  RpmDatabase,
  findRpmDatabase,
  readRpmDatabase,
  rpmPackageFromHeader,
  type ReadRpmOptions,
  type RpmDatabaseFormat,
  type RpmFile,
  type RpmFileState,
  type RpmLimits,
  type RpmNote,
  type RpmPackage,
} from './database.js';
export { HeaderError, RpmHeader, TAG as RPM_TAG } from './header.js';
export {
  SqliteUnavailableError,
  openSqlite,
  sqliteDrivers,
  type SqliteConnection,
  type SqliteDriverName,
} from './sqlite.js';
