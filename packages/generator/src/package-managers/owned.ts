/**
 * After a dnf or apk install in a container, what each requested package owns, read from the
 * host through the container's mounted root filesystem with the core readers (no command runs in
 * the image, so an image without bash, or without rpm's query tools, is fine): every path with
 * the distribution's own digest (rpm header file digests, apk `Z:` checksums), mode, owner,
 * group and link target as its database records them, for the manifest builder to put next to
 * our hashes. The flags the manifest signs come from this, the fresh container's own database
 * (the trusted side, never the verified machine's): rpm %config and %ghost and the files rpm left
 * out by design (`conffile`, `ghost`, `notInstalled`), and for apk the files under the image's
 * protected paths (apk's built-in `+etc`, `@etc/init.d`, `!etc/apk` and the image's own
 * `etc/apk/protected_paths.d/*.list`), which the core reader marks `conffile`.
 */
import { readApkDatabase, readRpmDatabase, type InstalledPackage } from '@sysattest/core';

export interface RequestedPackage {
  name: string;
  version: string;
  /** rpm: the package's architecture (`x86_64`, `noarch`); apk: ignored (one arch per root). */
  arch?: string;
}

export class NotInstalledError extends Error {}

/**
 * The installed record of each requested package, in request order. Throws NotInstalledError
 * naming the package when the database under `root` does not hold exactly that version (the
 * package manager installed something else, or nothing), and the reader's PackageDatabaseError
 * when the database is missing or damaged.
 */
export async function ownedFiles(
  root: string,
  family: 'rpm' | 'apk',
  requested: readonly RequestedPackage[],
): Promise<InstalledPackage[]> {
  const installed: InstalledPackage[] =
    family === 'rpm' ? (await readRpmDatabase(root)).packages : (await readApkDatabase(root)).packages;
  return requested.map((r) => {
    const same = installed.filter((p) => p.name === r.name);
    const match = same.find(
      (p) =>
        p.version === r.version && (family === 'apk' || r.arch === undefined || p.architecture === r.arch),
    );
    if (match === undefined) {
      const have = same.map((p) => `${p.version}${family === 'rpm' ? `.${p.architecture}` : ''}`).join(', ');
      throw new NotInstalledError(
        `${r.name} ${r.version}${r.arch && family === 'rpm' ? `.${r.arch}` : ''} is not installed in ${root}` +
          (have === '' ? ' (no version of it is)' : ` (installed: ${have})`),
      );
    }
    return match;
  });
}
