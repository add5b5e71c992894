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
export { parseDeb822, type Deb822Field, type Deb822Paragraph } from './deb822.js';
export { parseArchFile, parseDiversions } from './diversions.js';
export { isArchName, isPackageName, pathProblem } from './fields.js';
export { parseFileList, parseMd5sums } from './info-files.js';
export {
  INSTALLED_STATES,
  PARTIAL_STATES,
  parseStatus,
  type DpkgConffile,
  type DpkgState,
  type StatusEntry,
} from './status.js';
