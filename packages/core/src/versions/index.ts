export {
  VERSION_SCHEME_NAMES,
  isVersionSchemeName,
  type VersionScheme,
  type VersionSchemeName,
} from './scheme.js';
export {
  DPKG_EPOCH_MAX,
  DPKG_VERSION_MAX_LENGTH,
  compareDpkgVersionParts,
  compareDpkgVersions,
  dpkgVersionScheme,
  parseDpkgVersion,
  validateDpkgVersion,
  type DpkgVersion,
} from './dpkg.js';
export {
  DISTRO_VERSION_SCHEMES,
  maxVersion,
  sortVersions,
  versionSchemeFor,
  versionSchemeForDistro,
  versionSchemeNameForDistro,
} from './registry.js';
export {
  RPM_VERSION_MAX_LENGTH,
  compareRpmVersionParts,
  compareRpmVersions,
  formatRpmVersion,
  parseRpmVersion,
  rpmVersionScheme,
  rpmvercmp,
  splitRpmVersion,
  validateRpmVersion,
  type RpmVersion,
} from './rpm.js';
export { APK_VERSION_MAX_LENGTH, apkVersionScheme, compareApkVersions, validateApkVersion } from './apk.js';
