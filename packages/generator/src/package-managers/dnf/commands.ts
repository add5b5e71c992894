/**
 * dnf images (Fedora, RHEL and rebuilds): the commands the generator runs in a container, as
 * argument vectors for `podman run`/`exec` (no shell at all, so nothing depends on bash), and
 * the parser of their output. The files a package owns and rpm's digests are not listed by a
 * command: after the install, the host reads the container's rpm database through the mounted
 * filesystem with @sysattest/core's readRpmDatabase, which needs no rpm binary.
 */
import { rpmVersionScheme } from '@sysattest/core';

export interface DnfPackageSpec {
  name: string;
  /** `[epoch:]version-release` */
  version: string;
  /** Absent: whichever architecture dnf picks (the native one, or `noarch`). */
  arch?: string;
}

const NAME = /^[A-Za-z0-9_+][A-Za-z0-9._+-]*$/;
const ARCH = /^[a-z0-9_]+$/;

/**
 * `name-[epoch:]version-release.arch`, the exact NEVRA dnf installs (`name-[epoch:]version-release`
 * without an architecture); throws for unsafe input.
 */
export function dnfNevra(p: DnfPackageSpec): string {
  if (!NAME.test(p.name)) throw new Error(`invalid rpm package name ${JSON.stringify(p.name)}`);
  if (p.arch !== undefined && !ARCH.test(p.arch)) {
    throw new Error(`invalid rpm architecture ${JSON.stringify(p.arch)}`);
  }
  rpmVersionScheme.validate(p.version);
  return `${p.name}-${p.version}${p.arch === undefined ? '' : `.${p.arch}`}`;
}

/**
 * Installs exact versions: weak dependencies off (a manifest is about the named package), the
 * repositories' GPG checks left on, and `tsflags` emptied, because Fedora and UBI container
 * images set `tsflags=nodocs` and a manifest must hash every file the package owns (a client
 * installed without docs sees rpm's "not installed" file state instead). Not run here: no dnf
 * repository is reachable from this machine, so only the argument vector is tested.
 */
export function dnfInstallArgv(packages: readonly DnfPackageSpec[]): string[] {
  if (packages.length === 0) throw new Error('nothing to install');
  return [
    'dnf',
    'install',
    '--assumeyes',
    '--setopt=install_weak_deps=False',
    '--setopt=keepcache=False',
    '--setopt=tsflags=',
    '--',
    ...packages.map(dnfNevra),
  ];
}

/**
 * Downloads the enabled repositories' metadata into dnf's cache (checked by dnf: repomd
 * signatures where the repository configuration asks for them, every file's checksum), for the
 * catalog to read from the host afterwards. `--refresh` expires the cache first.
 */
export function dnfMakecacheArgv(): string[] {
  return ['dnf', 'makecache', '--refresh'];
}

/** The catalog query format: one line per available package version. */
export const DNF_CATALOG_QF = '%{name}\\t%{epoch}\\t%{version}\\t%{release}\\t%{arch}\\t%{sourcerpm}\\n';

/** Lists every available package version of the image's enabled repositories. */
export function dnfCatalogArgv(): string[] {
  return [
    'dnf',
    'repoquery',
    '--quiet',
    '--available',
    '--show-duplicates',
    `--queryformat=${DNF_CATALOG_QF}`,
  ];
}

export interface DnfCatalogEntry {
  name: string;
  /** `[epoch:]version-release`, epoch only when not 0 (as rpm's %{EVR} prints it). */
  version: string;
  arch: string;
  source: string | undefined;
}

/**
 * Parses DNF_CATALOG_QF output (dnf prints epoch `0`, rpm `(none)`; both mean none). Throws with
 * the line number on a line that does not have the six fields or has an invalid version.
 */
export function parseDnfCatalog(text: string): DnfCatalogEntry[] {
  const out: DnfCatalogEntry[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const f = line.split('\t');
    if (f.length !== 6) throw new Error(`line ${i + 1}: expected 6 tab-separated fields, got ${f.length}`);
    const [name = '', epoch = '', version = '', release = '', arch = '', srpm = ''] = f;
    const e = epoch === '(none)' || epoch === '0' || epoch === '' ? '' : `${epoch}:`;
    const evr = `${e}${version}-${release}`;
    if (!NAME.test(name) || !ARCH.test(arch) || !rpmVersionScheme.isValid(evr)) {
      throw new Error(`line ${i + 1}: invalid package ${JSON.stringify(line.slice(0, 120))}`);
    }
    out.push({ name, version: evr, arch, source: srpm === '(none)' || srpm === '' ? undefined : srpm });
  });
  return out;
}
