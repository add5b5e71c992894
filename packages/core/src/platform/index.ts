export {
  PLATFORM_COMPONENT_MAX_LENGTH,
  formatPlatform,
  isValidPlatformComponent,
  isValidPlatformId,
  parsePlatform,
  validatePlatform,
  type Platform,
} from './platform.js';
export { OS_RELEASE_MAX_BYTES, parseOsRelease } from './os-release.js';
export {
  distroFromOsRelease,
  packageFamily,
  releaseFamily,
  releaseFromOsRelease,
  type ReleaseEvidence,
  type ReleaseFamily,
} from './release.js';
export { detectPlatforms, type DetectPlatformsOptions, type DetectedPlatforms } from './detect.js';
