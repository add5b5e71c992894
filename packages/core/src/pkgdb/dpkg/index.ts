/**
 * dpkg's database (Debian, Ubuntu and derivatives): what is installed under a root, the paths
 * each package owns with dpkg's md5 digests, conffiles, diversions and architectures; and the
 * deb822 parser and name checks, which apt's files (read by the generator) share.
 */
export {
  DEFAULT_DPKG_ADMIN_DIR,
  DPKG_LIMITS,
  DpkgDatabase,
  readDpkgArchitectures,
  readDpkgDatabase,
  type DpkgLimits,
  type DpkgNote,
  type DpkgPackage,
  type ReadDpkgOptions,
} from './database.js';
export type { DpkgConffile, DpkgState } from './status.js';
export { parseDeb822, type Deb822Field, type Deb822Paragraph, type ParseDeb822Options } from './deb822.js';
export { isArchName, isPackageName } from './fields.js';
