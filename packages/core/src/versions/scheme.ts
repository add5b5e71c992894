/**
 * A version scheme knows how one package manager orders and spells version strings. Each scheme
 * lives in its own file (`dpkg.ts`, `rpm.ts`, `apk.ts`) and is registered in `registry.ts`.
 */

/** Every scheme sysattest knows about, implemented or not. */
export const VERSION_SCHEME_NAMES = ['dpkg', 'rpm', 'apk'] as const;

export type VersionSchemeName = (typeof VERSION_SCHEME_NAMES)[number];

export interface VersionScheme {
  readonly name: VersionSchemeName;
  /**
   * Orders two version strings exactly as the package manager does: a negative number when `a` is
   * older than `b`, 0 when the package manager considers them equal (which does not mean the strings
   * are equal: dpkg says `1.0` = `0:1.0-0`), a positive number when `a` is newer.
   * Throws `VersionError` (`INVALID_VERSION`) for a string the package manager itself refuses to
   * compare.
   */
  compare(a: string, b: string): number;
  /**
   * Throws `VersionError` (`INVALID_VERSION`), whose message says what is wrong, unless `v` is a
   * well-formed version of this scheme. Stricter than `compare`: it also refuses what the package
   * manager only warns about.
   */
  validate(v: string): void;
  /** `validate` without the exception. */
  isValid(v: string): boolean;
}

export function isVersionSchemeName(name: unknown): name is VersionSchemeName {
  return typeof name === 'string' && (VERSION_SCHEME_NAMES as readonly string[]).includes(name);
}
