import * as fs from 'node:fs';
import { PathError } from '../errors.js';

/**
 * Paths inside a root directory (a mounted container, a disk image, a `--root` tree), resolved the
 * way the kernel would resolve them if that root were `/` — the trust model's rule 3:
 *  - an absolute symlink target starts again at the root, never at the host's `/`;
 *  - `..` at the root stays at the root (as in chroot(2));
 *  - at most MAX_SYMLINKS symlinks per resolution (Linux: 40, see path_resolution(7));
 *  - the final component is not followed unless asked: a package's `/usr/bin/evil -> /etc/shadow`
 *    is reported as a symlink, never hashed as the target.
 *
 * Resolution is done with lstat/readlink on every component, so nothing outside the root is ever
 * touched. It cannot close the window between resolving and opening (Node has no openat2 with
 * RESOLVE_IN_ROOT); callers re-check what they open with fstat and O_NOFOLLOW.
 */

export const MAX_SYMLINKS = 40;
/** PATH_MAX on Linux; a longer path is refused rather than resolved. */
export const MAX_PATH_LENGTH = 4096;

export interface ResolveOptions {
  /** Follow a symlink in the final component too (for reading files like etc/os-release). */
  followFinal?: boolean;
}

/**
 * Splits an in-root path into components. The path is taken as absolute inside the root whether or
 * not it starts with `/`. NUL bytes and over-long paths are refused.
 */
export function splitRootPath(p: string): string[] {
  // Cheap check first; a UTF-16 length over a third of the cap may still be over it in UTF-8 bytes.
  if (
    p.length > MAX_PATH_LENGTH ||
    (p.length * 3 > MAX_PATH_LENGTH && Buffer.byteLength(p) > MAX_PATH_LENGTH)
  ) {
    throw new PathError('INVALID_PATH', `path is longer than ${MAX_PATH_LENGTH} bytes`);
  }
  if (p.includes('\0')) throw new PathError('INVALID_PATH', `path contains a NUL byte: ${JSON.stringify(p)}`);
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/** How the last component of a walk is treated. */
type FinalMode = 'nofollow' | 'follow' | 'directory';

/** A resolved directory: canonical components and the host path they name. */
interface ResolvedDirectory {
  components: string[];
  /** Host path plus `/`: a name appended gives the host path of an entry. */
  hostPrefix: string;
  /** Canonical in-root path plus `/` (just `/` for the root). */
  canonicalPrefix: string;
}

/** Paths resolveFinal() leaves to the general walk: NUL, `//`, `.` or `..` components. */
const IRREGULAR_PATH = /\0|\/\/|(?:^|\/)\.\.?(?:\/|$)/;

/**
 * A root directory and a resolver for paths inside it. Resolved directories are cached (a package
 * database names ~95,000 paths in a few thousand directories), so build one per root and per
 * pass; drop it when the tree may have changed.
 */
export class RootDir {
  /** Host path of the root, with its own symlinks resolved. */
  readonly hostPath: string;
  /** `hostPath` without a trailing slash (empty for the host's `/`), to append `/component` to. */
  private readonly prefix: string;
  private readonly dirCache = new Map<string, ResolvedDirectory>();
  /** The same entries, keyed by the directory part of a path as it was written. */
  private readonly rawDirCache = new Map<string, ResolvedDirectory>();

  private constructor(hostPath: string) {
    this.hostPath = hostPath;
    this.prefix = hostPath === '/' ? '' : hostPath;
  }

  /** Opens a root; it must be an existing directory on the host. */
  static open(root: string): RootDir {
    let real: string;
    try {
      real = fs.realpathSync(root);
    } catch (e) {
      throw new PathError('NOT_FOUND', `root directory ${root} does not exist`, { cause: e });
    }
    if (!fs.statSync(real).isDirectory()) {
      throw new PathError('NOT_A_DIRECTORY', `root ${root} is not a directory`);
    }
    return new RootDir(real);
  }

  /**
   * Resolves `p` (absolute inside the root) to a host path under `hostPath`. Intermediate
   * components must exist and be directories (or symlinks to directories inside the root); the
   * final component need not exist.
   */
  resolve(p: string, options: ResolveOptions = {}): string {
    return this.toHost(this.resolveComponents(p, options));
  }

  /** As resolve(), but returns the canonical in-root path (`/usr/bin/ls`), not the host path. */
  canonical(p: string, options: ResolveOptions = {}): string {
    return '/' + this.resolveComponents(p, options).join('/');
  }

  /**
   * resolve() and canonical() in one step, without following the final component: what a file
   * inspection needs for every path, so it is the fast path (one cache lookup per call). Throws
   * like resolve().
   */
  resolveFinal(p: string): { host: string; canonical: string } {
    // Fast path for the usual `/usr/bin/ls`: no `.`, `..` or empty components, no NUL, short
    // enough in any encoding. The directory part, as written, keys a second cache.
    const slash = p.lastIndexOf('/');
    if (slash >= 0 && slash < p.length - 1 && p.length * 3 <= MAX_PATH_LENGTH && !IRREGULAR_PATH.test(p)) {
      const dirPart = p.slice(0, slash);
      let dir = this.rawDirCache.get(dirPart);
      if (dir === undefined) {
        dir = this.directory(splitRootPath(dirPart));
        this.rawDirCache.set(dirPart, dir);
      }
      const name = p.slice(slash + 1);
      return { host: dir.hostPrefix + name, canonical: dir.canonicalPrefix + name };
    }
    const components = splitRootPath(p);
    const last = components.pop();
    if (last === undefined) return { host: this.hostPath, canonical: '/' };
    if (last === '..' || components.includes('..')) {
      components.push(last);
      const resolved = this.walk([], components, 'nofollow');
      return { host: this.toHost(resolved), canonical: '/' + resolved.join('/') };
    }
    const dir = this.directory(components);
    return { host: dir.hostPrefix + last, canonical: dir.canonicalPrefix + last };
  }

  /** The host path of a canonical in-root component list. */
  private toHost(components: readonly string[]): string {
    return components.length === 0 ? this.hostPath : `${this.prefix}/${components.join('/')}`;
  }

  private resolveComponents(p: string, { followFinal = false }: ResolveOptions): string[] {
    const components = splitRootPath(p);
    if (components.length === 0) return [];
    if (components.includes('..')) return this.walk([], components, followFinal ? 'follow' : 'nofollow');
    // Intermediate components are always followed, so resolving a/b/c is resolving the directory
    // a/b (cached) and then c from there.
    const last = components.pop() as string;
    const parent = this.directory(components);
    return this.walk(parent.components.slice(), [last], followFinal ? 'follow' : 'nofollow');
  }

  /**
   * Walks `pending` components starting from the canonical component list `resolved`.
   * `final`: 'nofollow' leaves a symlink in the last component as it is (and lets it be missing);
   * 'follow' follows it (and lets the result be missing); 'directory' follows it and requires an
   * existing directory.
   */
  private walk(resolved: string[], pending: readonly string[], final: FinalMode): string[] {
    let symlinks = 0;
    const queue = pending.slice();
    while (queue.length > 0) {
      const component = queue.shift() as string;
      if (component === '..') {
        resolved.pop(); // clamped at the root: popping an empty list is a no-op
        continue;
      }
      const isFinal = queue.length === 0;
      if (isFinal && final === 'nofollow') {
        resolved.push(component);
        break;
      }
      const host = `${this.prefix}/${resolved.length === 0 ? '' : resolved.join('/') + '/'}${component}`;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(host);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') {
          if (isFinal && final === 'follow') {
            resolved.push(component);
            break;
          }
          throw new PathError(
            'NOT_FOUND',
            `/${[...resolved, component].join('/')} does not exist in ${this.hostPath}`,
          );
        }
        if (code === 'ENOTDIR') {
          throw new PathError(
            'NOT_A_DIRECTORY',
            `/${resolved.join('/')} is not a directory in ${this.hostPath}`,
          );
        }
        if (code === 'ENAMETOOLONG') {
          throw new PathError(
            'INVALID_PATH',
            `a component of /${[...resolved, component].join('/')} is too long`,
          );
        }
        throw new PathError(
          'IO_ERROR',
          `cannot stat /${[...resolved, component].join('/')}: ${code ?? String(e)}`,
          {
            cause: e,
          },
        );
      }
      if (st.isSymbolicLink()) {
        if (++symlinks > MAX_SYMLINKS) {
          throw new PathError(
            'SYMLINK_LOOP',
            `too many levels of symbolic links resolving ${JSON.stringify(pending.join('/'))}`,
          );
        }
        const target = fs.readlinkSync(host);
        // Linux refuses to create an empty symlink; a crafted image may still hold one: ENOENT.
        if (target === '') {
          throw new PathError(
            'NOT_FOUND',
            `/${[...resolved, component].join('/')} is an empty symlink in ${this.hostPath}`,
          );
        }
        if (target.startsWith('/')) resolved.length = 0; // absolute targets restart at the root
        queue.unshift(...splitRootPath(target));
        continue;
      }
      if ((!isFinal || final === 'directory') && !st.isDirectory()) {
        throw new PathError(
          'NOT_A_DIRECTORY',
          `/${[...resolved, component].join('/')} is not a directory in ${this.hostPath}`,
        );
      }
      resolved.push(component);
    }
    return resolved;
  }

  /**
   * Resolves the directory part of many paths once: fills the cache so that resolve() of every
   * file in a directory costs one lstat at most. Safe to skip; it only makes resolution faster.
   * Every component must exist and be a directory (after following symlinks inside the root):
   * NOT_FOUND, NOT_A_DIRECTORY and SYMLINK_LOOP otherwise. Returns the canonical components.
   */
  resolveDirectory(dir: string): string[] {
    return this.directory(splitRootPath(dir)).components.slice();
  }

  /** Resolves (through the cache) a directory given as split components. */
  private directory(components: readonly string[]): ResolvedDirectory {
    const key = components.join('/');
    const hit = this.dirCache.get(key);
    if (hit !== undefined) return hit;
    // From the parent directory (itself cached): a new directory costs one lstat, not one per
    // component of its path. With `..` anywhere the whole path is walked (and not cached).
    const plain = components.length > 1 && !components.includes('..');
    const resolved = plain
      ? this.walk(
          this.directory(components.slice(0, -1)).components.slice(),
          components.slice(-1),
          'directory',
        )
      : this.walk([], components, 'directory');
    const entry: ResolvedDirectory = {
      components: resolved,
      hostPrefix: resolved.length === 0 ? `${this.prefix}/` : `${this.toHost(resolved)}/`,
      canonicalPrefix: resolved.length === 0 ? '/' : `/${resolved.join('/')}/`,
    };
    if (!components.includes('..')) this.dirCache.set(key, entry);
    return entry;
  }

  /**
   * Reads a small regular file inside the root (following symlinks inside the root, as for
   * `etc/os-release -> ../usr/lib/os-release`). Refuses anything that is not a regular file and
   * anything bigger than `maxBytes`, without opening it (a FIFO or a device is never opened).
   */
  readFile(p: string, maxBytes: number): Buffer {
    const host = this.resolve(p, { followFinal: true });
    let fd: number;
    try {
      if (!fs.lstatSync(host).isFile()) {
        throw new PathError('NOT_A_REGULAR_FILE', `${p} in ${this.hostPath} is not a regular file`);
      }
      fd = fs.openSync(host, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch (e) {
      if (e instanceof PathError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new PathError('NOT_FOUND', `${p} does not exist in ${this.hostPath}`);
      throw new PathError('IO_ERROR', `cannot open ${p} in ${this.hostPath}: ${code ?? String(e)}`, {
        cause: e,
      });
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile())
        throw new PathError('NOT_A_REGULAR_FILE', `${p} in ${this.hostPath} is not a regular file`);
      if (st.size > maxBytes) {
        throw new PathError(
          'TOO_LARGE',
          `${p} in ${this.hostPath} is ${st.size} bytes, more than the ${maxBytes} allowed`,
        );
      }
      // Read up to maxBytes + 1 so a file that grew after fstat is still caught.
      const buf = Buffer.allocUnsafe(Math.min(maxBytes + 1, Math.max(st.size + 1, 1)));
      let length = 0;
      for (;;) {
        if (length === buf.length) break;
        let n: number;
        try {
          n = fs.readSync(fd, buf, length, buf.length - length, null);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          throw new PathError('IO_ERROR', `cannot read ${p} in ${this.hostPath}: ${code ?? String(e)}`, {
            cause: e,
          });
        }
        if (n === 0) break;
        length += n;
      }
      if (length > maxBytes) {
        throw new PathError(
          'TOO_LARGE',
          `${p} in ${this.hostPath} is larger than the ${maxBytes} bytes allowed`,
        );
      }
      return buf.subarray(0, length);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** True when `p` exists inside the root (following symlinks inside the root). */
  exists(p: string): boolean {
    try {
      // resolve() has followed every symlink inside the root; lstat so a symlink swapped in since
      // is not followed on the host.
      fs.lstatSync(this.resolve(p, { followFinal: true }));
      return true;
    } catch {
      return false;
    }
  }
}
