import type { Diversion, ManifestEntry } from '@sysattest/core';
import type { Finding, PackageRef } from './compare.js';
import { formatMode } from './compare.js';
import type { StatOverride } from './statoverride.js';

/**
 * What the checked machine's own dpkg files claim about where a packaged file lives
 * (`var/lib/dpkg/diversions`) and what mode and owner it has (`var/lib/dpkg/statoverride`),
 * judged against the signed manifests. PURE: the caller reads the files and the manifests.
 *
 * Both files are writable by whoever rooted the machine, so neither may relax an expectation
 * that came from a signed manifest (ARCHITECTURE.md, trust model rule 6):
 *
 * | claim                                               | honoured?                         | finding                           |
 * |-----------------------------------------------------|-----------------------------------|-----------------------------------|
 * | diversion by package D, declared in D's verified    | yes: the diverted package's file  | none                              |
 * | manifest (same `from` and `to`)                     | is checked at the divert-to path  |                                   |
 * | diversion by D, whose verified manifest does not    | no: checked at the original path  | `diversion`, failure              |
 * | declare it                                          |                                   |                                   |
 * | diversion by an unverified D of a path a verified   | no: checked at the original path  | `diversion`, failure              |
 * | package ships                                       |                                   |                                   |
 * | diversion by an unverified D of no verified path    | no (it relaxes nothing checked)   | `diversion`, no failure (D is     |
 * |                                                     |                                   | unverified: coverage already)     |
 * | local diversion (`:`, dpkg-divert --local)          | no                                | `diversion`, failure              |
 * | … accepted by the operator (acceptLocalDiversions,  | yes                               | `diversion`, accepted, no failure |
 * | or the path in acceptDiversions)                    |                                   |                                   |
 * | stat override equal to the manifest                 | (nothing to relax)                | none                              |
 * | stat override that only lowers or moves privilege   | yes: its mode/owner are expected  | `statoverride`, no failure        |
 * | stat override that raises privilege (ESCALATES)     | no: the manifest's are expected   | `statoverride`, failure           |
 * | … the path in allowStatOverrides                    | yes                               | `statoverride`, accepted          |
 *
 * A package's own maintainer scripts' diversions and overrides are seen by the generator in its
 * fresh container, so on a clean machine they are declared (diversions) or equal to the manifest
 * (overrides) and raise nothing.
 */

/** What the operator chose to accept (each accepted claim is still listed in the report). */
export interface LocalClaimPolicy {
  /** Honour every local (`:`) diversion. */
  acceptLocalDiversions?: boolean;
  /** Diversions honoured whoever made them, by their `from` path. */
  acceptDiversions?: readonly string[];
  /** Stat overrides accepted even when they raise privilege, by path. */
  allowStatOverrides?: readonly string[];
}

/** Diversions as the diverting packages' verified manifests declare them. */
export interface DeclaredDiversions {
  /** The verified manifest of the installed package `name` declares this diversion. */
  declares(name: string, from: string, to: string): boolean;
  /** Whether the installed package `name` has a verified manifest. */
  isVerified(name: string): boolean;
  /** Whether a verified manifest of another package than the diverting one ships `path`. */
  shipsVerified(path: string): boolean;
}

export interface DiversionJudgement {
  /** Diversions honoured, by `from`: a packaged file at `from` is looked at `to`. */
  honoured: Map<string, Diversion>;
  findings: Finding[];
}

const LOCAL = ':';

/** Judges every diversion of the machine (see the table above). */
export function judgeDiversions(
  diversions: readonly Diversion[],
  declared: DeclaredDiversions,
  policy: LocalClaimPolicy,
): DiversionJudgement {
  const honoured = new Map<string, Diversion>();
  const findings: Finding[] = [];
  const acceptedPaths = new Set(policy.acceptDiversions ?? []);
  for (const d of diversions) {
    if (d.by !== LOCAL && declared.declares(d.by, d.from, d.to)) {
      honoured.set(d.from, d);
      continue;
    }
    const accepted = acceptedPaths.has(d.from) || (d.by === LOCAL && policy.acceptLocalDiversions === true);
    if (accepted) honoured.set(d.from, d);
    const relaxesNothing = d.by !== LOCAL && !declared.isVerified(d.by) && !declared.shipsVerified(d.from);
    findings.push(diversionFinding(d, declared, accepted, relaxesNothing));
  }
  return { honoured, findings };
}

function diversionFinding(
  d: Diversion,
  declared: DeclaredDiversions,
  accepted: boolean,
  relaxesNothing: boolean,
): Finding {
  const what = `diversion of ${d.from} to ${d.to}`;
  const why =
    d.by === LOCAL
      ? 'made locally (dpkg-divert --local), not by a package'
      : declared.isVerified(d.by)
        ? `claimed by ${d.by}, whose signed manifest does not declare it`
        : `claimed by ${d.by}, which has no verified manifest`;
  const outcome = accepted
    ? `accepted by configuration: the packaged file is checked at ${d.to}`
    : relaxesNothing
      ? 'not honoured; no verified package ships that path'
      : `not honoured: the packaged file is checked at ${d.from}`;
  return {
    class: 'diversion',
    package: d.by === LOCAL ? '' : d.by,
    arch: '',
    path: d.from,
    location: d.to,
    actual: d.by,
    detail: `${what} ${why}; ${outcome}`,
    failure: !accepted && !relaxesNothing,
    ...(accepted ? { accepted: true } : {}),
  };
}

/**
 * Where a package's path is looked at: the divert-to path of an honoured diversion made by
 * another package (dpkg never diverts a package's own files from itself), else the path.
 */
export function locationUnder(
  honoured: ReadonlyMap<string, Diversion>,
  path: string,
  pkgName: string,
): string {
  const d = honoured.get(path);
  return d === undefined || d.by === pkgName ? path : d.to;
}

/** The root's accounts, to turn override names into ids and back. */
export interface Accounts {
  users: ReadonlyMap<number, string>;
  groups: ReadonlyMap<number, string>;
}

export interface OverrideJudgement {
  /** What the entry is expected to be: the override applied when it is honoured. */
  entry: ManifestEntry;
  finding?: Finding;
}

/**
 * Groups whose membership is privilege in itself: giving a file one of them is an escalation
 * like giving it root (disk and kmem read raw devices and memory, shadow the password hashes).
 */
const PRIVILEGED_GROUPS = new Set(['root', 'shadow', 'disk', 'kmem', 'sudo', 'wheel', 'adm']);

/** Mode bits an override must not add: setuid, setgid, world-writable. */
const ESCALATING_BITS = 0o4000 | 0o2000 | 0o0002;

/**
 * Judges the stat override of one manifest entry at `location` (see the table above).
 * `allowed`: the operator named the path in allowStatOverrides.
 */
export function judgeStatOverride(
  pkg: PackageRef,
  entry: ManifestEntry,
  location: string,
  override: StatOverride | undefined,
  accounts: Accounts,
  allowed: boolean,
): OverrideJudgement {
  if (override === undefined || entry.type === 'absent' || entry.type === 'symlink') return { entry };
  const applied = applyStatOverride(entry, override, accounts);
  const changes = differences(entry, applied);
  if (changes.length === 0) return { entry };
  const raises = escalation(entry, applied, accounts);
  const honoured = raises === undefined || allowed;
  const outcome =
    raises === undefined
      ? 'its values are expected'
      : allowed
        ? `${raises}; allowed by configuration, its values are expected`
        : `${raises}: not honoured, the signed manifest's values are expected`;
  const where = location === entry.path ? entry.path : `${entry.path} (at ${location})`;
  const finding: Finding = {
    class: 'statoverride',
    package: pkg.name,
    arch: pkg.arch,
    path: entry.path,
    ...(location !== entry.path ? { location } : {}),
    expected: describe(entry),
    actual: describe(applied),
    detail: `${where}: a local stat override sets ${changes.join(', ')}; ${outcome}`,
    failure: !honoured,
    ...(raises !== undefined && allowed ? { accepted: true } : {}),
  };
  return { entry: honoured ? applied : entry, finding };
}

type Owned = ManifestEntry & { mode: string; uid: number; gid: number; user?: string; group?: string };

/** A user's (group's) name for comparison: its name, else the root's accounts', else `#id` (0 is root). */
function ownerName(id: number, name: string | undefined, names: ReadonlyMap<number, string>): string {
  return name ?? names.get(id) ?? (id === 0 ? 'root' : `#${id}`);
}

function describe(e: ManifestEntry): string {
  const o = e as Owned;
  return `${o.user ?? o.uid}:${o.group ?? o.gid} ${o.mode}`;
}

/** What an override changes, for a human: `mode 0755 → 4755`, `owner root → games`. */
function differences(before: ManifestEntry, after: ManifestEntry): string[] {
  const a = before as Owned;
  const b = after as Owned;
  const out: string[] = [];
  if (a.mode !== b.mode) out.push(`mode ${a.mode} → ${b.mode}`);
  if ((a.user ?? `#${a.uid}`) !== (b.user ?? `#${b.uid}`) && a.uid !== b.uid)
    out.push(`owner ${a.user ?? a.uid} → ${b.user ?? b.uid}`);
  if ((a.group ?? `#${a.gid}`) !== (b.group ?? `#${b.gid}`) && a.gid !== b.gid)
    out.push(`group ${a.group ?? a.gid} → ${b.group ?? b.gid}`);
  return out;
}

/**
 * Why an override raises privilege over the manifest, or undefined when it does not: it adds
 * setuid, setgid or world-write; it makes root (or a privileged group) the owner (group); or it
 * changes whose privilege a setuid (setgid) file carries.
 */
export function escalation(
  before: ManifestEntry,
  after: ManifestEntry,
  accounts: Accounts,
): string | undefined {
  const a = before as Owned;
  const b = after as Owned;
  const oldMode = parseInt(a.mode, 8);
  const newMode = parseInt(b.mode, 8);
  const added = newMode & ~oldMode & ESCALATING_BITS;
  if (added !== 0) return `it adds ${bitNames(added)}`;
  const oldUser = ownerName(a.uid, a.user, accounts.users);
  const newUser = ownerName(b.uid, b.user, accounts.users);
  const oldGroup = ownerName(a.gid, a.group, accounts.groups);
  const newGroup = ownerName(b.gid, b.group, accounts.groups);
  if (newUser !== oldUser) {
    if (newUser === 'root') return 'it makes root the owner';
    if (newMode & 0o4000) return `it changes the owner of a setuid file to ${newUser}`;
  }
  if (newGroup !== oldGroup) {
    if (PRIVILEGED_GROUPS.has(newGroup)) return `it gives the file to group ${newGroup}`;
    if (newMode & 0o2000) return `it changes the group of a setgid file to ${newGroup}`;
  }
  return undefined;
}

function bitNames(bits: number): string {
  const names: string[] = [];
  if (bits & 0o4000) names.push('setuid');
  if (bits & 0o2000) names.push('setgid');
  if (bits & 0o0002) names.push('world-write');
  return names.join(' and ');
}

/**
 * The entry as dpkg would leave it under the override: its mode's permission bits and its owner
 * replaced. Names resolve through the root's accounts (name → id) so a mismatch can be named.
 */
export function applyStatOverride(entry: ManifestEntry, o: StatOverride, accounts: Accounts): ManifestEntry {
  if (entry.type === 'absent' || entry.type === 'symlink') return entry;
  const idOf = (names: ReadonlyMap<number, string>, name: string): number | undefined => {
    for (const [id, n] of names) if (n === name) return id;
    return undefined;
  };
  const next = { ...entry } as Owned;
  next.mode = formatMode(o.mode);
  if (o.user !== undefined) {
    next.user = o.user;
    next.uid =
      idOf(accounts.users, o.user) ?? (o.user === entry.user ? entry.uid : o.user === 'root' ? 0 : -1);
  } else if (o.uid !== undefined) {
    next.uid = o.uid;
    delete next.user;
  }
  if (o.group !== undefined) {
    next.group = o.group;
    next.gid =
      idOf(accounts.groups, o.group) ?? (o.group === entry.group ? entry.gid : o.group === 'root' ? 0 : -1);
  } else if (o.gid !== undefined) {
    next.gid = o.gid;
    delete next.group;
  }
  return next;
}
