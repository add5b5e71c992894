import { PathError } from '../errors.js';
import type { RootDir } from './in-root.js';

/**
 * User and group names of a root, read from the root's own `etc/passwd` and `etc/group` (never the
 * host's, never NSS): manifests record owners by name as the image saw them, so a uid is turned
 * into a name with the same files the packages were installed against.
 */

/** The largest etc/passwd or etc/group read by default. */
export const MAX_ACCOUNT_FILE_BYTES = 8 * 1024 * 1024;

export interface RootAccounts {
  /** uid → user name (the first line for a uid wins, as getpwuid(3) does). */
  users: Map<number, string>;
  /** gid → group name (first line wins). */
  groups: Map<number, string>;
}

/** The largest id Linux allows (uid_t is 32 bits; (uid_t)-1 means "no id"). */
const MAX_ID = 0xfffffffe;

/**
 * Parses passwd(5) or group(5) text into id → name. The id is the third field in both. Blank
 * lines, comments, NIS compat lines (`+`, `-`) and malformed lines are skipped.
 */
export function parseIdFile(text: string): Map<number, string> {
  const ids = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#') || line.startsWith('+') || line.startsWith('-')) continue;
    const fields = line.split(':');
    const name = fields[0];
    const id = fields[2];
    if (name === undefined || name === '' || id === undefined || !/^[0-9]{1,10}$/.test(id)) continue;
    const n = Number(id);
    if (n > MAX_ID || ids.has(n)) continue;
    ids.set(n, name);
  }
  return ids;
}

/** parseIdFile for etc/passwd. */
export const parsePasswd = parseIdFile;
/** parseIdFile for etc/group. */
export const parseGroup = parseIdFile;

function readIdFile(root: RootDir, path: string, maxBytes: number): Map<number, string> {
  let bytes: Buffer;
  try {
    bytes = root.readFile(path, maxBytes);
  } catch (e) {
    // A root without accounts (a minimal image, a partial tree) has no names: ids stay numeric.
    if (e instanceof PathError && e.code === 'NOT_FOUND') return new Map();
    throw e;
  }
  return parseIdFile(bytes.toString('utf8'));
}

/**
 * Reads `etc/passwd` and `etc/group` inside the root (through RootDir.readFile, so symlinks stay
 * inside the root and the size is capped). A missing file gives an empty map; anything else
 * (not a regular file, too large, unreadable) throws PathError.
 */
export function readRootAccounts(root: RootDir, maxBytes = MAX_ACCOUNT_FILE_BYTES): RootAccounts {
  return {
    users: readIdFile(root, '/etc/passwd', maxBytes),
    groups: readIdFile(root, '/etc/group', maxBytes),
  };
}
