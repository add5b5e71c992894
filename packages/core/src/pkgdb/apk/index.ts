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
