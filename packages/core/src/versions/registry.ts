/**
 * Which version scheme a distribution uses, and the schemes that are implemented.
 *
 * To add a scheme: write `rpm.ts` exporting `rpmVersionScheme: VersionScheme` and add it to
 * IMPLEMENTED below. Nothing else changes.
 */
import { VersionError } from '../errors.js';
import { apkVersionScheme } from './apk.js';
import { dpkgVersionScheme } from './dpkg.js';
import { rpmVersionScheme } from './rpm.js';
import {
  VERSION_SCHEME_NAMES,
  isVersionSchemeName,
  type VersionScheme,
  type VersionSchemeName,
} from './scheme.js';

const IMPLEMENTED: readonly VersionScheme[] = [dpkgVersionScheme, rpmVersionScheme, apkVersionScheme];

const BY_NAME: ReadonlyMap<VersionSchemeName, VersionScheme> = new Map(IMPLEMENTED.map((s) => [s.name, s]));

/**
 * Distribution ids (the `ID` of os-release(5), as used in platform ids such as
 * `debian/bookworm/amd64`) and the package manager that orders their versions.
 */
export const DISTRO_VERSION_SCHEMES: ReadonlyMap<string, VersionSchemeName> = new Map<
  string,
  VersionSchemeName
>([
  // dpkg: Debian and its derivatives.
  ['debian', 'dpkg'],
  ['ubuntu', 'dpkg'],
  ['raspbian', 'dpkg'],
  ['devuan', 'dpkg'],
  ['kali', 'dpkg'],
  ['linuxmint', 'dpkg'],
  ['pop', 'dpkg'],
  ['elementary', 'dpkg'],
  ['zorin', 'dpkg'],
  ['neon', 'dpkg'],
  ['pureos', 'dpkg'],
  ['deepin', 'dpkg'],
  ['parrot', 'dpkg'],
  // rpm: the Fedora / Red Hat family, SUSE, and other rpm-based distributions.
  ['fedora', 'rpm'],
  ['rhel', 'rpm'],
  ['centos', 'rpm'],
  ['rocky', 'rpm'],
  ['almalinux', 'rpm'],
  ['ol', 'rpm'],
  ['amzn', 'rpm'],
  ['mariner', 'rpm'],
  ['azurelinux', 'rpm'],
  ['photon', 'rpm'],
  ['openeuler', 'rpm'],
  ['opensuse', 'rpm'],
  ['opensuse-leap', 'rpm'],
  ['opensuse-tumbleweed', 'rpm'],
  ['opensuse-microos', 'rpm'],
  ['sles', 'rpm'],
  ['sled', 'rpm'],
  ['sle-micro', 'rpm'],
  // apk: Alpine and distributions built on apk-tools.
  ['alpine', 'apk'],
  ['postmarketos', 'apk'],
  ['wolfi', 'apk'],
]);

function show(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}

/**
 * The scheme called `name`. Throws `VersionError` (`UNKNOWN_VERSION_SCHEME`) for a name that is no
 * scheme, and for a scheme sysattest knows but does not implement yet.
 */
export function versionSchemeFor(name: string): VersionScheme {
  if (!isVersionSchemeName(name)) {
    throw new VersionError(
      'UNKNOWN_VERSION_SCHEME',
      `unknown version scheme ${show(String(name))} (known: ${VERSION_SCHEME_NAMES.join(', ')})`,
    );
  }
  const scheme = BY_NAME.get(name);
  if (!scheme) {
    throw new VersionError('UNKNOWN_VERSION_SCHEME', `${name} version ordering is not implemented yet`);
  }
  return scheme;
}

/**
 * The name of the scheme a distribution uses (case-insensitive os-release `ID`). Throws
 * `VersionError` (`UNKNOWN_VERSION_SCHEME`) for a distribution sysattest does not know.
 */
export function versionSchemeNameForDistro(distro: string): VersionSchemeName {
  const name = typeof distro === 'string' ? DISTRO_VERSION_SCHEMES.get(distro.toLowerCase()) : undefined;
  if (name === undefined) {
    const known = [...DISTRO_VERSION_SCHEMES.keys()].join(', ');
    throw new VersionError(
      'UNKNOWN_VERSION_SCHEME',
      `no version scheme is known for distribution ${show(String(distro))} (known distributions: ${known})`,
    );
  }
  return name;
}

/** `versionSchemeFor(versionSchemeNameForDistro(distro))`. */
export function versionSchemeForDistro(distro: string): VersionScheme {
  return versionSchemeFor(versionSchemeNameForDistro(distro));
}

function resolve(scheme: VersionScheme | VersionSchemeName): VersionScheme {
  return typeof scheme === 'string' ? versionSchemeFor(scheme) : scheme;
}

/**
 * A new array with `versions` from oldest to newest. Versions the scheme considers equal
 * (`1.0` and `1.0-0` for dpkg) keep their input order. Throws `VersionError` if a version cannot
 * be compared.
 */
export function sortVersions(
  scheme: VersionScheme | VersionSchemeName,
  versions: Iterable<string>,
): string[] {
  const s = resolve(scheme);
  const out = [...versions];
  if (out.length === 1) s.compare(out[0] as string, out[0] as string); // must be comparable too
  return out.sort((a, b) => s.compare(a, b));
}

/**
 * The newest of `versions` (the first of equal newest ones), or `undefined` when there are none.
 * Throws `VersionError` if a version cannot be compared.
 */
export function maxVersion(
  scheme: VersionScheme | VersionSchemeName,
  versions: Iterable<string>,
): string | undefined {
  const s = resolve(scheme);
  let best: string | undefined;
  for (const v of versions) {
    if (best === undefined) {
      s.compare(v, v); // a single version must still be comparable
      best = v;
    } else if (s.compare(v, best) > 0) {
      best = v;
    }
  }
  return best;
}
