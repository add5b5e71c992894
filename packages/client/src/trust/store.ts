import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyError, SysattestError, TrustedKeyring, readKeyFile, writeFileAtomic } from '@sysattest/core';

/**
 * The pinned generator keys: a directory holding one armored public key per file, named
 * `<FINGERPRINT>.asc` (40 upper-case hex), mode 0644, in a directory of mode 0700. Only these keys
 * (or a `--keyring FILE`) are ever used to verify manifests; nothing a server says adds to them.
 */
export class TrustError extends SysattestError<
  | 'NO_TRUSTED_KEYS'
  | 'SECRET_KEY_REFUSED'
  | 'KEY_NOT_PINNED'
  | 'KEY_MISMATCH'
  | 'INVALID_KEY'
  | 'TRUST_STORE_ERROR'
> {}

export interface TrustStoreOptions {
  /** The keyring directory (default: defaultTrustDir()). */
  dir?: string;
}

export interface PinnedKey {
  /** 40 upper-case hex. */
  fingerprint: string;
  /** The file holding it. */
  file: string;
}

/** `$SYSATTEST_CLIENT_HOME`, else `$XDG_CONFIG_HOME/sysattest`, else `~/.config/sysattest`. */
export function clientHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYSATTEST_CLIENT_HOME) return env.SYSATTEST_CLIENT_HOME;
  const config = env.XDG_CONFIG_HOME || path.join(os.homedir(), '.config');
  return path.join(config, 'sysattest');
}

/** `<clientHome()>/trusted-keys`. */
export function defaultTrustDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(clientHome(env), 'trusted-keys');
}

const FPR_FILE = /^([0-9A-F]{40})\.asc$/;
const SECRET_BLOCK = /-----BEGIN PGP PRIVATE KEY BLOCK-----/;

export function normalizeFingerprint(fpr: string): string {
  const n = fpr.replace(/\s+/g, '').toUpperCase();
  if (!/^[0-9A-F]{40}$/.test(n)) {
    throw new TrustError('INVALID_KEY', `${JSON.stringify(fpr)} is not a key fingerprint (40 hex digits)`);
  }
  return n;
}

/**
 * Pins the single public key in `armoredFile` and returns its fingerprint. Refuses a secret key
 * (SECRET_KEY_REFUSED: export the public part with `gpg --export --armor FPR`), anything but exactly
 * one v4 key (INVALID_KEY; v5/v6 keys are not supported). Pinning a key twice replaces the file.
 */
export async function addTrustedKey(armoredFile: string, options: TrustStoreOptions = {}): Promise<string> {
  return addTrustedKeyText(await readKeyFile(armoredFile), armoredFile, options);
}

/**
 * As addTrustedKey, from the armored text (`what` names where it came from, for messages). When
 * `expectFingerprint` is given, the key is pinned only if it is that key (computed from the key
 * itself, never taken from whoever offered it): KEY_MISMATCH otherwise.
 */
export async function addTrustedKeyText(
  text: string,
  what: string,
  options: TrustStoreOptions & { expectFingerprint?: string } = {},
): Promise<string> {
  if (SECRET_BLOCK.test(text)) {
    throw new TrustError(
      'SECRET_KEY_REFUSED',
      `${what} holds a secret key: pin the public key only (gpg --export --armor FINGERPRINT)`,
    );
  }
  let keyring: TrustedKeyring;
  try {
    keyring = await TrustedKeyring.fromArmored(text);
  } catch (e) {
    if (e instanceof KeyError) {
      throw new TrustError('INVALID_KEY', `${what}: ${e.message}`, { cause: e });
    }
    throw e;
  }
  if (keyring.size !== 1) {
    throw new TrustError('INVALID_KEY', `${what} holds ${keyring.size} keys; pin one key per file`);
  }
  const fingerprint = keyring.fingerprints[0] as string;
  if (options.expectFingerprint !== undefined) {
    const expected = normalizeFingerprint(options.expectFingerprint);
    if (expected !== fingerprint) {
      throw new TrustError(
        'KEY_MISMATCH',
        `${what} is the key ${fingerprint}, not ${expected}: nothing pinned`,
      );
    }
  }
  const dir = await ensureDir(options.dir ?? defaultTrustDir());
  await writeAtomic(path.join(dir, `${fingerprint}.asc`), keyring.armoredPublicKeys()[0] as string, 0o644);
  return fingerprint;
}

/** The pinned keys, sorted by fingerprint. Files whose content is not the key they are named after are refused. */
export async function listTrustedKeys(options: TrustStoreOptions = {}): Promise<PinnedKey[]> {
  const dir = options.dir ?? defaultTrustDir();
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new TrustError('TRUST_STORE_ERROR', `cannot read the trusted keys directory ${dir}: ${String(e)}`, {
      cause: e,
    });
  }
  const out: PinnedKey[] = [];
  for (const name of names.sort()) {
    const m = FPR_FILE.exec(name);
    if (m === null) continue;
    const file = path.join(dir, name);
    const keyring = await readPinnedFile(file);
    if (keyring.size !== 1 || keyring.fingerprints[0] !== m[1]) {
      throw new TrustError(
        'TRUST_STORE_ERROR',
        `${file} does not hold the key ${m[1]} it is named after (holds ${keyring.fingerprints.join(', ') || 'nothing'}): remove it and pin again`,
      );
    }
    out.push({ fingerprint: m[1] as string, file });
  }
  return out;
}

/** Unpins a key by fingerprint (any case, spaces allowed). KEY_NOT_PINNED if it is not pinned. */
export async function removeTrustedKey(fpr: string, options: TrustStoreOptions = {}): Promise<void> {
  const fingerprint = normalizeFingerprint(fpr);
  const file = path.join(options.dir ?? defaultTrustDir(), `${fingerprint}.asc`);
  try {
    await fs.unlink(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TrustError('KEY_NOT_PINNED', `key ${fingerprint} is not pinned`);
    }
    throw new TrustError('TRUST_STORE_ERROR', `cannot remove ${file}: ${String(e)}`, { cause: e });
  }
}

/**
 * The keyring manifests are verified with: the keys in `keyringFile` when given (`--keyring`),
 * else every pinned key. NO_TRUSTED_KEYS when there is none, with how to pin one.
 */
export async function loadKeyring(
  options: TrustStoreOptions & { keyringFile?: string } = {},
): Promise<TrustedKeyring> {
  if (options.keyringFile !== undefined) {
    const text = await readKeyFile(options.keyringFile);
    const keyring = await TrustedKeyring.fromArmored(text);
    if (keyring.size === 0) {
      throw new TrustError('NO_TRUSTED_KEYS', `${options.keyringFile} holds no key`);
    }
    return keyring;
  }
  const pinned = await listTrustedKeys(options);
  if (pinned.length === 0) {
    throw new TrustError(
      'NO_TRUSTED_KEYS',
      `no generator key is pinned (in ${options.dir ?? defaultTrustDir()}): pin one with ` +
        '`sysattest trust add KEYFILE`, or `sysattest trust add --from-server URL --fingerprint FPR` with the ' +
        "fingerprint your generator's operator gave you (or give --keyring FILE); manifests are never trusted without one",
    );
  }
  const texts = await Promise.all(pinned.map((k) => readKeyFile(k.file)));
  return TrustedKeyring.fromArmored(texts);
}

async function readPinnedFile(file: string): Promise<TrustedKeyring> {
  try {
    return await TrustedKeyring.fromArmored(await readKeyFile(file));
  } catch (e) {
    throw new TrustError(
      'TRUST_STORE_ERROR',
      `pinned key file ${file} is unusable: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

/** Creates `dir` (and parents) and makes it exactly 0700. */
async function ensureDir(dir: string): Promise<string> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  return dir;
}

/** Writes via a fresh temporary file in the same directory, fsync, then rename. */
export function writeAtomic(file: string, data: string | Uint8Array, mode: number): Promise<void> {
  return writeFileAtomic(file, data, { mode });
}

/** The file in the trust directory holding the secret the manifest cache seals with. */
export const CACHE_SEAL_FILE = 'cache-seal.key';

/**
 * The secret the local manifest cache seals verified manifests with (see ManifestCache): 32
 * random bytes in `<trust dir>/cache-seal.key`, mode 0600, made on first use. It lives with the
 * pinned keys because it is worth exactly as much: whoever can write the trust directory can pin
 * a key anyway. Used only when it is a regular file of this user, not readable or writable by
 * anyone else, of exactly 32 bytes; undefined otherwise, or when it cannot be made (a read-only
 * trust directory): the cache then verifies every manifest in full on every read, which is slower
 * but as safe.
 */
export async function loadCacheSealSecret(options: TrustStoreOptions = {}): Promise<Uint8Array | undefined> {
  const dir = options.dir ?? defaultTrustDir();
  const file = path.join(dir, CACHE_SEAL_FILE);
  const read = async (): Promise<Uint8Array | undefined> => {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch {
      return undefined;
    }
    try {
      const st = await fh.stat();
      const uid = process.getuid?.();
      if (!st.isFile() || st.size !== 32 || (st.mode & 0o077) !== 0 || (uid !== undefined && st.uid !== uid))
        return undefined;
      const bytes = await fh.readFile();
      return bytes.length === 32 ? new Uint8Array(bytes) : undefined;
    } finally {
      await fh.close();
    }
  };
  const existing = await read().catch(() => undefined);
  if (existing !== undefined) return existing;
  try {
    await fs.access(file);
    return undefined; // there, but not usable as a secret: left alone, not replaced
  } catch {
    // not there: make it
  }
  try {
    await ensureDir(dir);
    await writeAtomic(file, randomBytes(32), 0o600);
    return await read();
  } catch {
    return undefined;
  }
}
