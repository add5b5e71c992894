/**
 * dpkg's database (Debian, Ubuntu and derivatives): what is installed under a root, the paths
 * each package owns with dpkg's md5 digests, conffiles, diversions and architectures. The parsers
 * of the single files are internal to this folder.
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
