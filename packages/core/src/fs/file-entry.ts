import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { getAttributeSync } from 'fs-xattr';
import { PathError } from '../errors.js';
import { CAPABILITY_XATTR, decodeCapability, type FileCapability } from './capability.js';
import type { RootDir } from './in-root.js';

/**
 * What one path inside a root is, observed without ever leaving the root (trust model rule 3) and
 * without following its final component: `usr/bin/evil -> /etc/shadow` is reported as a symlink
 * with target `/etc/shadow`, never hashed as the target.
 *
 * `FileObservation` is a discriminated union on `status`:
 *
 * | status                  | meaning                                                              |
 * |-------------------------|----------------------------------------------------------------------|
 * | `ok`                    | observed; the fields depend on `type` (see `FileEntry`)              |
 * | `missing`               | the path, or one of its directories, does not exist                  |
 * | `vanished`              | lstat saw it, but it was gone when it was opened                     |
 * | `changed`               | what was opened is not what lstat saw (another inode, another type)  |
 * | `changed-while-hashing` | size, mtime or ctime moved between the fstat before and after reading |
 * | `unreadable`            | the OS refused (EACCES, EPERM, EIO…): `errno` says which             |
 * | `error`                 | the path cannot be resolved: invalid, a loop, through a non-directory |
 *
 * Only `ok` carries a hash. `vanished`, `changed` and `changed-while-hashing` mean the tree moved
 * under the inspection: inspect again, or report it as unstable. FIFOs, sockets and devices are
 * never opened (lstat only); regular files are opened O_RDONLY | O_NOFOLLOW | O_NONBLOCK and
 * checked with fstat to be the same inode lstat saw before a byte is read.
 */
export type FileObservation =
  | ({ status: 'ok' } & FileEntry)
  | { status: 'missing'; path: string }
  | { status: 'vanished'; path: string }
  | { status: 'changed'; path: string; detail: string }
  | { status: 'changed-while-hashing'; path: string; detail: string }
  | { status: 'unreadable'; path: string; errno: string; message: string }
  | { status: 'error'; path: string; code: PathError['code']; message: string };

export type FileObservationStatus = FileObservation['status'];

export type FileType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

/** What lstat (for regular files: fstat of the opened file) says, for every type. */
export interface EntryStat {
  /** The path as asked, e.g. `/bin/ls`. */
  path: string;
  /** The canonical in-root path, every directory resolved, e.g. `/usr/bin/ls` (usrmerge). */
  resolvedPath: string;
  /** Permission bits including setuid, setgid and sticky: `st_mode & 0o7777`. */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes (for a symlink: the length of its target). */
  size: number;
  /** Modification time, milliseconds since the epoch (fractional). */
  mtimeMs: number;
  /** Hard link count. */
  nlink: number;
  /** Device and inode numbers: paths with the same pair are hard links of one file. */
  dev: number;
  ino: number;
}

/** An observed entry, by type. */
export type FileEntry =
  | (EntryStat & {
      type: 'file';
      /** SHA-256 of the content, lower-case hex. */
      sha256: string;
      /** The `security.capability` xattr, when the file has one. */
      capability?: FileCapability;
    })
  | (EntryStat & {
      type: 'symlink';
      /** The link target as stored (not resolved), decoded as UTF-8. */
      target: string;
      /** The target's raw bytes in hex, present only when they are not valid UTF-8. */
      targetHex?: string;
    })
  | (EntryStat & { type: 'dir' | 'fifo' | 'socket' })
  | (EntryStat & { type: 'chardev' | 'blockdev'; rdevMajor: number; rdevMinor: number });

export interface InspectOptions {
  /** Read the `security.capability` xattr of regular files (default true). */
  capabilities?: boolean;
}

/** Bytes read per read(2) while hashing; one buffer per thread, reused for every file. */
export const HASH_CHUNK_SIZE = 1 << 20;
let chunk: Buffer | undefined;

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
const S_IFMT = fs.constants.S_IFMT;

function fileType(mode: number): FileType | undefined {
  switch (mode & S_IFMT) {
    case fs.constants.S_IFREG:
      return 'file';
    case fs.constants.S_IFDIR:
      return 'dir';
    case fs.constants.S_IFLNK:
      return 'symlink';
    case fs.constants.S_IFIFO:
      return 'fifo';
    case fs.constants.S_IFSOCK:
      return 'socket';
    case fs.constants.S_IFCHR:
      return 'chardev';
    case fs.constants.S_IFBLK:
      return 'blockdev';
    default:
      return undefined;
  }
}

/** The major number of a dev_t, as glibc's major(3) decodes it. */
export function devMajor(rdev: number): number {
  const hi = Math.floor(rdev / 2 ** 32);
  return (((rdev >>> 8) & 0xfff) | (hi & 0xfffff000)) >>> 0;
}

/** The minor number of a dev_t, as glibc's minor(3) decodes it. */
export function devMinor(rdev: number): number {
  const hi = Math.floor(rdev / 2 ** 32);
  return ((rdev & 0xff) | ((rdev >>> 12) & 0xfff00) | ((hi & 0xfff) << 20)) >>> 0;
}

function errnoOf(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'UNKNOWN';
}

/** Errors that mean the OS refused to let us look, not that the tree is wrong. */
const UNREADABLE = new Set(['EACCES', 'EPERM', 'EIO', 'ENXIO', 'EOVERFLOW', 'EFBIG', 'ENOMEM', 'EMFILE', 'ENFILE']);

function failure(path: string, what: string, e: unknown): FileObservation {
  const errno = errnoOf(e);
  switch (errno) {
    case 'ENOENT':
      return { status: 'vanished', path };
    case 'ENOTDIR':
      return { status: 'error', path, code: 'NOT_A_DIRECTORY', message: `a directory of ${path} is not a directory` };
    case 'ENAMETOOLONG':
      return { status: 'error', path, code: 'INVALID_PATH', message: `${path} (or one of its components) is too long` };
    case 'ELOOP':
      // O_NOFOLLOW met a symlink: the regular file lstat saw was replaced by a symlink.
      return { status: 'changed', path, detail: `${path} became a symlink before it was opened` };
    default:
      if (UNREADABLE.has(errno)) return { status: 'unreadable', path, errno, message: `cannot ${what} ${path}: ${errno}` };
      return { status: 'unreadable', path, errno, message: `cannot ${what} ${path}: ${String(e)}` };
  }
}

function statFields(path: string, resolvedPath: string, st: fs.Stats): EntryStat {
  return {
    path,
    resolvedPath,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtimeMs: st.mtimeMs,
    nlink: st.nlink,
    dev: st.dev,
    ino: st.ino,
  };
}

/**
 * Observes one path inside `root` (see FileObservation). Never throws for anything the tree can
 * contain: missing files, loops, races and refusals are results. Synchronous: regular files are
 * streamed through SHA-256 in HASH_CHUNK_SIZE reads into one reused buffer, so memory stays
 * bounded whatever the file size. For many files use HashPool, which runs this on every core.
 */
export function inspectFile(root: RootDir, path: string, options: InspectOptions = {}): FileObservation {
  let host: string;
  let resolvedPath: string;
  try {
    ({ host, canonical: resolvedPath } = root.resolveFinal(path));
  } catch (e) {
    if (e instanceof PathError) {
      if (e.code === 'NOT_FOUND') return { status: 'missing', path };
      return { status: 'error', path, code: e.code, message: e.message };
    }
    return { status: 'error', path, code: 'IO_ERROR', message: String(e) };
  }

  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(host, { throwIfNoEntry: false });
  } catch (e) {
    const observed = failure(path, 'stat', e);
    return observed.status === 'vanished' ? { status: 'missing', path } : observed;
  }
  if (st === undefined) return { status: 'missing', path };

  const type = fileType(st.mode);
  switch (type) {
    case 'file':
      return hashRegularFile(path, resolvedPath, host, st, options.capabilities ?? true);
    case 'symlink': {
      let raw: Buffer;
      try {
        raw = fs.readlinkSync(host, { encoding: 'buffer' });
      } catch (e) {
        if (errnoOf(e) === 'EINVAL') return { status: 'changed', path, detail: `${path} is no longer a symlink` };
        return failure(path, 'read the link', e);
      }
      const target = raw.toString('utf8');
      const entry: FileEntry = { ...statFields(path, resolvedPath, st), type, target };
      if (!Buffer.from(target, 'utf8').equals(raw)) entry.targetHex = raw.toString('hex');
      return { status: 'ok', ...entry };
    }
    case 'chardev':
    case 'blockdev':
      return {
        status: 'ok',
        ...statFields(path, resolvedPath, st),
        type,
        rdevMajor: devMajor(st.rdev),
        rdevMinor: devMinor(st.rdev),
      };
    case 'dir':
    case 'fifo':
    case 'socket':
      return { status: 'ok', ...statFields(path, resolvedPath, st), type };
    default:
      return {
        status: 'error',
        path,
        code: 'IO_ERROR',
        message: `${path} has an unknown file type (mode 0o${st.mode.toString(8)})`,
      };
  }
}

function hashRegularFile(
  path: string,
  resolvedPath: string,
  host: string,
  lst: fs.Stats,
  capabilities: boolean,
): FileObservation {
  let fd: number;
  try {
    fd = fs.openSync(host, OPEN_FLAGS);
  } catch (e) {
    return failure(path, 'open', e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.ino !== lst.ino || st.dev !== lst.dev) {
      return { status: 'changed', path, detail: `${path} was replaced between lstat and open` };
    }
    const buf = (chunk ??= Buffer.allocUnsafe(HASH_CHUNK_SIZE));
    const hash = createHash('sha256');
    const size = st.size;
    let total = 0;
    try {
      // Stop at the size fstat gave: a file that grew is caught by the second fstat below.
      while (total < size) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break; // shrank: caught below
        hash.update(n === buf.length ? buf : buf.subarray(0, n));
        total += n;
      }
    } catch (e) {
      return failure(path, 'read', e);
    }
    const after = fs.fstatSync(fd);
    if (
      total !== size ||
      after.size !== size ||
      after.mtimeMs !== st.mtimeMs ||
      after.ctimeMs !== st.ctimeMs
    ) {
      return {
        status: 'changed-while-hashing',
        path,
        detail: `${path} changed while it was read (size ${size} -> ${after.size}, ${total} bytes read)`,
      };
    }
    const entry: FileEntry = { ...statFields(path, resolvedPath, after), type: 'file', sha256: hash.digest('hex') };
    if (capabilities) {
      const cap = readCapability(fd);
      if (cap instanceof Error) return failure(path, `read ${CAPABILITY_XATTR} of`, cap);
      if (cap !== undefined) entry.capability = cap;
    }
    return { status: 'ok', ...entry };
  } catch (e) {
    return failure(path, 'stat', e);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The opened file's own `security.capability`, read through /proc/self/fd so the xattr call
 * (which follows symlinks) names exactly the inode we hashed. Undefined when it has none.
 */
function readCapability(fd: number): FileCapability | Error | undefined {
  // Most files have no capability; the ENODATA error object is the common case, and building
  // its stack trace is most of its cost.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return decodeCapability(getAttributeSync(`/proc/self/fd/${fd}`, CAPABILITY_XATTR));
  } catch (e) {
    const errno = errnoOf(e);
    if (errno === 'ENODATA' || errno === 'ENOTSUP' || errno === 'EOPNOTSUPP') return undefined;
    return e instanceof Error ? e : new Error(String(e));
  } finally {
    Error.stackTraceLimit = limit;
  }
}
