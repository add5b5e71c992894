import { PlatformError } from '../errors.js';
import type { PackageManagerName } from '../pkgdb/installed.js';
import { isValidPlatformComponent } from './platform.js';

/**
 * The rule families for turning os-release into a platform release. A derivative uses the rule of
 * the first family named by its `ID`, else by its `ID_LIKE` (in order), but keeps its own `ID` as
 * the platform's distro: Linux Mint is `linuxmint/<its codename>`, never `ubuntu/…`.
 */
export type ReleaseFamily = 'debian' | 'ubuntu' | 'fedora' | 'rhel' | 'alpine' | 'other';

const FAMILY_OF_ID: ReadonlyMap<string, ReleaseFamily> = new Map<string, ReleaseFamily>([
  ['debian', 'debian'],
  ['ubuntu', 'ubuntu'],
  ['fedora', 'fedora'],
  ['rhel', 'rhel'],
  ['centos', 'rhel'],
  ['rocky', 'rhel'],
  ['almalinux', 'rhel'],
  ['ol', 'rhel'],
  ['alpine', 'alpine'],
]);

/** The package manager (database and tools) of each family's distributions. */
const PACKAGE_MANAGER_OF_FAMILY: Readonly<Record<ReleaseFamily, PackageManagerName | undefined>> = {
  debian: 'dpkg',
  ubuntu: 'dpkg',
  fedora: 'rpm',
  rhel: 'rpm',
  alpine: 'apk',
  other: undefined,
};

/**
 * The package family of a platform's distro id (`debian` → dpkg, `rocky` → rpm, `alpine` → apk),
 * from the same table as the release rules; undefined for a distro sysattest has no rules for.
 */
export function packageFamily(distro: string): PackageManagerName | undefined {
  const family = FAMILY_OF_ID.get(distro);
  return family === undefined ? undefined : PACKAGE_MANAGER_OF_FAMILY[family];
}

/** What besides os-release can tell a release apart (read from the root by the caller). */
export interface ReleaseEvidence {
  /** os-release, parsed. */
  osRelease: Record<string, string>;
  /** Contents of etc/debian_version, when the root has one. */
  debianVersion?: string;
  /**
   * Suites the root's apt sources name (`bookworm`, `sid`, `trixie-security`…), when the root has
   * apt sources; only used to tell Debian unstable from testing.
   */
  aptSuites?: readonly string[];
}

export function releaseFamily(osRelease: Record<string, string>): ReleaseFamily {
  const candidates = [osRelease.ID ?? '', ...(osRelease.ID_LIKE ?? '').split(/\s+/)];
  for (const id of candidates) {
    const family = FAMILY_OF_ID.get(id);
    if (family !== undefined) return family;
  }
  return 'other';
}

function notDetected(message: string): PlatformError {
  return new PlatformError('PLATFORM_NOT_DETECTED', message);
}

/** A non-empty os-release value, or undefined. */
function field(osRelease: Record<string, string>, key: string): string | undefined {
  const v = osRelease[key];
  return v === undefined || v === '' ? undefined : v;
}

/** `jessie` from `8 (jessie)`; `focal` from `20.04 LTS (Focal Fossa)`. */
function codenameInParentheses(version: string | undefined): string | undefined {
  const m = version === undefined ? null : /\(([A-Za-z][A-Za-z0-9-]*)/.exec(version);
  return m?.[1]?.toLowerCase();
}

/** Strips `-security`, `-updates`, `/updates`… so `bookworm-security` counts as `bookworm`. */
function baseSuite(suite: string): string {
  return suite
    .toLowerCase()
    .replace(/\/.*$/, '')
    .replace(/-(security|updates|backports|backports-sloppy|proposed-updates)$/, '');
}

/**
 * Debian: the codename. Stable releases have VERSION_CODENAME (and VERSION_ID); old ones (jessie)
 * only say it in VERSION (`8 (jessie)`); testing and unstable have no VERSION_ID, a
 * VERSION_CODENAME naming the next release, and an etc/debian_version like `trixie/sid`. Testing
 * and unstable are indistinguishable from os-release alone, but their packages differ, so a root
 * whose apt sources name only `sid`/`unstable` (with `experimental` allowed beside them) and not
 * the codename or `testing` is `sid`; anything else is the codename (testing).
 */
function debianRelease(evidence: ReleaseEvidence, isDebianItself: boolean): string | undefined {
  const os = evidence.osRelease;
  const slash = evidence.debianVersion?.trim().split('/');
  const codename =
    field(os, 'VERSION_CODENAME') ??
    codenameInParentheses(field(os, 'VERSION')) ??
    (slash !== undefined && slash.length === 2 && /^[a-z]+$/.test(slash[0] ?? '') ? slash[0] : undefined);
  if (codename === undefined || !isDebianItself || field(os, 'VERSION_ID') !== undefined) return codename;
  const suites = new Set((evidence.aptSuites ?? []).map(baseSuite));
  const unstable = suites.has('sid') || suites.has('unstable');
  const testing = suites.has(codename) || suites.has('testing');
  return unstable && !testing ? 'sid' : codename;
}

/** Alpine: `3.20.3` → `3.20` (repositories are per minor release); prereleases are `edge`. */
function alpineRelease(os: Record<string, string>): string | undefined {
  const id = field(os, 'VERSION_ID');
  if (id === undefined) return undefined;
  if (/_(alpha|beta|pre|rc|git)/.test(id) || /\bedge\b/.test(os.PRETTY_NAME ?? '')) return 'edge';
  const m = /^(\d+)\.(\d+)(\.|$)/.exec(id);
  return m ? `${m[1]}.${m[2]}` : id;
}

/**
 * The release part of the platform. Rules, by family:
 *  - debian: the codename, see debianRelease();
 *  - ubuntu: VERSION_CODENAME, else UBUNTU_CODENAME (`noble`);
 *  - fedora: VERSION_ID (`41`); Rawhide (REDHAT_SUPPORT_PRODUCT_VERSION=rawhide) is `rawhide`;
 *  - rhel (RHEL, CentOS, Rocky, Alma, Oracle): the major of VERSION_ID (`9.4` → `9`): a major
 *    release's minor updates ship from the same repositories, and package versions (not the
 *    minor release) are what manifests are keyed by;
 *  - alpine: major.minor of VERSION_ID (`3.20.3` → `3.20`), `edge` for prereleases;
 *  - other: VERSION_ID, else VERSION_CODENAME.
 * Throws PLATFORM_NOT_DETECTED when os-release lacks what the rule needs or gives a value that is
 * not a valid platform release.
 */
export function releaseFromOsRelease(evidence: ReleaseEvidence): string {
  const os = evidence.osRelease;
  const family = releaseFamily(os);
  let release: string | undefined;
  switch (family) {
    case 'debian':
      release = debianRelease(evidence, os.ID === 'debian');
      break;
    case 'ubuntu':
      release = field(os, 'VERSION_CODENAME') ?? field(os, 'UBUNTU_CODENAME');
      break;
    case 'fedora':
      release = os.REDHAT_SUPPORT_PRODUCT_VERSION === 'rawhide' ? 'rawhide' : field(os, 'VERSION_ID');
      break;
    case 'rhel':
      release = field(os, 'VERSION_ID')?.split('.')[0];
      break;
    case 'alpine':
      release = alpineRelease(os);
      break;
    case 'other':
      release = field(os, 'VERSION_ID') ?? field(os, 'VERSION_CODENAME');
      break;
  }
  const id = os.ID ?? '(no ID)';
  if (release === undefined || release === '') {
    throw notDetected(
      `cannot tell the release of ${id} (${family} rules): os-release has no usable version field`,
    );
  }
  if (!isValidPlatformComponent(release)) {
    throw notDetected(
      `the release ${JSON.stringify(release)} that os-release gives for ${id} is not a valid platform release`,
    );
  }
  return release;
}

/** The platform's distro: os-release ID, which must be present and a valid platform component. */
export function distroFromOsRelease(osRelease: Record<string, string>): string {
  const id = osRelease.ID;
  if (id === undefined || id === '') throw notDetected('os-release has no ID');
  if (!isValidPlatformComponent(id)) {
    throw notDetected(`os-release ID ${JSON.stringify(id)} is not a valid platform distro`);
  }
  return id;
}

/**
 * Suites named by apt sources: one-line `.list` format (`deb [options] uri suite components`) or
 * deb822 `.sources` format (`Types: deb`, `Suites: …`, `Enabled: no` skipped). Only binary (`deb`)
 * entries count. Lines that do not parse are skipped: this is evidence, not configuration.
 */
export function parseAptSources(text: string, format: 'list' | 'sources'): string[] {
  const suites: string[] = [];
  if (format === 'list') {
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').replace(/\[[^\]]*\]/, ' ');
      const words = line.trim().split(/\s+/);
      if (words[0] === 'deb' && words[2] !== undefined) suites.push(words[2]);
    }
    return suites;
  }
  for (const paragraph of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const line of paragraph.split('\n')) {
      if (line.startsWith('#')) continue;
      if (/^\s/.test(line) && last !== undefined) {
        fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`);
        continue;
      }
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      last = line.slice(0, colon).trim().toLowerCase();
      fields.set(last, line.slice(colon + 1).trim());
    }
    const types = (fields.get('types') ?? '').split(/\s+/);
    if (!types.includes('deb') || /^(no|false|0)$/i.test(fields.get('enabled') ?? '')) continue;
    suites.push(...(fields.get('suites') ?? '').split(/\s+/).filter((s) => s !== ''));
  }
  return suites;
}
