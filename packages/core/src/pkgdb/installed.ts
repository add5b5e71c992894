/**
 * Which package database a root has, and its installed packages in the common model, whichever
 * family it is: dpkg (`/var/lib/dpkg/status`), rpm (`rpmdb.sqlite` or `Packages`) or apk
 * (`lib/apk/db/installed`). The first found in that order is read; each reader keeps its own API
 * for what only its family has (dpkg diversions, rpm header numbers, apk origins).
 */
import { PackageDatabaseError } from '../errors.js';
import { RootDir } from '../fs/in-root.js';
import { findApkDatabase, readApkDatabase, type ApkDatabase } from './apk/database.js';
import { DEFAULT_DPKG_ADMIN_DIR, readDpkgDatabase, type DpkgDatabase } from './dpkg/database.js';
import type { InstalledPackage } from './model.js';
import { findRpmDatabase, readRpmDatabase, type RpmDatabase } from './rpm/database.js';

export type PackageManagerName = 'dpkg' | 'rpm' | 'apk';

export type InstalledDatabase =
  | { manager: 'dpkg'; packages: InstalledPackage[]; database: DpkgDatabase }
  | { manager: 'rpm'; packages: InstalledPackage[]; database: RpmDatabase }
  | { manager: 'apk'; packages: InstalledPackage[]; database: ApkDatabase };

/** The package manager whose database the root holds (first of dpkg, rpm, apk), or undefined. */
export function detectPackageManager(root: string): PackageManagerName | undefined {
  const rootDir = RootDir.open(root);
  if (rootDir.exists(`${DEFAULT_DPKG_ADMIN_DIR}/status`)) return 'dpkg';
  if (findRpmDatabase(rootDir) !== undefined) return 'rpm';
  if (findApkDatabase(rootDir) !== undefined) return 'apk';
  return undefined;
}

/**
 * Reads the root's package database, whichever it is. DATABASE_NOT_FOUND when it has none of
 * the three; otherwise whatever that reader throws. `digests: false` skips dpkg's md5sums (rpm
 * and apk keep their digests in the package records, which are read whole either way).
 */
export async function readInstalledDatabase(
  root: string,
  options: { digests?: boolean } = {},
): Promise<InstalledDatabase> {
  switch (detectPackageManager(root)) {
    case 'dpkg': {
      const database = await readDpkgDatabase(root, { digests: options.digests !== false });
      return { manager: 'dpkg', packages: database.packages, database };
    }
    case 'rpm': {
      const database = await readRpmDatabase(root);
      return { manager: 'rpm', packages: database.packages, database };
    }
    case 'apk': {
      const database = await readApkDatabase(root);
      return { manager: 'apk', packages: database.packages, database };
    }
    default:
      throw new PackageDatabaseError(
        'DATABASE_NOT_FOUND',
        'no package database found (looked for dpkg var/lib/dpkg/status, rpm rpmdb.sqlite or Packages ' +
          'in var/lib/rpm or usr/lib/sysimage/rpm, apk lib/apk/db/installed)',
        { file: RootDir.open(root).hostPath },
      );
  }
}
