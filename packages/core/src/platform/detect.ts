import * as fs from 'node:fs';
import { PathError, PlatformError } from '../errors.js';
import { RootDir } from '../fs/in-root.js';
import { findApkDatabase, readApkDatabase } from '../pkgdb/apk/database.js';
import { DEFAULT_DPKG_ADMIN_DIR, readDpkgArchitectures } from '../pkgdb/dpkg/index.js';
import { findRpmDatabase, readRpmDatabase } from '../pkgdb/rpm/database.js';
import { OS_RELEASE_MAX_BYTES, parseOsRelease } from './os-release.js';
import { isValidPlatformComponent, type Platform } from './platform.js';
import { distroFromOsRelease, parseAptSources, releaseFamily, releaseFromOsRelease } from './release.js';

export interface DetectPlatformsOptions {
  /**
   * The architecture to use when the root has no package database that records one (today:
   * an rpm database with no architecture-specific package). Ignored when the database names the
   * architecture: the database wins.
   */
  archHint?: string;
  /** dpkg's admin directory inside the root. */
  dpkgAdminDir?: string;
}

export interface DetectedPlatforms {
  /** The root's own platform: os-release ID and release, the package manager's native arch. */
  primary: Platform;
  /** Same distro and release, each foreign architecture the package manager accepts. */
  foreign: Platform[];
  /** The root's os-release, parsed. */
  osRelease: Record<string, string>;
  /** Where the architecture came from: a package database (`dpkg`, `rpm`, `apk`) or the caller's `hint`. */
  archSource: 'dpkg' | 'rpm' | 'apk' | 'hint';
}

/** The architectures one package manager records, or undefined when the root does not use it. */
interface Architectures {
  source: DetectedPlatforms['archSource'];
  native: string;
  foreign: string[];
}

type ArchDetector = (rootDir: RootDir, options: DetectPlatformsOptions) => Promise<Architectures | undefined>;

/** dpkg: the installed `dpkg` package is always of the native architecture; `arch` lists the rest. */
const dpkgArchitectures: ArchDetector = async (rootDir, options) => {
  const adminDir = options.dpkgAdminDir ?? DEFAULT_DPKG_ADMIN_DIR;
  if (!rootDir.exists(`${adminDir}/status`)) return undefined;
  const { nativeArch, foreignArchs } = await readDpkgArchitectures(rootDir.hostPath, { adminDir });
  return { source: 'dpkg', native: nativeArch, foreign: foreignArchs };
};

/**
 * rpm: the architecture of the installed `rpm` package (always native), else the commonest
 * architecture other than `noarch` (rpm --root has no other record of it). rpm names it
 * `x86_64`/`aarch64`. Multilib packages (`i686` beside `x86_64`) are not platforms of their own.
 */
const rpmArchitectures: ArchDetector = async (rootDir) => {
  if (findRpmDatabase(rootDir) === undefined) return undefined;
  const native = (await readRpmDatabase(rootDir.hostPath)).nativeArch();
  return native === undefined ? undefined : { source: 'rpm', native, foreign: [] };
};

/** apk: `etc/apk/arch` (what apk itself reads), else the commonest package architecture. */
const apkArchitectures: ArchDetector = async (rootDir) => {
  if (findApkDatabase(rootDir) === undefined) return undefined;
  const native = (await readApkDatabase(rootDir.hostPath)).nativeArch();
  return native === undefined ? undefined : { source: 'apk', native, foreign: [] };
};

/**
 * One detector per package-manager family, tried in order; the first that finds its database
 * (and an architecture in it) decides.
 */
const ARCH_DETECTORS: readonly ArchDetector[] = [dpkgArchitectures, rpmArchitectures, apkArchitectures];

const DEBIAN_VERSION_MAX_BYTES = 4096;
const APT_SOURCES_MAX_BYTES = 1024 * 1024;
const APT_SOURCES_MAX_FILES = 256;

/** Reads a small text file inside the root; undefined when it is not there. */
function readOptional(rootDir: RootDir, p: string, maxBytes: number): string | undefined {
  try {
    return rootDir.readFile(p, maxBytes).toString('utf8');
  } catch (e) {
    if (e instanceof PathError && (e.code === 'NOT_FOUND' || e.code === 'NOT_A_DIRECTORY')) return undefined;
    throw e;
  }
}

/**
 * os-release(5): etc/os-release, and only when it is missing usr/lib/os-release. Both are read
 * inside the root, following symlinks inside the root (etc/os-release is usually one).
 */
function readOsRelease(rootDir: RootDir): Record<string, string> {
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    let text: string | undefined;
    try {
      text = readOptional(rootDir, p, OS_RELEASE_MAX_BYTES);
    } catch (e) {
      throw new PlatformError(
        'PLATFORM_NOT_DETECTED',
        `cannot read ${p} in ${rootDir.hostPath}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    if (text !== undefined) return parseOsRelease(text);
  }
  throw new PlatformError(
    'PLATFORM_NOT_DETECTED',
    `${rootDir.hostPath} has neither /etc/os-release nor /usr/lib/os-release: cannot tell its distribution`,
  );
}

/** A file read as evidence only: one that cannot be read (too large, not a file…) tells nothing. */
function readEvidence(rootDir: RootDir, p: string, maxBytes: number): string | undefined {
  try {
    return readOptional(rootDir, p, maxBytes);
  } catch (e) {
    if (e instanceof PathError) return undefined;
    throw e;
  }
}

/** Suites named in the root's apt sources (best effort: unreadable files are skipped). */
function readAptSuites(rootDir: RootDir): string[] {
  const suites: string[] = [];
  const read = (p: string, format: 'list' | 'sources'): void => {
    const text = readEvidence(rootDir, p, APT_SOURCES_MAX_BYTES);
    if (text !== undefined) suites.push(...parseAptSources(text, format));
  };
  read('/etc/apt/sources.list', 'list');
  let names: string[] = [];
  try {
    names = fs.readdirSync(rootDir.resolve('/etc/apt/sources.list.d', { followFinal: true })).sort();
  } catch {
    // no sources.list.d
  }
  for (const name of names.slice(0, APT_SOURCES_MAX_FILES)) {
    if (name.endsWith('.list')) read(`/etc/apt/sources.list.d/${name}`, 'list');
    else if (name.endsWith('.sources')) read(`/etc/apt/sources.list.d/${name}`, 'sources');
  }
  return suites;
}

/**
 * The platforms of the system under `root`, without running anything from it: the distro and
 * release from os-release (see releaseFromOsRelease for the rules), the architecture from the
 * package database. Throws PLATFORM_NOT_DETECTED when os-release is missing or lacks what is
 * needed, or when no known package database records the architecture and no `archHint` is given;
 * a package database that is there but damaged throws its reader's PackageDatabaseError.
 */
export async function detectPlatforms(
  root: string,
  options: DetectPlatformsOptions = {},
): Promise<DetectedPlatforms> {
  const rootDir = RootDir.open(root);
  const osRelease = readOsRelease(rootDir);
  const distro = distroFromOsRelease(osRelease);
  const debianLike = releaseFamily(osRelease) === 'debian';
  const release = releaseFromOsRelease({
    osRelease,
    debianVersion: debianLike
      ? readEvidence(rootDir, '/etc/debian_version', DEBIAN_VERSION_MAX_BYTES)
      : undefined,
    aptSuites: debianLike && osRelease.VERSION_ID === undefined ? readAptSuites(rootDir) : undefined,
  });

  let archs: Architectures | undefined;
  for (const detect of ARCH_DETECTORS) {
    archs = await detect(rootDir, options);
    if (archs !== undefined) break;
  }
  if (archs === undefined) {
    if (options.archHint === undefined) {
      throw new PlatformError(
        'PLATFORM_NOT_DETECTED',
        `cannot tell the architecture of ${distro}/${release} in ${rootDir.hostPath}: it has no dpkg, rpm or apk ` +
          'database that records one; give the architecture explicitly',
      );
    }
    archs = { source: 'hint', native: options.archHint, foreign: [] };
  }
  if (!isValidPlatformComponent(archs.native)) {
    throw new PlatformError('PLATFORM_NOT_DETECTED', `invalid architecture ${JSON.stringify(archs.native)}`);
  }
  return {
    primary: { distro, release, arch: archs.native },
    foreign: archs.foreign.map((arch) => ({ distro, release, arch })),
    osRelease,
    archSource: archs.source,
  };
}
