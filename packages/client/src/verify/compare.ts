import type {
  AbsentReason,
  FileObservation,
  Finding,
  FindingClass,
  ManifestEntry,
  MetadataAttribute,
} from '@sysattest/core';

/**
 * Comparing one verified manifest with what is on disk. PURE: no I/O; the caller hashes the paths
 * (HashPool) and passes the observations in.
 *
 * Classes of finding (ARCHITECTURE.md "Client result classes", plus what an inspection can fail with):
 *
 * | class             | when                                                                        |
 * |-------------------|-----------------------------------------------------------------------------|
 * | `modified`        | a regular file (or hard link) whose sha256 or size differs                  |
 * | `metadata`        | mode (incl. setuid/setgid/sticky), uid, gid, capabilities, symlink target,  |
 * |                   | device numbers differ — one finding per attribute (`attribute` names it)    |
 * | `replaced`        | the path is there but of another type (file → symlink, …)                   |
 * | `missing`         | the path is not there                                                       |
 * | `config-modified` | any of the above, for a conffile: reported, but a failure only with        |
 * |                   | `includeConfig` (`detail` says what differs)                               |
 * | `unexpected`      | an `absent` entry (a fresh install has no such path) that exists here: a     |
 * |                   | file where the distribution ships none is suspicious, so it is a failure    |
 * |                   | (for an absent conffile it is `config-modified` instead); not for an entry  |
 * |                   | the manifest signs as `reason: 'ghost'` (rpm %ghost: made at run time)      |
 * | `unreadable`      | the OS refused to read it (EACCES, EIO…)                                    |
 * | `unstable`        | it vanished, was swapped, or changed while being hashed: check again        |
 * | `unresolvable`    | the path cannot be resolved inside the root (a directory on the way is not   |
 * |                   | a directory, a symlink loop…)                                               |
 *
 * Rules:
 * - Hard links compare exactly like files (content and metadata of each path on its own).
 * - Capabilities are compared only when the local file has an execute bit: the hash pool reads
 *   `security.capability` only on executables, and a capability on a non-executable file is inert
 *   (execve refuses the file). A file that lost its execute bit already has a `metadata` mode finding.
 * - Owners: when the manifest names the user (group) and the root's accounts name the local uid
 *   (gid), the names are compared (dynamically allocated system ids differ between machines);
 *   otherwise the numbers are.
 * - Where to look: see `locationOf`.
 * - A packaged directory that is a mount point here: its mode is listed, not a failure, when it
 *   grants nothing more than the manifest's (see narrowerMountPoint).
 * - What excuses a path that exists where the manifest says `absent` is the SIGNED manifest
 *   alone: `reason: 'ghost'` (the generator's fresh container's rpm database says %ghost) excuses
 *   whatever is there. Without that reason (manifests made before it existed, dpkg and apk
 *   manifests, and `not-installed`: the generator's install left the file out, so the manifest
 *   has no content to compare) the path is `unexpected`, whatever the local database says: a
 *   machine's own database is editable by whoever altered the machine, so marking a planted
 *   file %ghost there excuses nothing. (A local %ghost only shows in the finding's detail.)
 * - The local package database's word (`localState`, rpm only) excuses one thing: a shipped
 *   entry the local database calls not installed (docs or languages left out on this machine,
 *   the other architecture's copy of a multilib file) is not flagged when it is MISSING. Anything
 *   there is still compared with the manifest, so a tampered database cannot hide a changed or
 *   planted file; it can only hide the deletion of such a file (see compareEntry).
 */

// The finding classes and the Finding record are the report's wire contract: declared in core.
export { FINDING_CLASSES, type Finding, type FindingClass, type MetadataAttribute } from '@sysattest/core';

export interface PackageRef {
  name: string;
  arch: string;
}

/**
 * What the machine's own package database says of a path of the package (rpm): `ghost` (%ghost:
 * owned, never shipped) or `not-installed` (left out by design on this machine).
 */
export type LocalFileState = 'ghost' | 'not-installed';

export interface CompareOptions {
  /** Count `config-modified` as a failure (default false). */
  includeConfig?: boolean;
  /** The root's accounts (RootAccounts), to compare owners by name. */
  accounts?: { users: ReadonlyMap<number, string>; groups: ReadonlyMap<number, string> };
  /** The local database's state of a path as the package names it (see the rules above). */
  localState?: (path: string) => LocalFileState | undefined;
  /** Whether a directory is a mount point here (I/O: asked only for a directory whose mode differs). */
  isMountPoint?: (location: string) => boolean;
}

/**
 * Where an entry is looked at: where `localDiversion` (the diversions the verification honours,
 * see local-claims.ts) puts it, else the path itself. The manifest's own `divertedTo` only says
 * where the file was in the generator's image (another package diverted it there); on this
 * machine dpkg put it where this machine's honoured diversions say.
 */
export function locationOf(entry: ManifestEntry, localDiversion?: (path: string) => string): string {
  return localDiversion?.(entry.path) ?? entry.path;
}

/** Permission bits as 4 octal digits, like the manifest writes them. */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function describeMode(mode: number): string {
  const special: string[] = [];
  if (mode & 0o4000) special.push('setuid');
  if (mode & 0o2000) special.push('setgid');
  if (mode & 0o1000) special.push('sticky');
  return special.length > 0 ? `${formatMode(mode)} (${special.join(', ')})` : formatMode(mode);
}

function observedType(o: FileObservation & { status: 'ok' }): string {
  return o.type === 'symlink' ? `symlink -> ${o.target}` : o.type;
}

/**
 * Compares every entry of one manifest with its observation. `observe(location, index)` returns
 * the observation of entry `index`, at `location` (see `locationOf`); undefined means it was not
 * inspected, which is reported as `unresolvable` (never silently passed). `locations`, when
 * given, are the entries' locations already worked out (in the entries' order).
 */
export function compareEntries(
  pkg: PackageRef,
  entries: readonly ManifestEntry[],
  observe: (location: string, index: number) => FileObservation | undefined,
  options: CompareOptions & {
    localDiversion?: (path: string) => string;
    locations?: readonly string[];
  } = {},
): Finding[] {
  const findings: Finding[] = [];
  const { locations, localDiversion, ...compareOptions } = options;
  // One options object for the whole manifest (this runs for every file of the machine).
  const perEntry: CompareOptions & { location?: string } = compareOptions;
  for (let k = 0; k < entries.length; k++) {
    const entry = entries[k] as ManifestEntry;
    const location = locations?.[k] ?? locationOf(entry, localDiversion);
    perEntry.location = location;
    const found = compareEntry(pkg, entry, observe(location, k), perEntry);
    for (const f of found) findings.push(f);
  }
  return findings;
}

const NO_FINDINGS: readonly Finding[] = Object.freeze([]);

/**
 * A packaged directory that is a mount point here (`/proc`, `/sys` on every running machine) shows
 * the mounted filesystem's root, not the directory the package made. Its mode is listed, not a
 * failure, only when it grants nothing the manifest does not (0555 for 0755); a mount that widens
 * access (a world-writable filesystem mounted over a packaged directory) stays a failure, and the
 * owner is compared as always.
 */
function narrowerMountPoint(
  o: FileObservation & { status: 'ok' },
  expectedMode: number,
  location: string,
  options: CompareOptions,
): boolean {
  if (o.type !== 'dir' || (o.mode & 0o7777 & ~expectedMode) !== 0) return false;
  return options.isMountPoint?.(location) === true;
}

function asMountPoint(f: Finding): Finding {
  return {
    ...f,
    detail: `${f.detail}: a mount point, whose mounted filesystem grants less than the packaged directory (not a failure)`,
    failure: false,
  };
}

/**
 * True when the observation is exactly what the entry says, attribute by attribute as below:
 * the question compareEntry answers first, without building anything, because it is the answer
 * for nearly every path of a machine. False says only "look closer".
 */
function matchesExactly(
  entry: ManifestEntry,
  o: FileObservation | undefined,
  accounts: CompareOptions['accounts'],
): boolean {
  if (o === undefined || o.status !== 'ok' || entry.type === 'absent') return false;
  if ((o.mode & 0o7777) !== parseInt(entry.mode, 8)) return false;
  if (compareOwner(entry.uid, entry.user, o.uid, accounts?.users) !== undefined) return false;
  if (compareOwner(entry.gid, entry.group, o.gid, accounts?.groups) !== undefined) return false;
  switch (entry.type) {
    case 'file':
    case 'hardlink':
      return (
        o.type === 'file' &&
        o.sha256 === entry.sha256 &&
        o.size === entry.size &&
        ((o.mode & 0o111) === 0 || o.capability?.raw === entry.capabilities)
      );
    case 'dir':
      return o.type === 'dir';
    case 'symlink':
      return o.type === 'symlink' && o.target === entry.target;
    default:
      return false; // devices, FIFOs, sockets: rare, compared in full
  }
}

/** Compares one entry with the observation of its location. */
export function compareEntry(
  pkg: PackageRef,
  entry: ManifestEntry,
  observation: FileObservation | undefined,
  options: CompareOptions & { location?: string } = {},
): readonly Finding[] {
  if (matchesExactly(entry, observation, options.accounts)) return NO_FINDINGS;
  const includeConfig = options.includeConfig === true;
  const location = options.location ?? entry.path;
  const conffile = entry.conffile === true;
  // Built only for a finding: most entries match, and this runs for every file of the machine.
  const where = (): string =>
    location !== entry.path ? `${entry.path} (diverted to ${location})` : entry.path;
  const make = (
    cls: FindingClass,
    detail: string,
    extra: { expected?: string; actual?: string; attribute?: MetadataAttribute } = {},
  ): Finding => {
    // A conffile's content, metadata, type or presence is the administrator's business.
    const asConfig =
      conffile &&
      (cls === 'modified' ||
        cls === 'metadata' ||
        cls === 'replaced' ||
        cls === 'missing' ||
        cls === 'unexpected');
    const finalClass: FindingClass = asConfig ? 'config-modified' : cls;
    return {
      class: finalClass,
      package: pkg.name,
      arch: pkg.arch,
      path: entry.path,
      ...(location !== entry.path ? { location } : {}),
      ...(extra.attribute !== undefined ? { attribute: extra.attribute } : {}),
      ...(extra.expected !== undefined ? { expected: extra.expected } : {}),
      ...(extra.actual !== undefined ? { actual: extra.actual } : {}),
      detail: asConfig ? `conffile: ${detail}` : detail,
      failure: finalClass === 'config-modified' ? includeConfig : true,
    };
  };

  // rpm %ghost by the signed manifest's word: whatever is there was made at run time.
  if (entry.type === 'absent' && entry.reason === 'ghost') return [];
  const local = options.localState?.(entry.path);
  if (observation === undefined) {
    return [make('unresolvable', `${where()} was not inspected`)];
  }
  // Left out on this machine by design (rpm --excludedocs, %_install_langs): a deletion of such
  // a file is all a tampered local database could hide here; content is always compared.
  if (observation.status === 'missing' && entry.type !== 'absent' && local === 'not-installed') return [];
  switch (observation.status) {
    case 'missing':
      return entry.type === 'absent'
        ? []
        : [make('missing', `${where()} is missing`, { expected: entry.type })];
    case 'unreadable':
      return [make('unreadable', `${where()} cannot be read: ${observation.errno} ${observation.message}`)];
    case 'vanished':
      return [make('unstable', `${where()} vanished while it was being inspected`)];
    case 'changed':
    case 'changed-while-hashing':
      return [make('unstable', `${where()} ${observation.status}: ${observation.detail}`)];
    case 'error':
      return [
        make('unresolvable', `${where()} cannot be resolved: ${observation.code} ${observation.message}`),
      ];
    case 'ok':
      break;
  }
  const o = observation;

  if (entry.type === 'absent') {
    return [
      make('unexpected', `${where()} exists (${observedType(o)}), but ${absentWhy(entry.reason, local)}`, {
        expected: 'absent',
        actual: o.type,
      }),
    ];
  }

  const expectedType = entry.type === 'hardlink' ? 'file' : entry.type;
  if (o.type !== expectedType) {
    return [
      make('replaced', `${where()} should be a ${expectedType} but is a ${observedType(o)}`, {
        expected: expectedType,
        actual: o.type,
      }),
    ];
  }

  const out: Finding[] = [];
  if ((entry.type === 'file' || entry.type === 'hardlink') && o.type === 'file') {
    if (o.sha256 !== entry.sha256 || o.size !== entry.size) {
      const sizes = o.size !== entry.size ? ` (size ${entry.size} → ${o.size})` : '';
      out.push(
        make('modified', `${where()} content differs${sizes}`, { expected: entry.sha256, actual: o.sha256 }),
      );
    }
  }

  const expectedMode = parseInt(entry.mode, 8);
  const mode = o.mode & 0o7777;
  if (mode !== expectedMode) {
    const finding = make(
      'metadata',
      `${where()} mode ${describeMode(expectedMode)} → ${describeMode(mode)}`,
      {
        attribute: 'mode',
        expected: formatMode(expectedMode),
        actual: formatMode(mode),
      },
    );
    out.push(narrowerMountPoint(o, expectedMode, location, options) ? asMountPoint(finding) : finding);
  }
  const owner = compareOwner(entry.uid, entry.user, o.uid, options.accounts?.users);
  if (owner !== undefined) {
    out.push(
      make('metadata', `${where()} owner ${owner.expected} → ${owner.actual}`, {
        attribute: 'uid',
        ...owner,
      }),
    );
  }
  const group = compareOwner(entry.gid, entry.group, o.gid, options.accounts?.groups);
  if (group !== undefined) {
    out.push(
      make('metadata', `${where()} group ${group.expected} → ${group.actual}`, {
        attribute: 'gid',
        ...group,
      }),
    );
  }

  if ((entry.type === 'file' || entry.type === 'hardlink') && o.type === 'file' && (o.mode & 0o111) !== 0) {
    const expected = entry.capabilities;
    const actual = o.capability?.raw;
    if (expected !== actual) {
      const names = o.capability?.permitted?.join(',');
      out.push(
        make(
          'metadata',
          `${where()} capabilities ${expected ?? 'none'} → ${actual ?? 'none'}${names ? ` (${names})` : ''}`,
          { attribute: 'capabilities', expected: expected ?? '', actual: actual ?? '' },
        ),
      );
    }
  }

  if (entry.type === 'symlink' && o.type === 'symlink' && o.target !== entry.target) {
    out.push(
      make('metadata', `${where()} points to ${o.target} instead of ${entry.target}`, {
        attribute: 'target',
        expected: entry.target,
        actual: o.target,
      }),
    );
  }

  if (
    (entry.type === 'chardev' || entry.type === 'blockdev') &&
    (o.type === 'chardev' || o.type === 'blockdev') &&
    (o.rdevMajor !== entry.major || o.rdevMinor !== entry.minor)
  ) {
    const expected = `${entry.major}:${entry.minor}`;
    const actual = `${o.rdevMajor}:${o.rdevMinor}`;
    out.push(
      make('metadata', `${where()} device ${expected} → ${actual}`, {
        attribute: 'device',
        expected,
        actual,
      }),
    );
  }
  return out;
}

/** Why an absent path that exists is flagged, for the finding's detail. */
function absentWhy(reason: AbsentReason | undefined, local: LocalFileState | undefined): string {
  if (reason === 'not-installed') {
    return (
      'the manifest was made where the package manager left this file out (docs or languages ' +
      'excluded), so it has no content to compare it with'
    );
  }
  const fresh = 'a fresh install of the package has no such path';
  if (local === 'ghost') {
    return (
      `${fresh}; the local rpm database calls it %ghost but the signed manifest does not ` +
      '(a manifest made before manifests recorded %ghost, or a database edited to hide the file)'
    );
  }
  return fresh;
}

function compareOwner(
  expectedId: number,
  expectedName: string | undefined,
  actualId: number,
  names: ReadonlyMap<number, string> | undefined,
): { expected: string; actual: string } | undefined {
  const actualName = names?.get(actualId);
  if (expectedName !== undefined && actualName !== undefined) {
    return expectedName === actualName
      ? undefined
      : { expected: `${expectedName}(${expectedId})`, actual: `${actualName}(${actualId})` };
  }
  return expectedId === actualId ? undefined : { expected: String(expectedId), actual: String(actualId) };
}
