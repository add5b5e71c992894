import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KeyError } from '../errors.js';
import { MAX_ARMORED_KEY_BYTES, describe } from './common.js';

/** Default cap for readKeyFile: a key file is a few KiB, a pinned-keys bundle a few hundred. */
export const MAX_KEY_FILE_BYTES = MAX_ARMORED_KEY_BYTES;

function fileError(path: string, what: string, cause?: unknown): KeyError {
  const detail = cause === undefined ? '' : `: ${describe(cause)}`;
  return new KeyError('KEY_FILE_ERROR', `key file ${path}: ${what}${detail}`, { cause });
}

function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e
    ? String((e as { code: unknown }).code)
    : undefined;
}

/**
 * Writes an armored secret key to `path`, mode 0600, atomically: the bytes go to a temporary file in
 * the same directory that is 0600 from its creation (never briefly world-readable), are fsynced,
 * then the file takes its name. Without `overwrite`, an existing `path` is never replaced (the name
 * is taken with link(2), which fails if it exists, instead of a check-then-rename race).
 */
export async function writeSecretKeyFile(
  path: string,
  armoredSecretKey: string,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  if (
    typeof armoredSecretKey !== 'string' ||
    !armoredSecretKey.includes('-----BEGIN PGP PRIVATE KEY BLOCK-----')
  ) {
    throw new KeyError(
      'NOT_A_SECRET_KEY',
      `refusing to write ${path}: the text is not an armored secret key`,
    );
  }
  if (armoredSecretKey.length > MAX_ARMORED_KEY_BYTES) {
    throw new KeyError(
      'MALFORMED_KEY',
      `refusing to write ${path}: key larger than ${MAX_ARMORED_KEY_BYTES} bytes`,
    );
  }
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  let tmpExists = false;
  try {
    // O_EXCL: never reuse (or follow a symlink planted at) the temporary name.
    const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    tmpExists = true;
    try {
      await fh.chmod(0o600); // the umask can only remove bits; make the mode exactly 0600
      await fh.writeFile(armoredSecretKey, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (options.overwrite === true) {
      await rename(tmp, path);
      tmpExists = false;
    } else {
      try {
        await link(tmp, path);
      } catch (e) {
        if (errno(e) === 'EEXIST') {
          throw fileError(path, 'already exists (pass { overwrite: true } to replace it)');
        }
        if (errno(e) !== 'EPERM' && errno(e) !== 'ENOTSUP' && errno(e) !== 'EOPNOTSUPP') throw e;
        // Filesystem without hard links: fall back to check-then-rename (racy, best effort).
        const exists = await lstat(path).then(
          () => true,
          (err: unknown) => (errno(err) === 'ENOENT' ? false : Promise.reject(err)),
        );
        if (exists) throw fileError(path, 'already exists (pass { overwrite: true } to replace it)');
        await rename(tmp, path);
        tmpExists = false;
      }
    }
    // Make the new directory entry durable too.
    const dh = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw fileError(path, 'cannot write', e);
  } finally {
    if (tmpExists) await unlink(tmp).catch(() => undefined);
  }
}

/**
 * Reads an armored key file (secret key, public key or pinned-keys bundle) as text. Refuses anything
 * but a regular file (a FIFO would block forever, a device could be endless) and files over
 * `maxBytes` (default MAX_KEY_FILE_BYTES). Errors: KeyError KEY_FILE_ERROR naming the file.
 */
export async function readKeyFile(path: string, options: { maxBytes?: number } = {}): Promise<string> {
  const maxBytes = options.maxBytes ?? MAX_KEY_FILE_BYTES;
  let fh;
  try {
    // O_NONBLOCK so that opening a FIFO returns at once; the type check below then refuses it.
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fileError(path, errno(e) === 'ENOENT' ? 'does not exist' : 'cannot open', e);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileError(path, 'is not a regular file');
    if (st.size > maxBytes) throw fileError(path, `is ${st.size} bytes, more than the ${maxBytes}-byte cap`);
    // Read one byte past the cap in case the file grew after the stat.
    const buf = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw fileError(path, `is more than the ${maxBytes}-byte cap`);
    }
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, length));
    } catch (e) {
      throw fileError(path, 'is not UTF-8 text (binary key? export it with --armor)', e);
    }
  } catch (e) {
    if (e instanceof KeyError) throw e;
    throw fileError(path, 'cannot read', e);
  } finally {
    await fh.close().catch(() => undefined);
  }
}
