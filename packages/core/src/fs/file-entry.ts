import { createHash, hash as hashOnce } from 'node:crypto';
import * as fs from 'node:fs';
import { getAttributeSync } from '@napi-rs/xattr';
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
      /** The `security.capability` xattr, when the file has one (and it was read: CapabilityMode). */
      capability?: FileCapability;
      /** MD5 of the content, lower-case hex, when asked for (InspectOptions.md5). */
      md5?: string;
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

/**
 * Which regular files get their `security.capability` xattr read:
 *  - `'executable'` (default): files with at least one execute bit. Capabilities act only through
 *    execve(2), which refuses a file without any execute bit even to root, so on other files they
 *    are inert; and a file that gains an execute bit has a changed mode, which is reported, and is
 *    then read. Reading the xattr costs as much as the rest of a small file's inspection (a path
 *    lookup and an lstat to check it), and ~98% of a system's packaged files are not executable.
 *  - `'all'` (or `true`): every regular file.
 *  - `'none'` (or `false`): never.
 * Manifests and the files compared with them must be inspected with the same setting.
 */
export type CapabilityMode = 'executable' | 'all' | 'none';

export interface InspectOptions {
  /** See CapabilityMode (default 'executable'). */
  capabilities?: CapabilityMode | boolean;
  /**
   * Also compute MD5 in the same read (default false). Only to compare with a distribution's own
   * MD5 digests (dpkg md5sums): MD5 is never what sysattest trusts.
   */
  md5?: boolean;
  /**
   * Hard links seen so far in this run (see HardLinkMemo): a regular file with more than one
   * link whose inode was hashed before, unchanged since, is not read again.
   */
  links?: HardLinkMemo;
}

/**
 * The digests of hard-linked files (st_nlink > 1) already hashed in one run, by device and
 * inode. A path is served from here only when its fstat, taken after it was opened, shows the
 * same inode with the same size, mtime and ctime as the fstat taken after that inode was read
 * (any write, truncation, chmod or chown moves ctime): the same file object, unchanged, so the
 * same bytes. Only regular files with several links go in, at most HARD_LINK_MEMO_LIMIT of them.
 * (The kernel moves ctime at its clock tick, a few milliseconds: a change made within the same
 * tick as the inode was read is not seen — the observation is then that of the moment it was
 * read, as for any file changed just after it was hashed.)
 */
export type HardLinkMemo = Map<
  string,
  { size: number; mtimeMs: number; ctimeMs: number; sha256: string; md5: string | undefined }
>;

/** Most inodes a HardLinkMemo holds (a run over a whole machine has a few hundred). */
export const HARD_LINK_MEMO_LIMIT = 65_536;

function capabilityMode(option: CapabilityMode | boolean | undefined): CapabilityMode {
  if (option === undefined) return 'executable';
  if (typeof option === 'boolean') return option ? 'all' : 'none';
  return option;
}

/** Bytes read per read(2) while hashing; one buffer per thread, reused for every file. */
export const HASH_CHUNK_SIZE = 1 << 20;
let chunk: Buffer | undefined;

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
/** Linux's O_NOATIME (0 where the platform has none). */
const O_NOATIME: number = (fs.constants as { O_NOATIME?: number }).O_NOATIME ?? 0;
/**
 * Whether to ask for O_NOATIME: the kernel allows it to the file's owner and to a process with
 * CAP_FOWNER (root, as verify and the generator run), and refuses it (EPERM) to anyone else.
 */
let tryNoAtime = O_NOATIME !== 0 && process.geteuid?.() === 0;

/**
 * Opens a regular file for hashing: O_RDONLY | O_NOFOLLOW | O_NONBLOCK, and O_NOATIME where it is
 * allowed, so that reading every file of a machine does not change their access times (under
 * `relatime` a read updates an access time older than a day: every file, every night — writes to
 * every inode, and evidence a forensic responder wants left as it was). Refused O_NOATIME (root
 * without CAP_FOWNER, in some containers), it opens without it.
 */
export function openForReading(host: string): number {
  if (tryNoAtime) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0; // an EPERM here is expected, its stack is not
    try {
      return fs.openSync(host, OPEN_FLAGS | O_NOATIME);
    } catch (e) {
      if (errnoOf(e) !== 'EPERM') throw e;
      // Not ours to ask (no CAP_FOWNER): stop asking, in this thread.
      tryNoAtime = false;
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
  return fs.openSync(host, OPEN_FLAGS);
}
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

function failure(path: string, what: string, e: unknown): FileObservation {
  const errno = errnoOf(e);
  switch (errno) {
    case 'ENOENT':
      return { status: 'vanished', path };
    case 'ENOTDIR':
      return {
        status: 'error',
        path,
        code: 'NOT_A_DIRECTORY',
        message: `a directory of ${path} is not a directory`,
      };
    case 'ENAMETOOLONG':
      return {
        status: 'error',
        path,
        code: 'INVALID_PATH',
        message: `${path} (or one of its components) is too long`,
      };
    case 'ELOOP':
      // O_NOFOLLOW met a symlink: the regular file lstat saw was replaced by a symlink.
      return { status: 'changed', path, detail: `${path} became a symlink before it was opened` };
    default:
      // The OS refused to let us look (EACCES, EPERM, EIO…), not a fact about the tree.
      return {
        status: 'unreadable',
        path,
        errno,
        message: `cannot ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`,
      };
  }
}

/**
 * An `ok` observation. Built as one literal with a fixed field order: object spreads here cost
 * more than the lstat (measured ~3.7 µs against ~0.05 µs per file).
 */
function okEntry<T extends FileType>(path: string, resolvedPath: string, type: T, st: fs.Stats) {
  return {
    status: 'ok' as const,
    path,
    resolvedPath,
    type,
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
      // A directory on the way that the OS would not let us look into (EACCES…).
      if (e.code === 'IO_ERROR' && e.cause !== undefined) return failure(path, 'resolve', e.cause);
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
      return hashRegularFile(
        path,
        resolvedPath,
        host,
        st,
        capabilityMode(options.capabilities),
        options.md5 === true,
        options.links,
      );
    case 'symlink': {
      let raw: Buffer;
      try {
        raw = fs.readlinkSync(host, { encoding: 'buffer' });
      } catch (e) {
        if (errnoOf(e) === 'EINVAL')
          return { status: 'changed', path, detail: `${path} is no longer a symlink` };
        return failure(path, 'read the link', e);
      }
      const target = raw.toString('utf8');
      const o: FileObservation = { ...okEntry(path, resolvedPath, type, st), target };
      if (!Buffer.from(target, 'utf8').equals(raw)) o.targetHex = raw.toString('hex');
      return o;
    }
    case 'chardev':
    case 'blockdev':
      return {
        ...okEntry(path, resolvedPath, type, st),
        rdevMajor: devMajor(st.rdev),
        rdevMinor: devMinor(st.rdev),
      };
    case 'dir':
    case 'fifo':
    case 'socket':
      return okEntry(path, resolvedPath, type, st);
    default:
      return {
        status: 'error',
        path,
        code: 'IO_ERROR',
        message: `${path} has an unknown file type (mode 0o${st.mode.toString(8)})`,
      };
  }
}

/** Opens, checks (against `lst`, the lstat taken before) and hashes a regular file. */
function hashRegularFile(
  path: string,
  resolvedPath: string,
  host: string,
  lst: fs.Stats,
  capabilities: CapabilityMode,
  withMd5: boolean,
  links: HardLinkMemo | undefined,
): FileObservation {
  let fd: number;
  try {
    fd = openForReading(host);
  } catch (e) {
    return failure(path, 'open', e);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.ino !== lst.ino || st.dev !== lst.dev) {
      return { status: 'changed', path, detail: `${path} was replaced between lstat and open` };
    }
    const linkKey = links !== undefined && st.nlink > 1 ? `${st.dev}:${st.ino}` : undefined;
    const seen = linkKey === undefined ? undefined : links?.get(linkKey);
    if (
      seen !== undefined &&
      seen.size === st.size &&
      seen.mtimeMs === st.mtimeMs &&
      seen.ctimeMs === st.ctimeMs &&
      (!withMd5 || seen.md5 !== undefined)
    ) {
      return finishFile(
        path,
        resolvedPath,
        host,
        st,
        seen.sha256,
        withMd5 ? seen.md5 : undefined,
        capabilities,
      );
    }
    const buf = (chunk ??= Buffer.allocUnsafe(HASH_CHUNK_SIZE));
    const size = st.size;
    let total = 0;
    let sha256: string;
    const md5 = withMd5 ? createHash('md5') : undefined;
    try {
      // Stop at the size fstat gave: a file that grew is caught by the second fstat below.
      if (size <= buf.length) {
        // The common case, one read and a one-shot hash.
        while (total < size) {
          const n = fs.readSync(fd, buf, total, size - total, null);
          if (n === 0) break; // shrank: caught below
          total += n;
        }
        sha256 = hashOnce('sha256', buf.subarray(0, total));
        md5?.update(buf.subarray(0, total));
      } else {
        const hash = createHash('sha256');
        while (total < size) {
          const n = fs.readSync(fd, buf, 0, buf.length, null);
          if (n === 0) break;
          hash.update(n === buf.length ? buf : buf.subarray(0, n));
          md5?.update(n === buf.length ? buf : buf.subarray(0, n));
          total += n;
        }
        sha256 = hash.digest('hex');
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
    const md5Hex = md5?.digest('hex');
    if (
      linkKey !== undefined &&
      links !== undefined &&
      (links.size < HARD_LINK_MEMO_LIMIT || seen !== undefined)
    ) {
      links.set(linkKey, { size, mtimeMs: after.mtimeMs, ctimeMs: after.ctimeMs, sha256, md5: md5Hex });
    }
    return finishFile(path, resolvedPath, host, after, sha256, md5Hex, capabilities);
  } catch (e) {
    return failure(path, 'stat', e);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The `ok` observation of an open regular file whose content was hashed (`st`: its fstat). The
 * fields of okEntry() plus the digests, written out as one literal for the reason given there:
 * this runs for every file, and a spread would cost more than the lstat.
 */
function finishFile(
  path: string,
  resolvedPath: string,
  host: string,
  st: fs.Stats,
  sha256: string,
  md5: string | undefined,
  capabilities: CapabilityMode,
): FileObservation {
  const o: FileObservation = {
    status: 'ok',
    path,
    resolvedPath,
    type: 'file',
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    mtimeMs: st.mtimeMs,
    nlink: st.nlink,
    dev: st.dev,
    ino: st.ino,
    sha256,
  };
  if (md5 !== undefined) o.md5 = md5;
  if (capabilities === 'all' || (capabilities === 'executable' && (st.mode & 0o111) !== 0)) {
    const cap = readCapability(host, st);
    if (cap === 'changed')
      return { status: 'changed', path, detail: `${path} was replaced while it was read` };
    if (cap instanceof Error) return failure(path, `read ${CAPABILITY_XATTR} of`, cap);
    if (cap !== undefined) o.capability = cap;
  }
  return o;
}

/**
 * The `security.capability` of the file at `host`, whose fstat after hashing was `st`; undefined
 * when it has none, 'changed' when the path no longer names that inode.
 *
 * @napi-rs/xattr (prebuilt N-API binaries: nothing to compile on a checked host) reads by path
 * with lgetxattr(2), so the final component is never followed (rule 3), and cannot read through
 * an open descriptor (/proc/self/fd/N is itself a symlink to lgetxattr). So the path is checked to
 * name the inode that was hashed twice: lstat before the open (hashRegularFile) and lstat after
 * the xattr read here. It answers null for every error, not only ENODATA/ENOTSUP: a file that
 * vanished in between is caught by the second lstat.
 */
function readCapability(host: string, st: fs.Stats): FileCapability | 'changed' | Error | undefined {
  let value: Buffer | null;
  try {
    value = getAttributeSync(host, CAPABILITY_XATTR);
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
  let now: fs.Stats | undefined;
  try {
    now = fs.lstatSync(host, { throwIfNoEntry: false });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
  if (now === undefined || now.ino !== st.ino || now.dev !== st.dev) return 'changed';
  return value === null ? undefined : decodeCapability(value);
}
