import * as fs from 'node:fs';
import { PathError, type RootDir } from '@sysattest/core';

/**
 * Files under the system directories that no installed package owns (`--scan-unowned`). Paths
 * are compared canonically (every directory resolved inside the root), so `/bin/ls` owned
 * through the usrmerge alias and `/usr/bin/ls` found on disk are the same file, and an alias
 * directory is walked once. Symlinked directories are never descended. Besides package files, a
 * path is owned when the alternatives system manages it (dpkg's `var/lib/dpkg/alternatives/*`,
 * the rpm family's `var/lib/alternatives/*`) or a dpkg diversion names it; byte-compiled Python
 * caches (`__pycache__`), which packages' own scripts generate at install, are not reported
 * (IGNORED below).
 */
export const IGNORED = [/\/__pycache__\/[^/]+\.pyc$/];

/** Most entries walked before the scan stops (a note says so). */
export const MAX_SCANNED_ENTRIES = 5_000_000;

export interface UnownedScan {
  /** Canonical paths of files, symlinks and other non-directories no package owns. */
  paths: string[];
  notes: string[];
}

/** Canonical in-root path, or undefined when its directory does not resolve inside the root. */
export function canonicalOf(root: RootDir, p: string): string | undefined {
  try {
    return root.canonical(p);
  } catch (e) {
    if (e instanceof PathError) return undefined;
    throw e;
  }
}

/**
 * The links an alternatives system manages (master and slave links of every group), from its
 * state directory: dpkg's `var/lib/dpkg/alternatives` (update-alternatives), or the rpm family's
 * `var/lib/alternatives` (chkconfig's alternatives), which write the same header: mode, master
 * link, then slave name/link pairs up to an empty line.
 */
export function readAlternativeLinks(root: RootDir, stateDir = '/var/lib/dpkg/alternatives'): string[] {
  const out: string[] = [];
  let dir: string;
  try {
    dir = root.resolve(`/${root.resolveDirectory(stateDir).join('/')}`);
  } catch {
    return out;
  }
  let names: string[] = [];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    let text: string;
    try {
      text = root.readFile(`${stateDir}/${name}`, 1024 * 1024).toString('utf8');
    } catch {
      continue;
    }
    // Format (update-alternatives): mode, master link, then name/link pairs up to an empty line.
    const lines = text.split('\n');
    if (lines[1]?.startsWith('/')) out.push(lines[1]);
    for (let i = 2; i + 1 < lines.length && lines[i] !== ''; i += 2) {
      const link = lines[i + 1] as string;
      if (link.startsWith('/')) out.push(link);
    }
  }
  return out;
}

/** Walks the scan directories and returns what is not in `owned` (canonical paths). */
export function scanUnowned(
  root: RootDir,
  scanDirs: readonly string[],
  owned: ReadonlySet<string>,
): UnownedScan {
  const notes: string[] = [];
  const paths: string[] = [];
  const walked = new Set<string>();
  let entries = 0;
  const walk = (canonicalDir: string): void => {
    let dirents: fs.Dirent[];
    try {
      dirents = fs.readdirSync(root.resolve(canonicalDir), { withFileTypes: true });
    } catch (e) {
      notes.push(`cannot list ${canonicalDir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      return;
    }
    for (const d of dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (++entries > MAX_SCANNED_ENTRIES) return;
      const p = canonicalDir === '/' ? `/${d.name}` : `${canonicalDir}/${d.name}`;
      if (d.isDirectory()) {
        walk(p);
        continue;
      }
      if (owned.has(p) || IGNORED.some((r) => r.test(p))) continue;
      paths.push(p);
    }
  };
  for (const dir of scanDirs) {
    let canonical: string;
    try {
      canonical = `/${root.resolveDirectory(dir).join('/')}`;
    } catch {
      continue; // not there (or not a directory) under this root
    }
    if (walked.has(canonical)) continue;
    // A directory inside one already walked (/usr/lib/x86_64-linux-gnu under /usr/lib) is done.
    if ([...walked].some((w) => canonical.startsWith(`${w}/`) || w === '/')) continue;
    walked.add(canonical);
    walk(canonical);
  }
  if (entries > MAX_SCANNED_ENTRIES) notes.push(`unowned scan stopped after ${MAX_SCANNED_ENTRIES} entries`);
  return { paths, notes };
}

/** The system directories scanned by default, usrmerge aliases included (each walked once). */
export const DEFAULT_SCAN_DIRS: readonly string[] = [
  '/usr/bin',
  '/usr/sbin',
  '/usr/lib',
  '/usr/lib32',
  '/usr/lib64',
  '/usr/libx32',
  '/usr/libexec',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
];
