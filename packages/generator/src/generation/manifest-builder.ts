import type {
  AbsentReason,
  Diversion,
  DistroDigestAlgorithm,
  FileObservation,
  InstalledPackage,
  Manifest,
  ManifestDiversion,
  ManifestEntry,
  RootAccounts,
} from '@sysattest/core';

/**
 * Turns what the generator observed in a fresh container (the package database's file list and
 * an observation of each path, made from the host through the container's mount) into a manifest.
 * Pure: no I/O, so every rule here is tested without podman.
 */

export interface ManifestContext {
  /** `distro/release` of the platform; the package's architecture completes the id. */
  distroRelease: string;
  provenance: Manifest['provenance'];
  accounts: RootAccounts;
  /** Where a path a package ships really lives (dpkg diversions), given the package name. */
  divertedLocation(path: string, packageName: string): string;
  /**
   * Every diversion the container's package database records after the install (dpkg's
   * diversions file; none for rpm and apk): the package's own are signed in its manifest.
   */
  diversions?: readonly Diversion[];
  /** The observation of an actual (post-diversion) path. */
  observation(actualPath: string): FileObservation | undefined;
}

/** A problem that stops a package's manifest from being made: the job fails with this message. */
export class ManifestBuildError extends Error {}

export interface BuiltManifest {
  manifest: Manifest;
  /** Paths whose distribution digest disagrees with the file as installed (also in the manifest). */
  digestMismatches: string[];
}

export function buildManifest(pkg: InstalledPackage, ctx: ManifestContext): BuiltManifest {
  const entries: ManifestEntry[] = [];
  const digestMismatches: string[] = [];
  const seen = new Set<string>();
  for (const file of pkg.files) {
    if (file.path === '/' || seen.has(file.path)) continue;
    seen.add(file.path);
    const actual = ctx.divertedLocation(file.path, pkg.name);
    const o = ctx.observation(actual);
    if (o === undefined) throw new ManifestBuildError(`${pkg.name}: ${actual} was not inspected`);
    const diverted = actual !== file.path ? { divertedTo: actual } : {};
    const conffile = file.conffile ? { conffile: true as const } : {};
    // rpm %ghost (owned, never shipped: whatever is there was made at run time) and files the
    // database says are not installed by design are absent whatever is on disk, with the reason
    // signed: this container's database is the trusted side, so a client excuses a %ghost path
    // because the manifest says so, never because its own (editable) database does.
    const reason: { reason?: AbsentReason } =
      file.ghost === true
        ? { reason: 'ghost' }
        : file.notInstalled === true
          ? { reason: 'not-installed' }
          : {};
    if (o.status === 'missing' || reason.reason !== undefined) {
      entries.push({ type: 'absent', path: file.path, ...conffile, ...reason });
      continue;
    }
    if (o.status !== 'ok') {
      throw new ManifestBuildError(`${pkg.name}: cannot observe ${actual}: ${describeFailure(o)}`);
    }
    const owner = {
      mode: o.mode.toString(8).padStart(4, '0'),
      uid: o.uid,
      gid: o.gid,
      ...optional('user', ctx.accounts.users.get(o.uid)),
      ...optional('group', ctx.accounts.groups.get(o.gid)),
    };
    const common = { path: file.path, ...owner, ...conffile, ...diverted };
    switch (o.type) {
      case 'file': {
        const distro = file.digest
          ? { distroDigest: { algorithm: file.digest.algorithm, hex: file.digest.hex } }
          : {};
        let mismatch = {};
        if (file.digest) {
          const ours = ourDigest(o, file.digest.algorithm);
          if (ours === undefined) {
            throw new ManifestBuildError(
              `${pkg.name}: no ${file.digest.algorithm} computed for ${actual} ` +
                `(the hash pool must be asked for ${file.digest.algorithm})`,
            );
          }
          if (ours !== file.digest.hex) {
            mismatch = { distroDigestMismatch: true as const };
            digestMismatches.push(file.path);
          }
        }
        entries.push({
          type: 'file',
          ...common,
          size: o.size,
          sha256: o.sha256,
          ...(o.capability ? { capabilities: o.capability.raw } : {}),
          ...distro,
          ...mismatch,
          // Hard links are resolved below, once every entry is known.
          ...({ [INODE]: `${o.dev}:${o.ino}`, [NLINK]: o.nlink } as object),
        });
        break;
      }
      case 'symlink':
        if (o.targetHex !== undefined) {
          throw new ManifestBuildError(`${pkg.name}: ${actual} has a link target that is not UTF-8`);
        }
        entries.push({ type: 'symlink', ...common, target: o.target });
        break;
      case 'dir':
        entries.push({ type: 'dir', ...common });
        break;
      case 'chardev':
      case 'blockdev':
        entries.push({ type: o.type, ...common, major: o.rdevMajor, minor: o.rdevMinor });
        break;
      case 'fifo':
      case 'socket':
        entries.push({ type: o.type, ...common });
        break;
    }
  }
  entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  markHardLinks(entries);
  return {
    manifest: {
      schema: 'sysattest.manifest',
      schemaVersion: 1,
      platform: `${ctx.distroRelease}/${pkg.architecture}`,
      package: { name: pkg.name, version: pkg.version, architecture: pkg.architecture, source: pkg.source },
      provenance: ctx.provenance,
      entries,
      ...diversionsMadeBy(pkg.name, ctx.diversions ?? []),
    },
    digestMismatches,
  };
}

/**
 * The diversions `packageName` made (dpkg records the diverting package by name, without an
 * architecture), sorted by `from`; no field at all when it made none. Local diversions (`:`) and
 * other packages' are left out: a client honours a diversion only on the word of the verified
 * manifest of the package that makes it.
 */
function diversionsMadeBy(
  packageName: string,
  all: readonly Diversion[],
): { diversions?: ManifestDiversion[] } {
  const own = all
    .filter((d) => d.by === packageName)
    .map((d) => ({ from: d.from, to: d.to }))
    .sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  return own.length > 0 ? { diversions: own } : {};
}

const INODE = Symbol('inode');
const NLINK = Symbol('nlink');

/**
 * Regular files of this package that share an inode: the first path (in sort order) stays a
 * `file`, the others become `hardlink`s to it. Symbol keys are dropped from every entry (canonical
 * JSON never sees them, but they must not linger in the object either).
 */
function markHardLinks(entries: ManifestEntry[]): void {
  const first = new Map<string, string>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as ManifestEntry & { [INODE]?: string; [NLINK]?: number };
    const inode = e[INODE];
    const nlink = e[NLINK];
    delete e[INODE];
    delete e[NLINK];
    if (e.type !== 'file' || inode === undefined || nlink === undefined || nlink < 2) continue;
    const linkTo = first.get(inode);
    if (linkTo === undefined) first.set(inode, e.path);
    else entries[i] = { ...e, type: 'hardlink', linkTo };
  }
}

/**
 * Our digest of an observed file in the distribution's algorithm: MD5 (dpkg, old rpm) and SHA-1
 * (apk `Z:`), SHA-512 (rpm) only when the hash pool was asked for them (HashPoolOptions).
 */
function ourDigest(o: FileObservation, algorithm: DistroDigestAlgorithm): string | undefined {
  if (o.status !== 'ok' || o.type !== 'file') return undefined;
  const extra = o as typeof o & { sha1?: string; sha512?: string };
  switch (algorithm) {
    case 'md5':
      return o.md5;
    case 'sha1':
      return extra.sha1;
    case 'sha256':
      return o.sha256;
    case 'sha512':
      return extra.sha512;
  }
}

function optional<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}

function describeFailure(o: FileObservation): string {
  switch (o.status) {
    case 'unreadable':
      return o.message;
    case 'error':
      return o.message;
    case 'changed':
    case 'changed-while-hashing':
      return o.detail;
    default:
      return o.status;
  }
}
