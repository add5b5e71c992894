import type { PackageManagerName } from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import type { CommandOptions, Podman } from '../podman/podman.js';

/** One installed package as the image's own package manager reports it. */
export interface InstalledPackageVersion {
  name: string;
  arch: string;
  version: string;
}

/** What changed for one package between two generations of an image. */
export interface PackageChange {
  name: string;
  arch: string;
  /** Version before, or null when the package was added. */
  from: string | null;
  /** Version after, or null when the package was removed. */
  to: string | null;
}

/**
 * The command (run inside the image, no shell) that lists installed packages, one per line:
 * the image's own dpkg-query, rpm or apk.
 */
export function packageListCommand(family: PackageManagerName): string[] {
  switch (family) {
    case 'dpkg':
      return [
        'dpkg-query',
        '--show',
        '--showformat',
        '${db:Status-Status}\\t${Package}\\t${Architecture}\\t${Version}\\n',
      ];
    case 'rpm':
      return [
        'rpm',
        '--query',
        '--all',
        '--queryformat',
        '%{NAME}\\t%{ARCH}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n',
      ];
    case 'apk':
      return ['apk', 'info', '-v'];
  }
}

/** Parses the output of `packageListCommand`: installed packages only, sorted by name and arch. */
export function parsePackageList(
  family: PackageManagerName,
  stdout: string,
  defaultArch = '',
): InstalledPackageVersion[] {
  const out: InstalledPackageVersion[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trimEnd();
    if (line.length === 0) continue;
    if (family === 'dpkg') {
      const [status, name, arch, version] = line.split('\t');
      // dpkg-query also lists removed packages whose configuration files remain.
      if (status !== 'installed' || !name || arch === undefined || version === undefined) continue;
      out.push({ name, arch, version });
    } else if (family === 'rpm') {
      const [name, arch, version] = line.split('\t');
      if (!name || arch === undefined || version === undefined) continue;
      if (name === 'gpg-pubkey') continue; // imported signing keys, not packages
      out.push({ name, arch, version: version.startsWith('0:') ? version.slice(2) : version });
    } else {
      const m = /^(.+)-([^-]+-r\d+)$/.exec(line.trim());
      if (!m) continue; // apk's warnings and blank lines
      out.push({ name: m[1]!, arch: defaultArch, version: m[2]! });
    }
  }
  out.sort((a, b) => (a.name === b.name ? cmp(a.arch, b.arch) : cmp(a.name, b.name)));
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Added, removed and changed packages from `before` to `after`, sorted by name and arch. */
export function diffPackages(
  before: readonly InstalledPackageVersion[],
  after: readonly InstalledPackageVersion[],
): PackageChange[] {
  const key = (p: InstalledPackageVersion) => `${p.name}\0${p.arch}`;
  const old = new Map(before.map((p) => [key(p), p]));
  const changes: PackageChange[] = [];
  for (const p of after) {
    const was = old.get(key(p));
    old.delete(key(p));
    if (!was) changes.push({ name: p.name, arch: p.arch, from: null, to: p.version });
    else if (was.version !== p.version)
      changes.push({ name: p.name, arch: p.arch, from: was.version, to: p.version });
  }
  for (const p of old.values()) changes.push({ name: p.name, arch: p.arch, from: p.version, to: null });
  changes.sort((a, b) => (a.name === b.name ? cmp(a.arch, b.arch) : cmp(a.name, b.name)));
  return changes;
}

/** `name: old → new` (`+`/`-` for added and removed) for people. */
export function formatChange(c: PackageChange): string {
  if (c.from === null) return `+ ${c.name}:${c.arch} ${c.to ?? ''}`;
  if (c.to === null) return `- ${c.name}:${c.arch} ${c.from}`;
  return `  ${c.name}:${c.arch} ${c.from} → ${c.to}`;
}

function noTool(family: PackageManagerName, where: string, e: unknown): GeneratorError {
  const tool = packageListCommand(family)[0];
  return new GeneratorError(
    'BUILD_FAILED',
    `cannot list the packages of ${where} with its own ${tool}: ${(e as Error).message}` +
      ` (is it really a ${family}-based root filesystem?)`,
    { cause: e },
  );
}

/** Installed packages of an image, listed by a one-shot container without network. */
export async function listImagePackages(
  podman: Podman,
  image: string,
  family: PackageManagerName,
  opts: CommandOptions & { defaultArch?: string } = {},
): Promise<InstalledPackageVersion[]> {
  let stdout: string;
  try {
    stdout = (
      await podman.run(image, packageListCommand(family), {
        network: 'none',
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? 5 * 60 * 1000,
        labels: { 'sysattest.purpose': 'list-packages' },
      })
    ).stdout;
  } catch (e) {
    if (e instanceof GeneratorError && e.code === 'PODMAN_FAILED') throw noTool(family, `image ${image}`, e);
    throw e;
  }
  return parsePackageList(family, stdout, opts.defaultArch);
}

/** Installed packages of a running container. */
export async function listContainerPackages(
  podman: Podman,
  container: string,
  family: PackageManagerName,
  opts: CommandOptions & { defaultArch?: string } = {},
): Promise<InstalledPackageVersion[]> {
  const { stdout } = await podman.exec(container, packageListCommand(family), {
    signal: opts.signal,
    timeoutMs: opts.timeoutMs ?? 5 * 60 * 1000,
  });
  return parsePackageList(family, stdout, opts.defaultArch);
}
