import {
  ARCH_INDEPENDENT,
  readInstalledDatabase,
  type Diversion,
  type InstalledDatabase,
  type InstalledPackage,
  type PackageManagerName,
} from '@sysattest/core';
import type { LocalFileState } from './compare.js';

/**
 * The root's own package database as verification sees it, whichever family it is (dpkg, rpm,
 * apk): the installed packages in core's common model, plus what only one family has, each as
 * a neutral question so verify-machine.ts needs no `if dpkg`:
 *
 * | question                 | dpkg                                   | rpm                                 | apk  |
 * |--------------------------|----------------------------------------|-------------------------------------|------|
 * | diversions (judged in    | dpkg-divert (local and packages')      | none                                | none |
 * | local-claims.ts)         |                                        |                                     |      |
 * | local state of a path    | none                                   | %ghost, not installed (nodocs, …)   | none |
 * | mode/owner overrides     | `var/lib/dpkg/statoverride`            | none                                | none |
 * | foreign repository       | apt lists' Origin (origin.ts)          | not told (no record in rpmdb)       | not told |
 * | also owned (unowned)     | half-installed packages                | –                                   | –    |
 * | alternatives links       | `var/lib/dpkg/alternatives`            | `var/lib/alternatives` (same format)| –    |
 *
 * The local database only says WHAT is installed (name, version, architecture) and the few
 * per-path facts above; what a file must contain always comes from the signed manifest. The local
 * rpm state excuses only a MISSING file the local database left out by design; a path that exists
 * where the manifest says absent is excused by the manifest's signed `reason: 'ghost'` alone, never
 * by a local %ghost (see compare.ts).
 */
export interface LocalDatabase {
  manager: PackageManagerName;
  packages: readonly InstalledPackage[];
  /** What the reader found odd but not fatal, as report notes. */
  notes: string[];
  /**
   * The machine's dpkg diversions, as its database lists them: claims, honoured only when a
   * verified manifest declares them or the operator accepts them (local-claims.ts).
   */
  diversions: readonly Diversion[];
  /**
   * The local state of a package's path (rpm ghost / not installed): compare.ts excuses a missing
   * not-installed file with it, and names a local %ghost in a finding's detail; nothing else.
   */
  localState(pkg: InstalledPackage): ((path: string) => LocalFileState | undefined) | undefined;
  /** Whether `var/lib/dpkg/statoverride` applies. */
  statOverrides: boolean;
  /** Whether apt's lists can tell a foreign repository (origin.ts). */
  aptOrigins: boolean;
  /** Paths owned besides the installed packages' files (for the unowned scan). */
  alsoOwned(): string[];
  /** The directory of the alternatives system's state files, when the family has one. */
  alternativesDir: string | undefined;
}

/** `all` (dpkg) and `noarch` (rpm, apk): packages asked about on the native platform. */
export function isArchIndependent(arch: string): boolean {
  return ARCH_INDEPENDENT.has(arch);
}

/** Reads the root's package database (never the host's): see readInstalledDatabase. */
export async function readLocalDatabase(root: string): Promise<LocalDatabase> {
  // The database's own digests (dpkg md5sums) are never a reference: not read (rpm and apk keep
  // them in the same records, so there is nothing to save there).
  return localDatabaseOf(await readInstalledDatabase(root, { digests: false }));
}

export function localDatabaseOf(db: InstalledDatabase): LocalDatabase {
  const base = {
    manager: db.manager,
    packages: db.packages,
    diversions: [],
    localState: () => undefined,
    statOverrides: false,
    aptOrigins: false,
    alsoOwned: () => [],
    alternativesDir: undefined,
  };
  switch (db.manager) {
    case 'dpkg': {
      const d = db.database;
      return {
        ...base,
        notes: d.notes.map((n) => `${n.package ? `${n.package}: ` : ''}${n.message}`),
        diversions: d.diversions,
        statOverrides: true,
        aptOrigins: true,
        alsoOwned: () => d.partiallyInstalled.flatMap((p) => p.files.map((f) => f.path)),
        alternativesDir: '/var/lib/dpkg/alternatives',
      };
    }
    case 'rpm': {
      const d = db.database;
      return {
        ...base,
        notes: d.notes.map((n) => `${n.package ? `${n.package}: ` : ''}${n.message}`),
        localState: (pkg) => {
          const map = new Map<string, LocalFileState>();
          for (const f of pkg.files) {
            if (f.ghost === true) map.set(f.path, 'ghost');
            else if (f.notInstalled === true) map.set(f.path, 'not-installed');
          }
          return map.size === 0 ? undefined : (p) => map.get(p);
        },
        alternativesDir: '/var/lib/alternatives',
      };
    }
    case 'apk':
      return { ...base, notes: [] };
  }
}
