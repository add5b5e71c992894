/** Safe in-root path resolution, file inspection and parallel hashing (trust model rule 3). */
export { MAX_PATH_LENGTH, MAX_SYMLINKS, RootDir, splitRootPath, type ResolveOptions } from './in-root.js';
export {
  HARD_LINK_MEMO_LIMIT,
  HASH_CHUNK_SIZE,
  devMajor,
  devMinor,
  inspectFile,
  type CapabilityMode,
  type EntryStat,
  type FileEntry,
  type FileObservation,
  type FileObservationStatus,
  type FileType,
  type HardLinkMemo,
  type InspectOptions,
} from './file-entry.js';
export { CAPABILITY_NAMES, CAPABILITY_XATTR, decodeCapability, type FileCapability } from './capability.js';
export {
  MAX_ACCOUNT_FILE_BYTES,
  parseGroup,
  parseIdFile,
  parsePasswd,
  readRootAccounts,
  type RootAccounts,
} from './accounts.js';
export {
  HashPool,
  HashPoolError,
  type HashPoolOptions,
  type HashProgress,
  type InspectManyOptions,
} from './hash-pool.js';
export { writeFileAtomic } from './write-atomic.js';
