/**
 * What every package-database reader (dpkg, rpm, apk) produces: the packages that are
 * really installed under a root and the paths each one owns, with the distribution's own digest of
 * each file where the database records one. These digests are *never* the reference a client
 * compares against (a compromised machine can edit its own database); they are recorded next to
 * our hashes in manifests, and a disagreement is reported.
 */

export type DistroDigestAlgorithm = 'md5' | 'sha1' | 'sha256' | 'sha512';

export interface DistroDigest {
  algorithm: DistroDigestAlgorithm;
  /** Lower-case hex. */
  hex: string;
}

export interface InstalledFile {
  /** Absolute path as the package database names it (before diversions), e.g. `/usr/bin/ls`. */
  path: string;
  /** The database's digest of the file's content, when it has one (dpkg md5sums, rpm digests…). */
  digest?: DistroDigest;
  /** True when the package marks the path as a configuration file. */
  conffile?: boolean;
  // What rpm and apk databases record per file besides a digest (dpkg records none of it):
  /** st_mode as the database records it: file type and permission bits (rpm), or bits only (apk). */
  mode?: number;
  /** Owner and group as the database records them: names (rpm), numeric ids in decimal (apk). */
  owner?: string;
  group?: string;
  /** Symlink target (rpm). */
  linkTarget?: string;
  /** Size in bytes (rpm). */
  size?: number;
  /** rpm `%ghost`: the package owns the path but does not ship it (made at run time, or never). */
  ghost?: boolean;
  /**
   * The database says the package's file is not on disk by design (rpm: excluded documentation
   * or language, the other architecture's copy of a multilib file, a net-shared path).
   */
  notInstalled?: boolean;
}

export interface InstalledPackage {
  name: string;
  version: string;
  /** The package's own architecture (`amd64`, `i386`, `all`, `x86_64`, `noarch`…). */
  architecture: string;
  /** Source package, when the database records one; otherwise the binary name and version. */
  source: { name: string; version: string };
  /** The database's status words (dpkg: `install ok installed`). Readers return installed ones only. */
  status: string;
  /** Every path the package owns, as listed by the database, in the database's order. */
  files: InstalledFile[];
}

/** dpkg-divert(1): a path another package's file was moved to. */
export interface Diversion {
  /** The path as packages ship it. */
  from: string;
  /** Where the diverted file really lives. */
  to: string;
  /** The package that made the diversion (`:` for a local diversion by the administrator). */
  by: string;
}
