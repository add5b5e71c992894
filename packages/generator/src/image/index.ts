export {
  APT_CONF,
  DPKG_CFG,
  ImageFleet,
  buildImage,
  listImages,
  refreshImage,
  removeImage,
  type BuildOptions,
  type FleetOptions,
  type ImageResult,
  type ListedImage,
  type RefreshOptions,
  type RemoveOptions,
  type RemoveResult,
} from './fleet.js';
export {
  diffPackages,
  formatChange,
  listContainerPackages,
  listImagePackages,
  packageListCommand,
  parsePackageList,
  type InstalledPackageVersion,
  type PackageChange,
} from './packages.js';
export {
  checkCanRunArch,
  DEFAULT_IMAGE_NAMESPACE,
  hostOciArch,
  imageNames,
  ociArch,
  type ImageNames,
  type OciArch,
} from './oci.js';
export {
  readState,
  stateFilePath,
  STATE_FILE_NAME,
  type GenerationRecord,
  type ImageSource,
  type ImageState,
  type PlatformImage,
} from './state.js';
