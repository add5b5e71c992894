/** Alpine's installed database (`lib/apk/db/installed`), read without apk. */
export {
  APK_INSTALLED_PATHS,
  APK_LIMITS,
  ApkDatabase,
  DEFAULT_APK_INSTALLED,
  decodeApkChecksum,
  findApkDatabase,
  parseApkInstalled,
  readApkDatabase,
  type ApkLimits,
  type ApkPackage,
  type ReadApkOptions,
} from './database.js';
export {
  APK_DEFAULT_PROTECTED_PATHS,
  APK_PROTECTED_PATHS_DIR,
  APK_PROTECTED_PATHS_LIMITS,
  ApkProtectedPaths,
  fnmatchComponent,
  parseApkProtectedPaths,
  readApkProtectedPaths,
  type ApkProtectMode,
  type ApkProtectedPathRule,
} from './protected-paths.js';
