/**
 * Alpine's installed database, `lib/apk/db/installed` (apk-tools' "fdb" text format), read
 * without apk: one record per installed package, records separated by a blank line, each line a
 * one-character field name, `:` and a value. The fields used:
 *
 *   P name · V version · A architecture · o origin (the source package) ·
 *   F a directory the package owns (relative to the root, no leading `/`) ·
 *   M `uid:gid:mode` of that directory (mode in octal) ·
 *   R a file in the last F directory · a `uid:gid:mode` of that file ·
 *   Z the file's checksum: `Q1` + base64 SHA-1 (`Q2` + base64 SHA-256 in newer apk), or 32 hex
 *     digits of MD5 in very old databases.
 *
 * Other fields (C, S, I, T, U, L, m, t, c, D, p, i, r, q…) are skipped. `a`/`M` are only written
 * when they differ from apk's defaults (root:root, files 0644, directories 0755); files and
 * directories without one carry no mode/owner/group here.
 *
 * apk records no config flag: a file is `conffile` when it lies under one of the root's protected
 * paths that apk leaves to the administrator (protected-paths.ts: `etc/` by default, but not
 * `etc/apk/` nor what `etc/init.d/` holds, plus the root's own `etc/apk/protected_paths.d/*.list`),
 * as dpkg conffiles and rpm %config files are. Directories never are.
 *
 * Damage policy: a line that is not `X:value`, a field in the wrong place (Z or a before any R,
 * R before any F), a record without P or V, a version apk would refuse, or a checksum that does
 * not decode make the whole database DATABASE_CORRUPT, naming the file and line. Skipping a bad
 * record would silently drop a package and every file it owns from verification.
 */
import * as path from 'node:path';
import { PackageDatabaseError, PathError } from '../../errors.js';
import { RootDir } from '../../fs/in-root.js';
import { apkVersionScheme } from '../../versions/apk.js';
import type { DistroDigest, InstalledFile, InstalledPackage } from '../model.js';
import { OwnerIndex, commonestArch } from '../owners.js';
import { readApkProtectedPaths, type ApkProtectedPaths } from './protected-paths.js';

export const DEFAULT_APK_INSTALLED = '/lib/apk/db/installed';
/** apk 3 keeps it here on merged-/usr systems. */
export const APK_INSTALLED_PATHS = [DEFAULT_APK_INSTALLED, '/usr/lib/apk/db/installed'] as const;

export interface ApkLimits {
  installed: number;
  /** One line. */
  line: number;
  packages: number;
  /** `etc/apk/arch`. */
  small: number;
}

export const APK_LIMITS: Readonly<ApkLimits> = Object.freeze({
  installed: 64 * 1024 * 1024,
  line: 64 * 1024,
  packages: 100_000,
  small: 4096,
});

export interface ApkPackage extends InstalledPackage {
  /** `o:`, the aports package it was built from (also `source.name`). */
  origin: string | undefined;
  /** 1-based line of the record's first line. */
  line: number;
}

export class ApkDatabase {
  readonly packages: ApkPackage[];
  /** Host path of the installed file read. */
  readonly file: string;
  /** `etc/apk/arch` of the root, when present. */
  readonly archFile: string | undefined;
  /** The protected paths the files' `conffile` flags come from (undefined when not applied). */
  readonly protectedPaths: ApkProtectedPaths | undefined;
  private ownerIndex: OwnerIndex<ApkPackage> | undefined;

  constructor(init: {
    packages: ApkPackage[];
    file: string;
    archFile: string | undefined;
    protectedPaths?: ApkProtectedPaths;
  }) {
    this.packages = init.packages;
    this.file = init.file;
    this.archFile = init.archFile;
    this.protectedPaths = init.protectedPaths;
  }

  find(name: string): ApkPackage | undefined {
    return this.packages.find((p) => p.name === name);
  }

  owners(p: string): ApkPackage[] {
    return (this.ownerIndex ??= new OwnerIndex(this.packages)).owners(p);
  }

  /** `etc/apk/arch`, else the commonest package architecture other than `noarch`. */
  nativeArch(): string | undefined {
    if (this.archFile !== undefined) return this.archFile;
    return commonestArch(this.packages);
  }
}

/** Decodes a `Z:` value to a digest; undefined when it is not one of apk's checksum forms. */
export function decodeApkChecksum(value: string): DistroDigest | undefined {
  if (value.startsWith('Q1') || value.startsWith('Q2')) {
    const b64 = value.slice(2);
    const bytes = value[1] === '1' ? 20 : 32;
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length !== Math.ceil(bytes / 3) * 4) return undefined;
    const raw = Buffer.from(b64, 'base64');
    if (raw.length !== bytes) return undefined;
    return { algorithm: bytes === 20 ? 'sha1' : 'sha256', hex: raw.toString('hex') };
  }
  if (/^[0-9a-fA-F]{32}$/.test(value)) return { algorithm: 'md5', hex: value.toLowerCase() };
  return undefined;
}

/** `uid:gid:mode` (mode octal), as apk writes `a:` and `M:`. */
function parseAcl(value: string): { owner: string; group: string; mode: number } | undefined {
  const m = /^([0-9]{1,10}):([0-9]{1,10}):([0-7]{1,7})$/.exec(value);
  if (m === null) return undefined;
  return { owner: m[1] as string, group: m[2] as string, mode: parseInt(m[3] as string, 8) };
}

/**
 * Parses the text of an installed database. `file` names it in errors. Throws
 * PackageDatabaseError (DATABASE_CORRUPT with the line) as described in the file comment. With
 * `protectedPaths`, files apk leaves to the administrator are marked `conffile`.
 */
export function parseApkInstalled(
  text: string,
  file: string,
  limits: ApkLimits = APK_LIMITS,
  protectedPaths?: ApkProtectedPaths,
): ApkPackage[] {
  const packages: ApkPackage[] = [];
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();

  let current: ApkPackage | undefined;
  let start = 0;
  let dir: string | undefined;
  let lastFile: InstalledFile | undefined;
  let lastDir: InstalledFile | undefined;

  const bad = (line: number, message: string): PackageDatabaseError =>
    new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });

  const finish = (endLine: number): void => {
    if (current === undefined) return;
    if (current.name === '') throw bad(start, 'package record has no P: (name) line');
    if (current.version === '') throw bad(start, `package ${current.name} has no V: (version) line`);
    if (!apkVersionScheme.isValid(current.version)) {
      throw bad(
        start,
        `package ${current.name} has an invalid version ${JSON.stringify(current.version.slice(0, 80))}`,
      );
    }
    if (packages.length >= limits.packages) {
      throw new PackageDatabaseError('DATABASE_TOO_LARGE', `more than ${limits.packages} packages`, {
        file,
        line: endLine,
      });
    }
    current.source = { name: current.origin ?? current.name, version: current.version };
    packages.push(current);
    current = undefined;
  };

  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const line = lines[i] as string;
    if (line.length > limits.line) throw bad(n, `line is longer than ${limits.line} bytes`);
    if (line === '') {
      finish(n);
      continue;
    }
    if (line.length < 2 || line[1] !== ':') {
      throw bad(n, `not a "X:value" line: ${JSON.stringify(line.slice(0, 60))}`);
    }
    if (current === undefined) {
      current = {
        name: '',
        version: '',
        architecture: '',
        source: { name: '', version: '' },
        status: 'installed',
        files: [],
        origin: undefined,
        line: n,
      };
      start = n;
      dir = undefined;
      lastFile = undefined;
      lastDir = undefined;
    }
    const key = line[0];
    const value = line.slice(2);
    switch (key) {
      case 'P':
        if (!/^[A-Za-z0-9+_.@][A-Za-z0-9+_.@-]*$/.test(value) || value.length > 256) {
          throw bad(n, `invalid package name ${JSON.stringify(value.slice(0, 80))}`);
        }
        current.name = value;
        break;
      case 'V':
        current.version = value;
        break;
      case 'A':
        current.architecture = value;
        break;
      case 'o':
        current.origin = value;
        break;
      case 'F': {
        if (value.startsWith('/') || value.split('/').some((c) => c === '..' || c === '.' || c === '')) {
          throw bad(n, `invalid directory ${JSON.stringify(value.slice(0, 80))}`);
        }
        dir = value;
        lastDir = { path: `/${value}` };
        lastFile = undefined;
        current.files.push(lastDir);
        break;
      }
      case 'M': {
        if (lastDir === undefined) throw bad(n, 'M: (directory mode) before any F: (directory)');
        const acl = parseAcl(value);
        if (acl === undefined)
          throw bad(n, `invalid directory owner/mode ${JSON.stringify(value.slice(0, 40))}`);
        Object.assign(lastDir, acl);
        break;
      }
      case 'R': {
        if (dir === undefined) throw bad(n, 'R: (file) before any F: (directory)');
        if (value === '' || value.includes('/') || value === '.' || value === '..') {
          throw bad(n, `invalid file name ${JSON.stringify(value.slice(0, 80))}`);
        }
        lastFile = { path: `/${dir}/${value}` };
        if (protectedPaths?.isConfig(lastFile.path) === true) lastFile.conffile = true;
        current.files.push(lastFile);
        break;
      }
      case 'a': {
        if (lastFile === undefined) throw bad(n, 'a: (file mode) before any R: (file)');
        const acl = parseAcl(value);
        if (acl === undefined) throw bad(n, `invalid file owner/mode ${JSON.stringify(value.slice(0, 40))}`);
        Object.assign(lastFile, acl);
        break;
      }
      case 'Z': {
        if (lastFile === undefined) throw bad(n, 'Z: (file checksum) before any R: (file)');
        const digest = decodeApkChecksum(value);
        if (digest === undefined) throw bad(n, `invalid file checksum ${JSON.stringify(value.slice(0, 80))}`);
        lastFile.digest = digest;
        break;
      }
      default:
        break; // other package fields
    }
  }
  finish(lines.length);
  return packages;
}

export interface ReadApkOptions {
  /** The installed database inside the root; default: APK_INSTALLED_PATHS, first found. */
  installed?: string;
  /** Mark files under the root's protected paths `conffile` (default true). */
  protectedPaths?: boolean;
  limits?: Partial<ApkLimits>;
}

/** The installed database path inside the root, or undefined when there is none. */
export function findApkDatabase(rootDir: RootDir, installed?: string): string | undefined {
  for (const p of installed === undefined ? APK_INSTALLED_PATHS : [installed]) {
    if (rootDir.exists(p)) return p;
  }
  return undefined;
}

function readText(rootDir: RootDir, inRoot: string, max: number): string {
  const host = path.join(rootDir.hostPath, inRoot);
  try {
    return rootDir.readFile(inRoot, max).toString('utf8');
  } catch (e) {
    if (e instanceof PathError && e.code === 'TOO_LARGE') {
      throw new PackageDatabaseError('DATABASE_TOO_LARGE', `larger than ${max} bytes`, { file: host });
    }
    if (e instanceof PathError && e.code === 'NOT_A_REGULAR_FILE') {
      throw new PackageDatabaseError('DATABASE_CORRUPT', 'not a regular file', { file: host });
    }
    throw e;
  }
}

/**
 * Reads apk's installed database under `root`. DATABASE_NOT_FOUND when there is none; see
 * parseApkInstalled for what is DATABASE_CORRUPT.
 */
export async function readApkDatabase(root: string, options: ReadApkOptions = {}): Promise<ApkDatabase> {
  const limits = { ...APK_LIMITS, ...options.limits };
  if (options.installed !== undefined && !options.installed.startsWith('/')) {
    throw new PathError(
      'INVALID_PATH',
      `the apk database must be an absolute path inside the root: ${options.installed}`,
    );
  }
  const rootDir = RootDir.open(root);
  const inRoot = findApkDatabase(rootDir, options.installed);
  if (inRoot === undefined) {
    const where = options.installed ?? DEFAULT_APK_INSTALLED;
    throw new PackageDatabaseError('DATABASE_NOT_FOUND', 'no apk installed database', {
      file: path.join(rootDir.hostPath, where),
    });
  }
  const file = path.join(rootDir.hostPath, inRoot);
  const protectedPaths = options.protectedPaths === false ? undefined : readApkProtectedPaths(rootDir);
  const packages = parseApkInstalled(
    readText(rootDir, inRoot, limits.installed),
    file,
    limits,
    protectedPaths,
  );
  let archFile: string | undefined;
  if (rootDir.exists('/etc/apk/arch')) {
    const arch = readText(rootDir, '/etc/apk/arch', limits.small).trim();
    if (/^[a-z0-9_]+$/.test(arch)) archFile = arch;
  }
  await Promise.resolve();
  return new ApkDatabase({ packages, file, archFile, ...(protectedPaths ? { protectedPaths } : {}) });
}
