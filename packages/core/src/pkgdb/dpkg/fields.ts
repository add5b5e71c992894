import { MAX_PATH_LENGTH } from '../../fs/in-root.js';

/**
 * Syntax checks for the values a dpkg database holds. The database is untrusted input (a
 * compromised machine, a hostile image), so every value that becomes a key, a path or a version is
 * checked before use.
 */

/** Debian Policy 5.6.1: lower-case letters, digits, `+ - .`; at least two characters. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** dpkg-architecture(1) names (`amd64`, `musl-linux-arm64`, `all`). */
const ARCH_NAME = /^[a-z0-9][a-z0-9-]*$/;
const MAX_NAME_LENGTH = 256;
export { MAX_PATH_LENGTH };
/** A `/` followed by an empty, `.` or `..` component. */
const BAD_COMPONENT = /\/(\.{0,2})(?:\/|$)/;

export function isPackageName(s: string): boolean {
  return s.length <= MAX_NAME_LENGTH && PACKAGE_NAME.test(s);
}

export function isArchName(s: string): boolean {
  return s.length <= MAX_NAME_LENGTH && ARCH_NAME.test(s);
}

/** A name, cut short and quoted, for messages about hostile input. */
export function show(s: string): string {
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}

/**
 * Why `p` is not an acceptable absolute path from the database, or undefined when it is: it must
 * start with `/`, hold no NUL, newline or U+FFFD (what bytes that are not UTF-8 decode to: such a
 * name could not be opened again by its decoded string), and have no empty, `.` or `..`
 * component (dpkg writes normalised paths, so any of these means a damaged or forged file).
 */
export function pathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'is not absolute';
  if (
    p.length > MAX_PATH_LENGTH ||
    (p.length * 3 > MAX_PATH_LENGTH && Buffer.byteLength(p) > MAX_PATH_LENGTH)
  ) {
    return `is longer than ${MAX_PATH_LENGTH} bytes`;
  }
  if (p.includes('\0')) return 'contains a NUL byte';
  if (p.includes('\n')) return 'contains a newline';
  if (p.includes('\uFFFD')) return 'is not valid UTF-8';
  if (p === '/') return undefined;
  const m = BAD_COMPONENT.exec(p);
  if (m !== null) {
    return m[1] === ''
      ? 'has an empty component (// or a trailing /)'
      : `has a ${JSON.stringify(m[1])} component`;
  }
  return undefined;
}
