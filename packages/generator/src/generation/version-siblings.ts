import { compareDpkgVersions, parseDeb822, type CatalogPackage } from '@sysattest/core';

/**
 * An exact version older than the image's packages often cannot install alone: binaries of one
 * source pin each other to their own version (`systemd` Depends `libsystemd0 (= V)`), and apt's
 * resolver does not move an installed package off its candidate by itself, so it reports "held
 * broken packages". Naming those siblings at the same version on the command line (with
 * `--allow-downgrades`) lets apt install the set. Pure: the caller reads the image and apt.
 */

/** `name=version` → the packages it depends on with `(= version)`, from `apt-cache show` output. */
export type ExactDepends = Map<string, Map<string, string>>;

/**
 * `name=version` → every package it depends on by a plain relation (not an alternative), with the
 * version when the relation pins it with `=`, else undefined.
 */
export type Dependencies = Map<string, Map<string, string | undefined>>;

/** A plain `name[:arch] [(op version)]` relation; alternatives (`a | b`) do not force anything. */
const RELATION = /^([a-z0-9][a-z0-9+.-]+)(?::[a-z0-9-]+)?\s*(?:\(\s*(<<|<=|=|>=|>>)\s*([^)\s]+)\s*\))?$/;

/** Reads `apt-cache show` paragraphs: each version's Depends/Pre-Depends (see Dependencies). */
export function parseDependencies(aptCacheShow: string): Dependencies {
  const out: Dependencies = new Map();
  const text = aptCacheShow.endsWith('\n') ? aptCacheShow : `${aptCacheShow}\n`;
  for (const para of parseDeb822(text, 'apt-cache show')) {
    const name = para.fields.get('package')?.value.trim();
    const version = para.fields.get('version')?.value.trim();
    if (name === undefined || version === undefined) continue;
    const deps = new Map<string, string | undefined>();
    for (const field of ['pre-depends', 'depends']) {
      for (const relation of (para.fields.get(field)?.value ?? '').split(',')) {
        const m = RELATION.exec(relation.replace(/\s+/g, ' ').trim());
        if (m) deps.set(m[1] as string, m[2] === '=' ? (m[3] as string) : undefined);
      }
    }
    out.set(`${name}=${version}`, deps);
  }
  return out;
}

/** Reads `apt-cache show` paragraphs: each version's Depends/Pre-Depends pinned with `=`. */
export function parseExactDepends(aptCacheShow: string): ExactDepends {
  const out: ExactDepends = new Map();
  for (const [key, deps] of parseDependencies(aptCacheShow)) {
    const pinned = new Map<string, string>();
    for (const [name, version] of deps) if (version !== undefined) pinned.set(name, version);
    out.set(key, pinned);
  }
  return out;
}

/** Whether the catalog offers a newer version of this package than the one asked for. */
export function isOlderThanOffered(wanted: CatalogPackage, offered: readonly CatalogPackage[]): boolean {
  return offered.some(
    (p) => p.architecture === wanted.architecture && compareDpkgVersions(p.version, wanted.version) > 0,
  );
}

export interface SiblingInput {
  wanted: CatalogPackage;
  /**
   * The wanted version's dependencies, by name: a version where `=` pins it (parseExactDepends),
   * undefined for any other relation (parseDependencies), which pulls the package in at the
   * wanted version only when it is built from the same source.
   */
  exactDepends: ReadonlyMap<string, string | undefined>;
  /**
   * The `=` dependencies of other versions apt was asked about (the same source's packages at
   * that version): followed, so a sibling's own locks hold too (libnss-systemd pins systemd,
   * which pins libsystemd-shared).
   */
  dependsOf?: (name: string, version: string) => ReadonlyMap<string, string | undefined> | undefined;
  /** The image's apt lists, by package name. */
  catalog: ReadonlyMap<string, readonly CatalogPackage[]>;
  /** What the image has installed: `name:arch` → version. */
  installed: ReadonlyMap<string, string>;
  nativeArch: string;
}

/**
 * The packages to install beside `wanted` so that its version locks hold: every binary the image
 * has installed that comes from the same source at the same source version (when the image has
 * another version of it), and every `=` dependency of `wanted` the image does not already have
 * at that version. Each is a catalog entry, so apt installs exactly what the lists offer.
 */
export function versionLockedSiblings(input: SiblingInput): CatalogPackage[] {
  const { wanted, catalog, nativeArch } = input;
  const found = new Map<string, CatalogPackage>();
  const add = (p: CatalogPackage): void => {
    const installedVersion = input.installed.get(installedKey(p, nativeArch));
    if (p.name !== wanted.name && installedVersion !== p.version) found.set(p.name, p);
  };
  const offered = (name: string): readonly CatalogPackage[] =>
    (catalog.get(name) ?? []).filter((p) => p.architecture === nativeArch || p.architecture === 'all');
  const sameSource = (p: CatalogPackage): boolean =>
    p.source.name === wanted.source.name && p.source.version === wanted.source.version;
  const pending: [string, string | undefined][] = [...input.exactDepends];
  for (const key of input.installed.keys()) {
    const name = key.slice(0, key.indexOf(':'));
    const match = offered(name).find(sameSource);
    if (match !== undefined) pending.push([match.name, match.version]);
  }
  // The closure over `=` relations (bounded by the catalog: each name is added once).
  const visited = new Set<string>([wanted.name]);
  while (pending.length > 0) {
    const [name, version] = pending.pop() as [string, string | undefined];
    if (visited.has(name)) continue;
    // Unversioned: only a package of the same source moves with it (systemd-timesyncd needs the
    // systemd of its own version, not the image's newer candidate).
    const match = offered(name).find((p) => (version === undefined ? sameSource(p) : p.version === version));
    if (match === undefined) continue;
    visited.add(name);
    add(match);
    for (const dep of input.dependsOf?.(name, match.version) ?? []) pending.push(dep);
  }
  return [...found.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** apt's `name:arch=version` for a catalog entry (`all` installs under the native architecture). */
export function aptSpec(p: CatalogPackage, nativeArch: string): string {
  return `${p.name}:${p.architecture === 'all' ? nativeArch : p.architecture}=${p.version}`;
}

/**
 * Two versions of one package on one command line cannot both install (apt would silently keep
 * one): such a batch is a real conflict to split. Returns the first such package, if any.
 */
export function conflictingSpec(specs: readonly string[]): string | undefined {
  const seen = new Map<string, string>();
  for (const spec of specs) {
    const at = spec.indexOf('=');
    const name = spec.slice(0, at);
    const version = spec.slice(at + 1);
    const other = seen.get(name);
    if (other !== undefined && other !== version) return `${name} is needed at ${other} and at ${version}`;
    seen.set(name, version);
  }
  return undefined;
}

function installedKey(p: CatalogPackage, nativeArch: string): string {
  return `${p.name}:${p.architecture === 'all' ? 'all' : nativeArch}`;
}
