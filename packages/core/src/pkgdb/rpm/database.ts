/**
 * rpm's database under a root, read without rpm: the sqlite `rpmdb.sqlite` of rpm ≥ 4.16
 * (Fedora 33+, RHEL 9, CBL-Mariner/Azure Linux) and the Berkeley DB `Packages` of older rpm
 * (RHEL/CentOS 7 and 8). Both hold one rpm header blob per installed package (header.ts); the
 * package's name, EVR, architecture, source rpm and its files with rpm's digest, mode, owner,
 * group, link target, size and flags come from that header.
 *
 * The database is untrusted: files have size caps, headers are checked before use, and a damaged
 * database is a PackageDatabaseError naming the file (and the header number), never a crash. The
 * root is never written to: an sqlite database is copied to a private temporary directory (with
 * its write-ahead log, so committed transactions not yet folded into the main file are seen) and
 * opened there.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PackageDatabaseError, PathError } from '../../errors.js';
import { RootDir } from '../../fs/in-root.js';
import { formatRpmVersion } from '../../versions/rpm.js';
import type { DistroDigestAlgorithm, InstalledFile, InstalledPackage } from '../model.js';
import { BdbError, readBdbHash } from './bdb.js';
import { HeaderError, RpmHeader, TAG } from './header.js';
import { openSqlite, type SqliteConnection, type SqliteDriverName } from './sqlite.js';
import { OwnerIndex, commonestArch } from '../owners.js';

export interface RpmLimits {
  /** The database file (sqlite main file plus its write-ahead log, or `Packages`). */
  database: number;
  /** One header blob. */
  header: number;
  /** Installed packages (headers). */
  packages: number;
  /** Files of one package, and of all packages together. */
  filesPerPackage: number;
  files: number;
}

export const RPM_LIMITS: Readonly<RpmLimits> = Object.freeze({
  database: 1024 * 1024 * 1024,
  header: 64 * 1024 * 1024,
  packages: 200_000,
  filesPerPackage: 1_000_000,
  files: 10_000_000,
});

/** Where rpm keeps its database, in the order they are tried (inside the root). */
export const RPM_DATABASE_DIRS = ['/var/lib/rpm', '/usr/lib/sysimage/rpm'] as const;

export type RpmDatabaseFormat = 'sqlite' | 'bdb';

/** rpm's per-file flags (rpmfiles.h) that matter here. */
export const RPMFILE = {
  CONFIG: 1 << 0,
  DOC: 1 << 1,
  MISSINGOK: 1 << 3,
  NOREPLACE: 1 << 4,
  GHOST: 1 << 6,
} as const;

/** rpm's per-file install states (FILESTATES). */
export type RpmFileState = 'normal' | 'replaced' | 'notinstalled' | 'netshared' | 'wrongcolor' | 'missing';
const FILE_STATES: Record<number, RpmFileState> = {
  0: 'normal',
  1: 'replaced',
  2: 'notinstalled',
  3: 'netshared',
  4: 'wrongcolor',
  255: 'missing',
};

/** PGPHASHALGO numbers of FILEDIGESTALGO; rpm's default (no tag) is MD5. */
const DIGEST_ALGOS: Record<number, DistroDigestAlgorithm> = {
  1: 'md5',
  2: 'sha1',
  8: 'sha256',
  10: 'sha512',
};
const DIGEST_HEX_LENGTH: Record<DistroDigestAlgorithm, number> = {
  md5: 32,
  sha1: 40,
  sha256: 64,
  sha512: 128,
};

export interface RpmFile extends InstalledFile {
  /** rpm's file flags (RPMFILE: config, doc, ghost…). */
  flags: number;
  /** rpm's install state, when the database records one. */
  state?: RpmFileState;
}

export interface RpmPackage extends InstalledPackage {
  files: RpmFile[];
  /** The header's EPOCH tag, when it has one. */
  epoch: number | undefined;
  /** VERSION and RELEASE tags; `version` (from InstalledPackage) is `[epoch:]version-release`. */
  upstreamVersion: string;
  release: string;
  /** The header's number in the database (rpm's `%{DBINSTANCE}`). */
  headerNumber: number;
  /** SOURCERPM (`glibc-2.34-2.cm2.src.rpm`), from which `source` is derived. */
  sourceRpm: string | undefined;
}

export interface RpmNote {
  file: string;
  package?: string;
  message: string;
}

export class RpmDatabase {
  /** Installed packages, in the database's order (by header number). */
  readonly packages: RpmPackage[];
  /**
   * The `gpg-pubkey` entries rpm keeps for imported signing keys: not packages (no files, no
   * architecture), listed apart.
   */
  readonly pubkeys: RpmPackage[];
  readonly format: RpmDatabaseFormat;
  /** Host path of the database file read. */
  readonly file: string;
  readonly notes: RpmNote[];
  private ownerIndex: OwnerIndex<RpmPackage> | undefined;

  constructor(init: {
    packages: RpmPackage[];
    pubkeys: RpmPackage[];
    format: RpmDatabaseFormat;
    file: string;
    notes: RpmNote[];
  }) {
    this.packages = init.packages;
    this.pubkeys = init.pubkeys;
    this.format = init.format;
    this.file = init.file;
    this.notes = init.notes;
  }

  /** Installed packages called `name` (several when multilib: `glibc.x86_64` and `glibc.i686`). */
  findAll(name: string): RpmPackage[] {
    return this.packages.filter((p) => p.name === name);
  }

  /** Packages whose file list names `p` (directories often have several owners). */
  owners(p: string): RpmPackage[] {
    return (this.ownerIndex ??= new OwnerIndex(this.packages)).owners(p);
  }

  /**
   * The native architecture: that of the installed `rpm` package (rpm is always native), else
   * the commonest architecture other than `noarch`; undefined when no package says.
   */
  nativeArch(): string | undefined {
    const rpm = this.packages.find((p) => p.name === 'rpm' && p.architecture !== 'noarch');
    if (rpm !== undefined) return rpm.architecture;
    return commonestArch(this.packages);
  }
}

export interface ReadRpmOptions {
  /** The database directory inside the root (rpm's `%_dbpath`); default: RPM_DATABASE_DIRS. */
  dbPath?: string;
  limits?: Partial<RpmLimits>;
  /** How an sqlite database is opened (default: node:sqlite when the runtime has it; see sqlite.ts). */
  sqliteDriver?: SqliteDriverName;
}

/** The rpm database files under a root, or undefined when there is none. */
export function findRpmDatabase(
  rootDir: RootDir,
  dbPath?: string,
): { format: RpmDatabaseFormat; inRoot: string } | undefined {
  for (const dir of dbPath === undefined ? RPM_DATABASE_DIRS : [dbPath]) {
    for (const [name, format] of [
      ['rpmdb.sqlite', 'sqlite'],
      ['Packages', 'bdb'],
    ] as const) {
      const inRoot = `${dir}/${name}`;
      if (rootDir.exists(inRoot)) return { format, inRoot };
    }
  }
  return undefined;
}

function corrupt(message: string, file: string, cause?: unknown): PackageDatabaseError {
  return new PackageDatabaseError(
    'DATABASE_CORRUPT',
    message,
    { file },
    cause === undefined ? undefined : { cause },
  );
}

/** Reads a database file inside the root, as PackageDatabaseError when it cannot be. */
function readRootFile(rootDir: RootDir, inRoot: string, maxBytes: number, host: string): Buffer {
  try {
    return rootDir.readFile(inRoot, maxBytes);
  } catch (e) {
    if (e instanceof PathError && e.code === 'TOO_LARGE') {
      throw new PackageDatabaseError(
        'DATABASE_TOO_LARGE',
        `the rpm database is larger than ${maxBytes} bytes`,
        {
          file: host,
        },
      );
    }
    if (e instanceof PathError && e.code === 'NOT_A_REGULAR_FILE')
      throw corrupt('not a regular file', host, e);
    throw e;
  }
}

/**
 * Copies a file inside the root to `dest` (a new private file) in chunks, without following a
 * final symlink on the host and without reading more than `maxBytes`; returns its size.
 */
function copyRootFile(
  rootDir: RootDir,
  inRoot: string,
  dest: string,
  maxBytes: number,
  host: string,
): number {
  const source = rootDir.resolve(inRoot, { followFinal: true });
  let fd: number;
  try {
    fd = fs.openSync(source, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw corrupt('the database file was replaced by a symbolic link', host, e);
    throw new PathError('IO_ERROR', `cannot open ${host}: ${code ?? String(e)}`, { cause: e });
  }
  const out = fs.openSync(dest, 'wx', 0o600);
  try {
    if (!fs.fstatSync(fd).isFile()) throw corrupt('not a regular file', host);
    const chunk = Buffer.allocUnsafe(1024 * 1024);
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      total += n;
      if (total > maxBytes) {
        throw new PackageDatabaseError(
          'DATABASE_TOO_LARGE',
          `the rpm database is larger than ${maxBytes} bytes`,
          {
            file: host,
          },
        );
      }
      fs.writeSync(out, chunk, 0, n);
    }
    return total;
  } finally {
    fs.closeSync(out);
    fs.closeSync(fd);
  }
}

interface Blob {
  number: number;
  blob: Buffer;
}

/** The header blobs of an sqlite rpmdb (table `Packages`: `hnum`, `blob`), via a private copy. */
async function sqliteBlobs(
  rootDir: RootDir,
  inRoot: string,
  host: string,
  limits: RpmLimits,
  driver: SqliteDriverName | undefined,
): Promise<Blob[]> {
  const dir = fs.mkdtempSync(path.join(tmpdir(), 'sysattest-rpmdb-'));
  try {
    const copy = path.join(dir, 'rpmdb.sqlite');
    const size = copyRootFile(rootDir, inRoot, copy, limits.database, host);
    const magic = Buffer.alloc(16);
    const fd = fs.openSync(copy, 'r');
    try {
      fs.readSync(fd, magic, 0, 16, 0);
    } finally {
      fs.closeSync(fd);
    }
    if (size < 100 || magic.toString('latin1') !== 'SQLite format 3\0') {
      throw corrupt('not an sqlite database', host);
    }
    if (rootDir.exists(`${inRoot}-wal`)) {
      copyRootFile(
        rootDir,
        `${inRoot}-wal`,
        `${copy}-wal`,
        Math.max(0, limits.database - size),
        `${host}-wal`,
      );
    }
    let db: SqliteConnection | undefined;
    try {
      db = await openSqlite(copy, driver);
      const table = db.get(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'Packages'`);
      if (table === undefined)
        throw corrupt('the sqlite database has no Packages table: not an rpm database', host);
      const out: Blob[] = [];
      for (const row of db.iterate('SELECT hnum, blob FROM Packages ORDER BY hnum')) {
        if (out.length >= limits.packages) {
          throw new PackageDatabaseError('DATABASE_TOO_LARGE', `more than ${limits.packages} packages`, {
            file: host,
          });
        }
        if (typeof row.hnum !== 'number' || !Buffer.isBuffer(row.blob)) {
          throw corrupt(`a Packages row (hnum ${String(row.hnum)}) is not a header number and a blob`, host);
        }
        out.push({ number: row.hnum, blob: row.blob });
      }
      return out;
    } catch (e) {
      if (e instanceof PackageDatabaseError) throw e;
      const code = (e as { code?: unknown }).code;
      if (typeof code === 'string' && code.startsWith('SQLITE_')) {
        throw corrupt(`the sqlite database cannot be read: ${(e as Error).message} (${code})`, host, e);
      }
      throw e;
    } finally {
      db?.close();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The header blobs of a Berkeley DB `Packages` (key: header number, 4 bytes native order). */
function bdbBlobs(rootDir: RootDir, inRoot: string, host: string, limits: RpmLimits): Blob[] {
  const file = readRootFile(rootDir, inRoot, limits.database, host);
  let records;
  try {
    records = readBdbHash(file, limits.header);
  } catch (e) {
    if (e instanceof BdbError)
      throw corrupt(`the Berkeley DB Packages file is damaged: ${e.message}`, host, e);
    throw e;
  }
  const le = file.readUInt32LE(12) === 0x061561;
  const out: Blob[] = [];
  for (const { key, value } of records) {
    if (key.length !== 4) continue;
    const number = le ? key.readUInt32LE(0) : key.readUInt32BE(0);
    if (number === 0) continue; // rpm's record of the last header number used, not a header
    if (out.length >= limits.packages) {
      throw new PackageDatabaseError('DATABASE_TOO_LARGE', `more than ${limits.packages} packages`, {
        file: host,
      });
    }
    out.push({ number, blob: value });
  }
  return out.sort((a, b) => a.number - b.number);
}

/** `glibc-2.34-2.cm2.src.rpm` → name `glibc`, version `2.34-2.cm2`. */
function parseSourceRpm(s: string | undefined): { name: string; version: string } | undefined {
  if (s === undefined) return undefined;
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(s);
  return m === null ? undefined : { name: m[1] as string, version: `${m[2]}-${m[3]}` };
}

function filePaths(h: RpmHeader, where: string): string[] {
  const basenames = h.stringArray(TAG.BASENAMES);
  if (basenames === undefined) return h.stringArray(TAG.OLDFILENAMES) ?? [];
  const dirnames = h.stringArray(TAG.DIRNAMES) ?? [];
  const dirindexes = h.numbers(TAG.DIRINDEXES) ?? [];
  if (dirindexes.length !== basenames.length) {
    throw new HeaderError(`${where}: ${basenames.length} BASENAMES but ${dirindexes.length} DIRINDEXES`);
  }
  return basenames.map((b, i) => {
    const d = dirnames[dirindexes[i] as number];
    if (d === undefined) throw new HeaderError(`${where}: DIRINDEXES points past DIRNAMES`);
    return d + b;
  });
}

/** A per-file array tag that must have one item per file when present. */
function perFile<T>(values: T[] | undefined, n: number, name: string): T[] | undefined {
  if (values !== undefined && values.length !== n) {
    throw new HeaderError(`${values.length} ${name} for ${n} files`);
  }
  return values;
}

/**
 * One installed package from its header blob (`number`: its header number). Throws HeaderError
 * (or RangeError) for a damaged header; `notes` receives what is odd but not fatal.
 */
export function rpmPackageFromHeader(
  number: number,
  blob: Buffer,
  notes: RpmNote[],
  file: string,
  maxFiles: number = RPM_LIMITS.filesPerPackage,
): RpmPackage {
  const h = new RpmHeader(blob);
  const fileCount = Math.max(h.count(TAG.BASENAMES), h.count(TAG.OLDFILENAMES));
  if (fileCount > maxFiles) {
    throw new PackageDatabaseError('DATABASE_TOO_LARGE', `header ${number} lists ${fileCount} files`, {
      file,
    });
  }
  const name = h.string(TAG.NAME);
  const upstreamVersion = h.string(TAG.VERSION);
  const release = h.string(TAG.RELEASE);
  if (name === undefined || upstreamVersion === undefined || release === undefined) {
    throw new HeaderError('the header has no NAME, VERSION or RELEASE');
  }
  const epoch = h.number(TAG.EPOCH);
  const arch = h.string(TAG.ARCH) ?? '';
  const version = formatRpmVersion({ epoch, version: upstreamVersion, release });
  const label = `${name}-${version}.${arch}`;
  const paths = filePaths(h, label);
  const n = paths.length;
  const digests = perFile(h.stringArray(TAG.FILEDIGESTS), n, 'FILEDIGESTS');
  const modes = perFile(h.numbers(TAG.FILEMODES), n, 'FILEMODES');
  const users = perFile(h.stringArray(TAG.FILEUSERNAME), n, 'FILEUSERNAME');
  const groups = perFile(h.stringArray(TAG.FILEGROUPNAME), n, 'FILEGROUPNAME');
  const links = perFile(h.stringArray(TAG.FILELINKTOS), n, 'FILELINKTOS');
  const flags = perFile(h.numbers(TAG.FILEFLAGS), n, 'FILEFLAGS');
  const states = perFile(h.numbers(TAG.FILESTATES), n, 'FILESTATES');
  const sizes = perFile(h.numbers(TAG.LONGFILESIZES) ?? h.numbers(TAG.FILESIZES), n, 'FILESIZES');
  const algoNumber = h.number(TAG.FILEDIGESTALGO) ?? 1;
  const algorithm = DIGEST_ALGOS[algoNumber];
  if (algorithm === undefined && digests?.some((d) => d !== '')) {
    notes.push({
      file,
      package: label,
      message: `file digests of ${label} use algorithm ${algoNumber}, not read`,
    });
  }
  const files: RpmFile[] = new Array<RpmFile>(n);
  for (let i = 0; i < n; i++) {
    const f: RpmFile = { path: paths[i] as string, flags: flags?.[i] ?? 0 };
    const hex = digests?.[i];
    if (hex !== undefined && hex !== '' && algorithm !== undefined) {
      const lower = hex.toLowerCase();
      if (lower.length !== DIGEST_HEX_LENGTH[algorithm] || !/^[0-9a-f]+$/.test(lower)) {
        throw new HeaderError(
          `${label}: file digest ${JSON.stringify(hex.slice(0, 80))} of ${f.path} is not ${algorithm} hex`,
        );
      }
      f.digest = { algorithm, hex: lower };
    }
    if (modes !== undefined) f.mode = modes[i] as number;
    if (users !== undefined) f.owner = users[i] as string;
    if (groups !== undefined) f.group = groups[i] as string;
    const link = links?.[i];
    if (link !== undefined && link !== '') f.linkTarget = link;
    if (sizes !== undefined) f.size = sizes[i] as number;
    if ((f.flags & RPMFILE.CONFIG) !== 0) f.conffile = true;
    if ((f.flags & RPMFILE.GHOST) !== 0) f.ghost = true;
    const stateNumber = states?.[i];
    if (stateNumber !== undefined) {
      const state = FILE_STATES[stateNumber];
      if (state !== undefined) f.state = state;
      if (state === 'notinstalled' || state === 'netshared' || state === 'wrongcolor') f.notInstalled = true;
    }
    files[i] = f;
  }
  const sourceRpm = h.string(TAG.SOURCERPM);
  const src = parseSourceRpm(sourceRpm);
  return {
    name,
    version,
    architecture: arch,
    source:
      src === undefined
        ? { name, version }
        : { name: src.name, version: epoch === undefined ? src.version : `${epoch}:${src.version}` },
    status: 'installed',
    files,
    epoch,
    upstreamVersion,
    release,
    headerNumber: number,
    sourceRpm,
  };
}

const PACKAGES_PER_TURN = 64;

/**
 * Reads the rpm database under `root`. Throws PackageDatabaseError: DATABASE_NOT_FOUND when the
 * root has none (SUSE's `Packages.db` ndb format is named as not supported), DATABASE_CORRUPT
 * for a damaged file or header (naming the header number), DATABASE_TOO_LARGE past RPM_LIMITS.
 */
export async function readRpmDatabase(root: string, options: ReadRpmOptions = {}): Promise<RpmDatabase> {
  const limits = { ...RPM_LIMITS, ...options.limits };
  if (options.dbPath !== undefined && !options.dbPath.startsWith('/')) {
    throw new PathError(
      'INVALID_PATH',
      `the rpm database directory must be absolute inside the root: ${options.dbPath}`,
    );
  }
  const rootDir = RootDir.open(root);
  const found = findRpmDatabase(rootDir, options.dbPath);
  if (found === undefined) {
    const dirs = options.dbPath === undefined ? RPM_DATABASE_DIRS : [options.dbPath];
    const ndb = dirs.find((d) => rootDir.exists(`${d}/Packages.db`));
    const message =
      ndb !== undefined
        ? `the rpm database in ${ndb} is in rpm's ndb format (Packages.db), which is not supported yet`
        : `no rpm database (rpmdb.sqlite or Packages) in ${dirs.join(' or ')}`;
    throw new PackageDatabaseError('DATABASE_NOT_FOUND', message, {
      file: path.join(rootDir.hostPath, dirs[0] ?? ''),
    });
  }
  const host = path.join(rootDir.hostPath, found.inRoot);
  const blobs =
    found.format === 'sqlite'
      ? await sqliteBlobs(rootDir, found.inRoot, host, limits, options.sqliteDriver)
      : bdbBlobs(rootDir, found.inRoot, host, limits);
  const notes: RpmNote[] = [];
  const packages: RpmPackage[] = [];
  const pubkeys: RpmPackage[] = [];
  let totalFiles = 0;
  for (const [i, { number, blob }] of blobs.entries()) {
    if (i > 0 && i % PACKAGES_PER_TURN === 0) await new Promise<void>((r) => setImmediate(r));
    if (blob.length > limits.header) {
      throw new PackageDatabaseError('DATABASE_TOO_LARGE', `header ${number} is ${blob.length} bytes`, {
        file: host,
      });
    }
    let pkg: RpmPackage;
    try {
      pkg = rpmPackageFromHeader(number, blob, notes, host, limits.filesPerPackage);
    } catch (e) {
      if (e instanceof HeaderError || e instanceof RangeError) {
        throw corrupt(`header ${number} is damaged: ${e.message}`, host, e);
      }
      throw e;
    }
    totalFiles += pkg.files.length;
    if (totalFiles > limits.files) {
      throw new PackageDatabaseError('DATABASE_TOO_LARGE', `more than ${limits.files} files in all`, {
        file: host,
      });
    }
    if (pkg.name === 'gpg-pubkey' && pkg.files.length === 0) pubkeys.push(pkg);
    else packages.push(pkg);
  }
  return new RpmDatabase({ packages, pubkeys, format: found.format, file: host, notes });
}
