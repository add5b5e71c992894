import * as fs from 'node:fs';
import * as path from 'node:path';
import { PackageDatabaseError, PathError } from '../../errors.js';
import { RootDir } from '../../fs/in-root.js';
import type { Diversion, InstalledFile, InstalledPackage } from '../model.js';
import { parseArchFile, parseDiversions } from './diversions.js';
import { parseFileList, parseMd5sums, type Md5sums } from './info-files.js';
import { readDatabaseText, yieldToEventLoop } from './read.js';
import {
  INSTALLED_STATES,
  parseStatus,
  type DpkgConffile,
  type DpkgState,
  type StatusEntry,
} from './status.js';
import { OwnerIndex } from '../owners.js';

/** Size caps per file. A real status is under 2 MiB for 3,000 packages; a .list is rarely 1 MiB. */
export interface DpkgLimits {
  status: number;
  /** One `info/*.list`. */
  list: number;
  /** One `info/*.md5sums`. */
  md5sums: number;
  diversions: number;
  /** `arch` and `info/format`. */
  small: number;
  /** Entries in the `info` directory. */
  infoEntries: number;
}

export const DPKG_LIMITS: Readonly<DpkgLimits> = Object.freeze({
  status: 64 * 1024 * 1024,
  list: 16 * 1024 * 1024,
  md5sums: 16 * 1024 * 1024,
  diversions: 4 * 1024 * 1024,
  small: 64 * 1024,
  infoEntries: 1_000_000,
});

export const DEFAULT_DPKG_ADMIN_DIR = '/var/lib/dpkg';

/** Packages read between two turns of the event loop (~5 ms of work on a small machine). */
const PACKAGES_PER_TURN = 64;

export interface ReadDpkgOptions {
  /** dpkg's admin directory inside the root (dpkg --admindir). */
  adminDir?: string;
  /** Tighter (or looser) size caps than DPKG_LIMITS. */
  limits?: Partial<DpkgLimits>;
  /**
   * Read each package's md5sums (default true). A reader that never uses dpkg's own digests (the
   * client: they are not a reference) saves their memory and parsing with false.
   */
  digests?: boolean;
}

/** An installed (or partially installed) package, with what dpkg records beyond the common model. */
export interface DpkgPackage extends InstalledPackage {
  state: DpkgState;
  multiArch: 'no' | 'same' | 'foreign' | 'allowed';
  /** `Conffiles:` from the status file, including obsolete ones (which may not be in `files`). */
  conffiles: DpkgConffile[];
  /** Host path of the files list read, or undefined when the package has none (see notes). */
  listFile: string | undefined;
}

/** Something odd but not fatal found while reading, for the caller to report. */
export interface DpkgNote {
  /** Host path of the file concerned. */
  file: string;
  /** `name:arch`, when the note is about one package. */
  package?: string;
  message: string;
}

/**
 * dpkg's database under a root: the packages that are installed (INSTALLED_STATES: configured,
 * perhaps with triggers pending) in `packages`, and apart from them in `partiallyInstalled` the
 * ones whose files are on disk but which are not installed (unpacked, half-configured,
 * half-installed): a client should not take their files for verified-installed, nor for unowned.
 */
export class DpkgDatabase {
  readonly packages: DpkgPackage[];
  readonly partiallyInstalled: DpkgPackage[];
  readonly diversions: Diversion[];
  /** Architecture of the installed `dpkg` package: dpkg is always of the native architecture. */
  readonly nativeArch: string;
  /** Other architectures dpkg was told to accept (`dpkg --add-architecture`), native excluded. */
  readonly foreignArchs: string[];
  readonly notes: DpkgNote[];
  private readonly byKey = new Map<string, DpkgPackage>();
  private readonly byName = new Map<string, DpkgPackage[]>();
  private readonly diversionByFrom: Map<string, Diversion>;
  private ownerIndex: OwnerIndex<DpkgPackage> | undefined;

  constructor(init: {
    packages: DpkgPackage[];
    partiallyInstalled: DpkgPackage[];
    diversions: Diversion[];
    nativeArch: string;
    foreignArchs: string[];
    notes: DpkgNote[];
  }) {
    this.packages = init.packages;
    this.partiallyInstalled = init.partiallyInstalled;
    this.diversions = init.diversions;
    this.nativeArch = init.nativeArch;
    this.foreignArchs = init.foreignArchs;
    this.notes = init.notes;
    for (const p of this.packages) {
      this.byKey.set(`${p.name}:${p.architecture}`, p);
      const same = this.byName.get(p.name);
      if (same === undefined) this.byName.set(p.name, [p]);
      else same.push(p);
    }
    this.diversionByFrom = new Map(this.diversions.map((d) => [d.from, d]));
  }

  /**
   * An installed package by `name:arch`, or by bare `name` as dpkg resolves it: the native
   * instance, else the `all` one, else the only one (undefined when several and none of these).
   */
  find(spec: string): DpkgPackage | undefined {
    if (spec.includes(':')) return this.byKey.get(spec);
    const instances = this.byName.get(spec);
    if (instances === undefined) return undefined;
    return (
      instances.find((p) => p.architecture === this.nativeArch) ??
      instances.find((p) => p.architecture === 'all') ??
      (instances.length === 1 ? instances[0] : undefined)
    );
  }

  /** Every installed instance (architecture) of a package name. */
  findAll(name: string): DpkgPackage[] {
    return this.byName.get(name)?.slice() ?? [];
  }

  /**
   * The packages, installed or partially installed, whose files list names `p` (a path as the
   * database names it, before diversions). Directories usually have several owners.
   */
  owners(p: string): DpkgPackage[] {
    return (this.ownerIndex ??= new OwnerIndex([...this.packages, ...this.partiallyInstalled])).owners(p);
  }

  /** The diversion of `p`, if any. */
  diversionOf(p: string): Diversion | undefined {
    return this.diversionByFrom.get(p);
  }

  /**
   * Where the file a package ships at `p` really lives: the diversion's `to` path when `p` is
   * diverted, except for the diverting package's own file, which stays at `p` (dpkg-divert(1)).
   * `packageName` (`name` or `name:arch`) is the package that ships the file; without it, the
   * file is taken to be another package's.
   */
  applyDiversions(p: string, packageName?: string): string {
    const d = this.diversionByFrom.get(p);
    if (d === undefined) return p;
    const name = packageName?.split(':')[0];
    return name !== undefined && d.by === name ? p : d.to;
  }
}

/** dpkg's admin directory under a root; every file is resolved inside the root. */
class AdminDir {
  constructor(
    readonly rootDir: RootDir,
    readonly adminDir: string,
  ) {}

  /** Host path of a file of the admin dir, or undefined when a directory on the way is missing. */
  hostPath(rel: string): string | undefined {
    try {
      return this.rootDir.resolve(`${this.adminDir}/${rel}`, { followFinal: true });
    } catch (e) {
      if (e instanceof PathError && (e.code === 'NOT_FOUND' || e.code === 'NOT_A_DIRECTORY'))
        return undefined;
      throw e;
    }
  }

  /** Display name, for files that could not be located on the host. */
  describe(rel: string): string {
    return path.join(this.rootDir.hostPath, this.adminDir, rel);
  }

  /** Reads and decodes a file of the admin dir; undefined when it does not exist. */
  read(rel: string, maxBytes: number): { text: string; file: string } | undefined {
    const file = this.hostPath(rel);
    if (file === undefined) return undefined;
    const text = readDatabaseText(file, maxBytes);
    return text === undefined ? undefined : { text, file };
  }
}

function openAdminDir(root: string, adminDir: string): AdminDir {
  if (!adminDir.startsWith('/')) {
    throw new PathError(
      'INVALID_PATH',
      `the dpkg admin directory must be absolute inside the root: ${adminDir}`,
    );
  }
  return new AdminDir(RootDir.open(root), adminDir);
}

function readStatus(admin: AdminDir, limits: DpkgLimits): { entries: StatusEntry[]; file: string } {
  const status = admin.read('status', limits.status);
  if (status === undefined) {
    throw new PackageDatabaseError('DATABASE_NOT_FOUND', 'no dpkg status file', {
      file: admin.describe('status'),
    });
  }
  return { entries: parseStatus(status.text, status.file), file: status.file };
}

/** Native architecture (the `dpkg` package's) and foreign ones (the `arch` file, native removed). */
function readArchitectures(
  admin: AdminDir,
  status: { entries: StatusEntry[]; file: string },
  limits: DpkgLimits,
): { nativeArch: string; foreignArchs: string[] } {
  const dpkg = status.entries.find((e) => e.name === 'dpkg');
  if (dpkg === undefined) {
    throw new PackageDatabaseError(
      'DATABASE_CORRUPT',
      'the dpkg package is not installed, so the native architecture is unknown',
      { file: status.file },
    );
  }
  const nativeArch = dpkg.architecture;
  const arch = admin.read('arch', limits.small);
  const listed = arch === undefined ? [] : parseArchFile(arch.text, arch.file);
  return { nativeArch, foreignArchs: listed.filter((a) => a !== nativeArch && a !== 'all') };
}

/**
 * The native and foreign architectures of the dpkg database under `root`, reading only `status`
 * and `arch`. Throws DATABASE_NOT_FOUND when there is no status file.
 */
export async function readDpkgArchitectures(
  root: string,
  options: ReadDpkgOptions = {},
): Promise<{ nativeArch: string; foreignArchs: string[] }> {
  const limits = { ...DPKG_LIMITS, ...options.limits };
  const admin = openAdminDir(root, options.adminDir ?? DEFAULT_DPKG_ADMIN_DIR);
  return readArchitectures(admin, readStatus(admin, limits), limits);
}

/**
 * The `info` directory's files, by name, as host paths resolved inside the root: regular files
 * directly, symlinks through the root's resolver (never the host's).
 */
function listInfoDir(admin: AdminDir, limits: DpkgLimits): { dir: string; files: Map<string, string> } {
  const files = new Map<string, string>();
  const dir = admin.hostPath('info') ?? admin.describe('info');
  let handle: fs.Dir;
  try {
    handle = fs.opendirSync(dir, { bufferSize: 1024 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { dir, files };
    throw new PathError('IO_ERROR', `cannot read the directory ${dir}: ${code ?? String(e)}`, { cause: e });
  }
  try {
    for (let entry = handle.readSync(); entry !== null; entry = handle.readSync()) {
      if (files.size >= limits.infoEntries) {
        const message = `more than ${limits.infoEntries} entries in the directory`;
        throw new PackageDatabaseError('DATABASE_TOO_LARGE', message, { file: dir });
      }
      if (entry.isSymbolicLink()) {
        const host = admin.hostPath(`info/${entry.name}`);
        if (host !== undefined) files.set(entry.name, host);
      } else {
        // Anything else (a FIFO, a directory…) is kept, to be refused as "not a regular file".
        // `dir` is normalised and a directory entry's name has no `/`: no path.join needed.
        files.set(entry.name, `${dir}/${entry.name}`);
      }
    }
  } finally {
    handle.closeSync();
  }
  return { dir, files };
}

/**
 * Name of a package's files in `info/`: `<name>:<arch>` for `Multi-Arch: same` packages in the
 * multiarch layout (info/format `1`, dpkg ≥ 1.16.2), `<name>` otherwise (dpkg's
 * pkg_infodb_get_file()).
 */
function infoName(entry: StatusEntry, format: string): string {
  return format === '1' && entry.multiArch === 'same' ? `${entry.name}:${entry.architecture}` : entry.name;
}

function readInfoFormat(infoFiles: Map<string, string>, limits: DpkgLimits): string {
  const file = infoFiles.get('format');
  if (file === undefined) return '0'; // dpkg's name for the layout before the file existed
  const format = readDatabaseText(file, limits.small)?.trim() ?? '0';
  if (format !== '0' && format !== '1') {
    const message = `unknown info database format ${JSON.stringify(format)}`;
    throw new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line: 1 });
  }
  return format;
}

/**
 * The files of a package, each with its md5sums digest when it has one; `unmatched` counts the
 * md5sums paths that named no listed file.
 *
 * md5sums is usually in the order of the files list (both sorted by name in packages built
 * since dpkg-deb sorts its tar members), so the two are first walked together, matching each file
 * against the next md5sums line by a plain comparison; only what that leaves (files lists in the
 * older unsorted tar order, md5sums lines out of step) is matched through a Map. The result is
 * the same as a Map lookup of every file (for paths named once each), at a fraction of the hashing. A listed path followed by
 * one of its own children is a directory (dpkg lists a directory before what it holds), which
 * md5sums never names: it is not looked up. Each object is made whole at once: adding `digest`
 * later would cost every one of ~100,000 objects a second allocation.
 */
export function filesWithDigests(
  paths: string[],
  sums: Md5sums | undefined,
): { files: InstalledFile[]; unmatched: number } {
  const files = new Array<InstalledFile>(paths.length);
  if (sums === undefined) {
    for (let i = 0; i < paths.length; i++) files[i] = { path: paths[i] as string };
    return { files, unmatched: 0 };
  }
  const { names, hexes } = sums;
  const digests = new Array<string | undefined>(paths.length);
  const pending: number[] = [];
  let next = 0; // md5sums lines before `next` are matched; none after it is
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i] as string;
    const following = paths[i + 1];
    if (
      following !== undefined &&
      following.length > p.length &&
      following.charCodeAt(p.length) === 0x2f &&
      following.startsWith(p)
    ) {
      continue; // a directory
    }
    const name = names[next];
    if (name !== undefined && p.length === name.length + 1 && p.endsWith(name)) {
      digests[i] = hexes[next++];
    } else {
      pending.push(i);
    }
  }
  let matched = next;
  if (next < names.length && pending.length > 0) {
    const rest = new Map<string, string>();
    for (let k = next; k < names.length; k++) rest.set(names[k] as string, hexes[k] as string);
    for (const i of pending) {
      const hex = rest.get((paths[i] as string).slice(1));
      if (hex !== undefined) {
        digests[i] = hex;
        matched++;
      }
    }
  }
  for (let i = 0; i < paths.length; i++) {
    const hex = digests[i];
    files[i] =
      hex === undefined
        ? { path: paths[i] as string }
        : { path: paths[i] as string, digest: { algorithm: 'md5', hex } };
  }
  return { files, unmatched: names.length - matched };
}

function readPackage(
  entry: StatusEntry,
  infoFiles: Map<string, string>,
  infoDir: string,
  format: string,
  limits: DpkgLimits,
  digests: boolean,
): { pkg: DpkgPackage; notes: DpkgNote[] } {
  const notes: DpkgNote[] = [];
  const key = `${entry.name}:${entry.architecture}`;
  const base = infoName(entry, format);
  const listFile = infoFiles.get(`${base}.list`);
  const md5File = digests ? infoFiles.get(`${base}.md5sums`) : undefined;
  const listText = listFile === undefined ? undefined : readDatabaseText(listFile, limits.list);
  const md5Text = md5File === undefined ? undefined : readDatabaseText(md5File, limits.md5sums);

  let paths: string[] = [];
  if (listText === undefined || listFile === undefined) {
    // What dpkg itself does: "files list file for package '…' missing; assuming package has no
    // files currently installed".
    notes.push({
      file: path.join(infoDir, `${base}.list`),
      package: key,
      message: `no files list for ${key}: taken as owning no files, as dpkg does`,
    });
  } else {
    paths = parseFileList(listText, listFile);
  }
  const sums = md5Text === undefined || md5File === undefined ? undefined : parseMd5sums(md5Text, md5File);
  const { files, unmatched } = filesWithDigests(paths, sums);
  if (unmatched > 0 && md5File !== undefined) {
    notes.push({
      file: md5File,
      package: key,
      message: `${unmatched} path(s) in the md5sums of ${key} are not in its files list`,
    });
  }

  for (const c of entry.conffiles) {
    // A linear search: a package has a few conffiles, and hashing every path to find them costs more.
    const f = files.find((file) => file.path === c.path);
    if (f === undefined) {
      // Obsolete conffiles are no longer shipped; remove-on-upgrade ones are dropped from the list.
      if (!c.obsolete && !c.removeOnUpgrade && listFile !== undefined) {
        notes.push({
          file: listFile,
          package: key,
          message: `conffile ${c.path} of ${key} is not in its files list`,
        });
      }
      continue;
    }
    f.conffile = true;
    // Conffiles are usually not in md5sums; the status file's hash is the shipped content's.
    if (f.digest === undefined && c.hash !== 'newconffile') f.digest = { algorithm: 'md5', hex: c.hash };
  }

  const pkg: DpkgPackage = {
    name: entry.name,
    version: entry.version,
    architecture: entry.architecture,
    source: entry.source,
    status: entry.status,
    files,
    state: entry.state,
    multiArch: entry.multiArch,
    conffiles: entry.conffiles,
    listFile: listText === undefined ? undefined : listFile,
  };
  return { pkg, notes };
}

/**
 * Reads dpkg's database under `root` (default admin dir `/var/lib/dpkg`, resolved inside the
 * root: an absolute symlink there points into the root, never at the host's database).
 *
 * Everything in it is untrusted: each file has a size cap (DPKG_LIMITS), and every name,
 * version, architecture and path is checked. A damaged, forged or truncated file is
 * DATABASE_CORRUPT (or DATABASE_TOO_LARGE) naming the host file and, where there is one, the
 * line; no status file is DATABASE_NOT_FOUND. A package without a files list is kept with no
 * files and a note, as dpkg does.
 */
export async function readDpkgDatabase(root: string, options: ReadDpkgOptions = {}): Promise<DpkgDatabase> {
  const limits = { ...DPKG_LIMITS, ...options.limits };
  const admin = openAdminDir(root, options.adminDir ?? DEFAULT_DPKG_ADMIN_DIR);
  const status = readStatus(admin, limits);
  const archs = readArchitectures(admin, status, limits);
  const diversions = admin.read('diversions', limits.diversions);
  const info = listInfoDir(admin, limits);
  const format = readInfoFormat(info.files, limits);
  await yieldToEventLoop();
  const read: Array<{ pkg: DpkgPackage; notes: DpkgNote[] }> = [];
  for (const [i, entry] of status.entries.entries()) {
    if (i > 0 && i % PACKAGES_PER_TURN === 0) await yieldToEventLoop();
    read.push(readPackage(entry, info.files, info.dir, format, limits, options.digests !== false));
  }
  const all = read.map((r) => r.pkg);
  return new DpkgDatabase({
    packages: all.filter((p) => INSTALLED_STATES.has(p.state)),
    partiallyInstalled: all.filter((p) => !INSTALLED_STATES.has(p.state)),
    diversions: diversions === undefined ? [] : parseDiversions(diversions.text, diversions.file),
    nativeArch: archs.nativeArch,
    foreignArchs: archs.foreignArchs,
    notes: read.flatMap((r) => r.notes),
  });
}
