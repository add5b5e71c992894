import { PackageDatabaseError, VersionError } from '../../errors.js';
import { dpkgVersionScheme } from '../../versions/index.js';
import { parseDeb822, type Deb822Field, type Deb822Paragraph } from './deb822.js';
import { isArchName, isPackageName, pathProblem, show } from './fields.js';

/** The third word of `Status:` (dpkg-query(1), "Package states"). */
export type DpkgState =
  | 'not-installed'
  | 'config-files'
  | 'half-installed'
  | 'unpacked'
  | 'half-configured'
  | 'triggers-awaited'
  | 'triggers-pending'
  | 'installed';

/**
 * States in which the package is installed and configured. `triggers-awaited` and
 * `triggers-pending` are configured packages waiting for a trigger to run: every file is in place,
 * and dpkg-query shows them as installed too (`iW`, `it`). Only this third word of `Status:`
 * decides: the selection (`hold ok installed`, or `deinstall ok installed` for a package marked
 * for removal but not yet removed) says what should happen next, not what is on disk.
 */
export const INSTALLED_STATES: ReadonlySet<DpkgState> = new Set<DpkgState>([
  'installed',
  'triggers-awaited',
  'triggers-pending',
]);

/**
 * States in which the package's files are (or some of them are) on disk but the package is not
 * installed: an interrupted unpack (`half-installed`), unpacked but not configured (`unpacked`),
 * a failed configure (`half-configured`). They are read like installed ones but reported apart.
 */
export const PARTIAL_STATES: ReadonlySet<DpkgState> = new Set<DpkgState>([
  'half-installed',
  'unpacked',
  'half-configured',
]);

const WANTS = new Set(['unknown', 'install', 'hold', 'deinstall', 'purge']);
// `hold` and `hold-reinstreq` are what dpkg before 1.13 wrote; dpkg still reads them.
const EFLAGS = new Set(['ok', 'reinstreq', 'hold', 'hold-reinstreq']);
const STATES = new Set<string>(['not-installed', 'config-files', ...PARTIAL_STATES, ...INSTALLED_STATES]);
const MULTI_ARCH = new Set(['no', 'same', 'foreign', 'allowed']);
const MD5_HEX = /^[0-9a-f]{32}$/;

/** One entry of a package's `Conffiles:` field. */
export interface DpkgConffile {
  path: string;
  /**
   * MD5 (lower-case hex) of the conffile as the package shipped it, or `newconffile` for one that
   * was unpacked but never configured.
   */
  hash: string;
  /** The package no longer ships it; dpkg keeps it until it is removed or purged. */
  obsolete: boolean;
  /** Shipped, but to be removed at the next upgrade (dpkg 1.20.6 and later). */
  removeOnUpgrade: boolean;
}

/** A status paragraph of a package whose files are on disk. */
export interface StatusEntry {
  name: string;
  architecture: string;
  version: string;
  source: { name: string; version: string };
  /** `Status:` as written (`install ok installed`). */
  status: string;
  state: DpkgState;
  /** `Multi-Arch:` (`no` when absent). */
  multiArch: 'no' | 'same' | 'foreign' | 'allowed';
  conffiles: DpkgConffile[];
  /** 1-based line of the paragraph in the status file. */
  line: number;
}

function corrupt(message: string, file: string, line: number): PackageDatabaseError {
  return new PackageDatabaseError('DATABASE_CORRUPT', message, { file, line });
}

class ParagraphReader {
  constructor(
    private readonly paragraph: Deb822Paragraph,
    private readonly file: string,
  ) {}

  get(name: string): Deb822Field | undefined {
    return this.paragraph.fields.get(name.toLowerCase());
  }

  required(name: string, what: string): Deb822Field {
    const f = this.get(name);
    if (f === undefined || f.value === '') {
      throw corrupt(`${what} has no ${name} field`, this.file, this.paragraph.line);
    }
    return f;
  }

  version(f: Deb822Field, value: string, what: string): string {
    try {
      dpkgVersionScheme.validate(value);
    } catch (e) {
      if (e instanceof VersionError) throw corrupt(`${what}: ${e.message}`, this.file, f.line);
      throw e;
    }
    return value;
  }
}

/**
 * Parses dpkg's `status` file and returns the entries of packages whose files are on disk
 * (INSTALLED_STATES and PARTIAL_STATES), every field checked: name (Debian Policy syntax), Status
 * (three known words), Version (dpkgVersionScheme), Architecture, Source (`name` or
 * `name (version)`), Multi-Arch, Conffiles. Entries in `not-installed` or `config-files` state
 * (nothing but, perhaps, conffiles on disk) only have their name and Status checked, then are
 * left out. `file` is the host path named in errors.
 */
export function parseStatus(text: string, file: string): StatusEntry[] {
  const entries: StatusEntry[] = [];
  const seen = new Map<string, number>();
  for (const paragraph of parseDeb822(text, file, { dpkgWritten: true })) {
    const r = new ParagraphReader(paragraph, file);
    const packageField = r.required('Package', `the paragraph at line ${paragraph.line}`);
    const name = packageField.value;
    if (!isPackageName(name)) throw corrupt(`invalid package name ${show(name)}`, file, packageField.line);
    const what = `package ${name}`;

    const statusField = r.required('Status', what);
    const words = statusField.value.split(' ');
    const [want = '', eflag = '', state = ''] = words;
    if (words.length !== 3 || !WANTS.has(want) || !EFLAGS.has(eflag) || !STATES.has(state)) {
      throw corrupt(`${what}: invalid Status ${show(statusField.value)}`, file, statusField.line);
    }
    const dpkgState = state as DpkgState;
    if (!INSTALLED_STATES.has(dpkgState) && !PARTIAL_STATES.has(dpkgState)) continue;

    const archField = r.required('Architecture', what);
    const architecture = archField.value;
    if (!isArchName(architecture)) {
      throw corrupt(`${what}: invalid Architecture ${show(architecture)}`, file, archField.line);
    }
    const versionField = r.required('Version', what);
    const version = r.version(versionField, versionField.value, `${what}: invalid Version`);

    const key = `${name}:${architecture}`;
    const previous = seen.get(key);
    if (previous !== undefined) {
      throw corrupt(`${key} is listed twice (first at line ${previous})`, file, paragraph.line);
    }
    seen.set(key, paragraph.line);

    entries.push({
      name,
      architecture,
      version,
      source: parseSource(r, name, version, what, file),
      status: statusField.value,
      state: dpkgState,
      multiArch: parseMultiArch(r, what, file),
      conffiles: parseConffiles(r.get('Conffiles'), what, file),
      line: paragraph.line,
    });
  }
  return entries;
}

/** `Source: foo` or `Source: foo (1.2-3)`; absent means the binary's own name and version. */
function parseSource(
  r: ParagraphReader,
  name: string,
  version: string,
  what: string,
  file: string,
): { name: string; version: string } {
  const f = r.get('Source');
  if (f === undefined || f.value === '') return { name, version };
  const m = /^(\S+)(?:\s+\((\S+)\))?$/.exec(f.value);
  if (m === null || !isPackageName(m[1] ?? '')) {
    throw corrupt(`${what}: invalid Source ${show(f.value)}`, file, f.line);
  }
  const sourceVersion = m[2] === undefined ? version : r.version(f, m[2], `${what}: invalid Source version`);
  return { name: m[1] ?? name, version: sourceVersion };
}

function parseMultiArch(r: ParagraphReader, what: string, file: string): StatusEntry['multiArch'] {
  const f = r.get('Multi-Arch');
  if (f === undefined) return 'no';
  if (!MULTI_ARCH.has(f.value)) throw corrupt(`${what}: invalid Multi-Arch ${show(f.value)}`, file, f.line);
  return f.value as StatusEntry['multiArch'];
}

/**
 * `Conffiles:` lines are ` <path> <md5> [obsolete] [remove-on-upgrade]`. The path may contain
 * blanks, so (as dpkg does) the flags and then the hash are taken from the end of the line.
 */
function parseConffiles(f: Deb822Field | undefined, what: string, file: string): DpkgConffile[] {
  if (f === undefined) return [];
  const conffiles: DpkgConffile[] = [];
  const lines = f.value.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const text = (lines[i] ?? '').trim();
    if (text === '') continue;
    const lineNo = f.line + i;
    const words = text.split(' ');
    let obsolete = false;
    let removeOnUpgrade = false;
    for (;;) {
      const last = words[words.length - 1];
      if (last === 'obsolete' && !obsolete) obsolete = true;
      else if (last === 'remove-on-upgrade' && !removeOnUpgrade) removeOnUpgrade = true;
      else break;
      words.pop();
    }
    const hash = words.pop() ?? '';
    const path = words.join(' ');
    if (words.length === 0 || (!MD5_HEX.test(hash) && hash !== 'newconffile')) {
      throw corrupt(`${what}: invalid Conffiles line ${show(text)}`, file, lineNo);
    }
    const problem = pathProblem(path);
    if (problem !== undefined) throw corrupt(`${what}: conffile path ${show(path)} ${problem}`, file, lineNo);
    conffiles.push({ path, hash, obsolete, removeOnUpgrade });
  }
  return conffiles;
}
