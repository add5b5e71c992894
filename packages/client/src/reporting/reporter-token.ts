import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../config/index.js';
import { clientHome } from '../trust/index.js';

/**
 * The host's reporter token: the secret that says which host a report is from (the server binds
 * each reporter token to one host name, so whoever holds it can write that host's history and
 * no other's). It is read from a file, never from the config file or the environment, which
 * other users and processes may see: `reportTokenFile`, else `<client home>/reporter-token`
 * (`~/.config/sysattest/reporter-token`; the packaged client's config names
 * `/etc/sysattest/reporter-token`).
 *
 * Used only when it is a regular file (not a symbolic link) of the user running the client that
 * neither group nor others may read or write (`chmod 600`), holding one token.
 */
export const REPORTER_TOKEN_FILE_NAME = 'reporter-token';
const MAX_TOKEN_FILE_BYTES = 4096;
/** The token's syntax, as the config file's reader `token`. */
const TOKEN = /^[^\s]{1,200}$/;

/** `<clientHome()>/reporter-token`. */
export function defaultReporterTokenFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(clientHome(env), REPORTER_TOKEN_FILE_NAME);
}

const refuse = (file: string, why: string): ConfigError =>
  new ConfigError('CONFIG_INVALID', `the reporter token file ${file} ${why}`);

/** Reads and checks the token file (ConfigError, exit 64, saying what to fix). */
export function readReporterToken(file: string): string {
  let fd: number;
  try {
    fd = fs.openSync(
      file,
      fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY,
    );
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw refuse(
        file,
        'does not exist: put the token `sysattest-server token create --role reporter --host NAME --name NAME` printed ' +
          `there, readable by this user only: (umask 077; cat > ${file})`,
      );
    }
    if (code === 'ELOOP') throw refuse(file, 'is a symbolic link: refused (name the file itself)');
    throw refuse(file, `cannot be opened: ${code ?? (e as Error).message}`);
  }
  try {
    checkTokenFile(file, fs.fstatSync(fd));
    const text = fs.readFileSync(fd, 'utf8').trim();
    if (!TOKEN.test(text))
      throw refuse(file, 'does not hold one token (a single word, at most 200 characters)');
    return text;
  } finally {
    fs.closeSync(fd);
  }
}

/** The rules the file must meet before a byte of it is read. */
function checkTokenFile(file: string, st: fs.Stats): void {
  if (!st.isFile()) throw refuse(file, 'is not a regular file');
  if ((st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw refuse(file, `may be read or written by others (mode ${mode}): refused; chmod 600 ${file}`);
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw refuse(file, `belongs to uid ${st.uid}, not to the user running sysattest (uid ${uid}): refused`);
  }
  if (st.size > MAX_TOKEN_FILE_BYTES)
    throw refuse(file, `is over ${MAX_TOKEN_FILE_BYTES} bytes: not a token`);
}
