/**
 * apk images (Alpine): the commands the generator runs in a container, as argument vectors (an
 * Alpine image has no bash; these need no shell at all), and the catalog parser. Owned files and
 * apk's `Z:` checksums come from the container's `lib/apk/db/installed`, read from the host
 * through the mounted filesystem with @sysattest/core's readApkDatabase.
 */
import { apkVersionScheme, parseApkInstalled } from '@sysattest/core';

export interface ApkPackageSpec {
  name: string;
  version: string;
}

const NAME = /^[A-Za-z0-9+_.@][A-Za-z0-9+_.@-]*$/;

/** `name=version`, apk's exact-version constraint; throws for unsafe input. */
export function apkConstraint(p: ApkPackageSpec): string {
  if (!NAME.test(p.name)) throw new Error(`invalid apk package name ${JSON.stringify(p.name)}`);
  apkVersionScheme.validate(p.version);
  return `${p.name}=${p.version}`;
}

/** Installs exact versions without keeping the index cache in the image. */
export function apkAddArgv(packages: readonly ApkPackageSpec[]): string[] {
  if (packages.length === 0) throw new Error('nothing to install');
  return ['apk', 'add', '--no-cache', '--', ...packages.map(apkConstraint)];
}

/** Refreshes the repository indexes (signature-checked by apk) into /var/cache/apk. */
export function apkUpdateArgv(): string[] {
  return ['apk', 'update'];
}

export interface ApkCatalogEntry {
  name: string;
  version: string;
  arch: string;
  origin: string | undefined;
}

/**
 * The catalog from an APKINDEX's text (the `APKINDEX` member of a repository's
 * `APKINDEX.tar.gz`): the same one-letter-field records as the installed database (P, V, A, o…),
 * so the core parser reads it; records without files are simply packages.
 */
export function parseApkIndex(text: string, file: string): ApkCatalogEntry[] {
  return parseApkInstalled(text, file).map((p) => ({
    name: p.name,
    version: p.version,
    arch: p.architecture,
    origin: p.origin,
  }));
}
