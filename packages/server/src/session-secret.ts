/**
 * The dashboard's session secret: the key material session cookies are signed with
 * (@sysattest/dashboard session.ts). It must never come from the database — whoever holds a copy
 * of the database (a backup, a replica) could otherwise mint an admin session — so it lives in a
 * file: the one configured (`sessionSecretFile`, `--session-secret-file`,
 * $SYSATTEST_SESSION_SECRET_FILE), else `dashboard-session.key` in the server's state directory
 * (next to the SQLite file; `./data/` with PostgreSQL), made on first start.
 *
 * A file is used only when it is a regular file of the server's own user that neither group nor
 * others may read or write, holding 32 bytes to 64 KiB (used as they are: `head -c 32
 * /dev/urandom` and `openssl rand -hex 32` both do). Several server processes accept each
 * other's sessions only when they read the same bytes.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseStoreLocation } from './store/index.js';
import { ServerConfigError } from './config.js';

export const SESSION_SECRET_FILE_NAME = 'dashboard-session.key';
/** Bytes of a secret made on first start; also the least a given file must hold. */
export const SESSION_SECRET_BYTES = 32;
const MAX_SECRET_FILE_BYTES = 64 * 1024;

export interface SessionSecret {
  secret: Buffer;
  file: string;
  /** Made by this call (first start). */
  created: boolean;
}

/** Where the default secret lives: next to the SQLite file, or in ./data/ (PostgreSQL, :memory:). */
export function defaultSessionSecretFile(database: string): string {
  const parsed = parseStoreLocation(database);
  const dir =
    parsed.dialect === 'sqlite' && parsed.path !== ':memory:'
      ? path.dirname(path.resolve(parsed.path))
      : path.resolve('data');
  return path.join(dir, SESSION_SECRET_FILE_NAME);
}

const refuse = (file: string, why: string): ServerConfigError =>
  new ServerConfigError('CONFIG', `the dashboard session secret ${file} ${why}`);

/**
 * Reads the secret file. `createIfMissing` (the default location only): a missing file is made,
 * 0600, with 32 random bytes. A configured file must exist: a typo must not give one server
 * process a secret of its own.
 */
export function loadSessionSecret(file: string, options: { createIfMissing: boolean }): SessionSecret {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && options.createIfMissing) return createSecretFile(file);
    if (code === 'ENOENT') {
      throw refuse(
        file,
        `does not exist: make it with (umask 077; head -c ${SESSION_SECRET_BYTES} /dev/urandom > ${file}), ` +
          'and give every server process the same file',
      );
    }
    throw refuse(file, `cannot be opened: ${(e as Error).message}`);
  }
  try {
    checkSecretFile(file, fs.fstatSync(fd));
    const secret = fs.readFileSync(fd);
    if (secret.length < SESSION_SECRET_BYTES) {
      throw refuse(file, `holds ${secret.length} bytes; it needs at least ${SESSION_SECRET_BYTES}`);
    }
    return { secret, file, created: false };
  } finally {
    fs.closeSync(fd);
  }
}

/** The rules a secret file must meet before a byte of it is used. */
export function checkSecretFile(file: string, stat: fs.Stats): void {
  if (!stat.isFile()) throw refuse(file, 'is not a regular file');
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw refuse(
      file,
      `belongs to uid ${stat.uid}, not to the server's user (uid ${uid}): chown it to the server's user`,
    );
  }
  if ((stat.mode & 0o077) !== 0) {
    throw refuse(
      file,
      `may be read or written by group or others (mode ${(stat.mode & 0o777).toString(8).padStart(4, '0')}): ` +
        `chmod 600 ${file}`,
    );
  }
  if (stat.size > MAX_SECRET_FILE_BYTES) throw refuse(file, `is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
}

/**
 * Writes 32 random bytes to a private temporary file and links it into place, so that a
 * concurrent first start never reads a half-written secret: the first link wins, the loser reads
 * the winner's file.
 */
function createSecretFile(file: string): SessionSecret {
  const dir = path.dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw refuse(file, `cannot be made: ${(e as Error).message}`);
  }
  const secret = randomBytes(SESSION_SECRET_BYTES);
  const temporary = path.join(
    dir,
    `.${SESSION_SECRET_FILE_NAME}.${process.pid}.${randomBytes(6).toString('hex')}`,
  );
  try {
    const fd = fs.openSync(temporary, 'wx', 0o600);
    try {
      fs.writeFileSync(fd, secret);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.linkSync(temporary, file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      return loadSessionSecret(file, { createIfMissing: false });
    }
    throw refuse(file, `cannot be made: ${(e as Error).message}`);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
  return { secret, file, created: true };
}
