import * as fs from 'node:fs';
import { KeyError, SigningKey, readKeyFile } from '@sysattest/core';

/**
 * The generator's signing key, loaded the same way by every command that signs (`generate`,
 * `catalog`, `work`).
 */

/** Reads a passphrase from a file or SYSATTEST_KEY_PASSPHRASE (never from argv). */
export function readPassphrase(file: string | undefined): string | undefined {
  if (file) {
    try {
      return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new KeyError('KEY_FILE_ERROR', `cannot read passphrase file ${file}: ${(e as Error).message}`);
    }
  }
  return process.env.SYSATTEST_KEY_PASSPHRASE || undefined;
}

/**
 * The secret key in `file`, unlocked with the passphrase. The file is opened once, by core's
 * readKeyFile (a regular file, size-capped, UTF-8): a missing file says how to make one; anything
 * else wrong with it (unreadable, a directory, a FIFO) is core's KEY_FILE_ERROR as it is, not
 * mistaken for a missing key.
 */
export async function loadSigningKey(file: string, passphraseFile: string | undefined): Promise<SigningKey> {
  let armored: string;
  try {
    armored = await readKeyFile(file);
  } catch (e) {
    if (e instanceof KeyError && errnoOf(e.cause) === 'ENOENT') {
      throw new KeyError(
        'KEY_FILE_ERROR',
        `no signing key at ${file}: create one with "sysattest-generator key generate" or pass --key FILE`,
        { cause: e },
      );
    }
    throw e;
  }
  return SigningKey.fromArmored(armored, readPassphrase(passphraseFile));
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
}
