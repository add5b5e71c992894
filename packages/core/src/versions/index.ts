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
