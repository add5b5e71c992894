import * as fs from 'node:fs';
import { PathError, type FileObservation, type HashPool, type RootDir } from '@sysattest/core';
import type { Finding } from './compare.js';
import { formatMode } from './compare.js';

/**
 * Files under the system directories that no installed package owns (`--scan-unowned`). Paths
 * are compared canonically (every directory resolved inside the root), so `/bin/ls` owned
 * through the usrmerge alias and `/usr/bin/ls` found on disk are the same file, and an alias
 * directory is walked once. Symlinked directories are never descended. Besides package files, a
 * path is owned when an honoured dpkg diversion names it (local-claims.ts); a SYMLINK the
 * alternatives system names (dpkg's `var/lib/dpkg/alternatives/*`, the rpm family's
 * `var/lib/alternatives/*`) is its business, but a regular file there is not excused (those
 * state files are the machine's own, editable by whoever rooted it); byte-compiled Python caches
 * (`__pycache__`), which packages' own scripts generate at install, are not reported (IGNORED).
 *
 * What an unowned file is (unownedFinding):
 * | what is there                                      | failure | known                          |
 * |----------------------------------------------------|---------|--------------------------------|
 * | a symlink                                          | no      | –                              |
 * | a file that is setuid, setgid or has capabilities  | yes     | as below (a hint only)         |
 * | a file whose content a verified manifest lists at  | no      | true                           |
 * | the path the server named (known-content.ts)       |         |                                |
 * | any other file, device, FIFO, socket, or unreadable| yes     | false (a server's unbacked     |
 * |                                                    |         | claim is only named in detail) |
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

/** What the server's reverse lookup claims of a content hash, and whether signed data backs it. */
export interface ContentClaim {
  /** One line naming where the server says the content comes from. */
  claimed: string;
  /** A verified manifest lists this content at the path the server named: that line. */
  backedBy?: string;
}

/**
 * One unowned path's finding (see the table above). `claim` is undefined when the content was
 * not looked up (no server), `null` when the server knows nothing of it.
 */
export function unownedFinding(
  o: FileObservation,
  claim: ContentClaim | null | undefined,
  isAlternativesLink: boolean,
): Finding | undefined {
  const base = { class: 'unowned' as const, package: '', arch: '', path: o.path };
  if (o.status !== 'ok') {
    return {
      ...base,
      detail: `${o.path}: no package owns it, and it cannot be inspected (${o.status})`,
      failure: true,
    };
  }
  if (o.type === 'symlink') {
    if (isAlternativesLink) return undefined;
    return {
      ...base,
      actual: o.type,
      detail: `${o.path} (symlink -> ${o.target}): no package owns it`,
      failure: false,
    };
  }
  if (o.type !== 'file') {
    return { ...base, actual: o.type, detail: `${o.path} (${o.type}): no package owns it`, failure: true };
  }
  const mode = formatMode(o.mode);
  const privileged = (o.mode & 0o6000) !== 0 || o.capability !== undefined;
  const what =
    `${o.path} (mode ${mode}${o.capability !== undefined ? `, capabilities ${o.capability.raw}` : ''}, ` +
    `${o.size} bytes): no installed package owns it` +
    (isAlternativesLink ? ' (the alternatives system names it, but it is not a symlink)' : '');
  const known = claim?.backedBy !== undefined;
  const source =
    claim === undefined
      ? ' (not looked up)'
      : claim === null
        ? ', and no manifest the server knows has this content'
        : known
          ? `; the same content is ${claim.backedBy} (a verified manifest)`
          : `; the server claims ${claim.claimed}, but no verified manifest backs that claim`;
  const privilege = privileged
    ? '; setuid, setgid or capabilities on an unowned file is a failure whatever its content'
    : '';
  return {
    ...base,
    actual: o.sha256,
    known,
    detail: `${what}${source}${privilege}`,
    failure: privileged || !known,
  };
}

/** Hashes the unowned paths and turns each into its finding (claims looked up by `lookUp`). */
export async function unownedFindings(
  root: string,
  pool: HashPool,
  paths: readonly string[],
  alternativesLinks: ReadonlySet<string>,
  lookUp: (observations: readonly FileObservation[]) => Promise<Map<string, ContentClaim | null> | undefined>,
): Promise<Finding[]> {
  if (paths.length === 0) return [];
  const observations = await pool.inspectAll(root, paths);
  const claims = await lookUp(observations);
  const out: Finding[] = [];
  for (const o of observations) {
    const claim =
      o.status === 'ok' && o.type === 'file' && claims !== undefined
        ? (claims.get(o.sha256) ?? null)
        : undefined;
    const f = unownedFinding(o, claim, alternativesLinks.has(o.path));
    if (f !== undefined) out.push(f);
  }
  return out;
}
