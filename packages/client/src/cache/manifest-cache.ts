import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  MANIFEST_LIMITS,
  formatPlatform,
  sha256Hex,
  verifyManifest,
  type Platform,
  type TrustedKeyring,
  type VerifiedManifest,
} from '@sysattest/core';
import { writeAtomic } from '../trust/store.js';

/**
 * A local, content-addressed cache of manifests that verified, so a second run needs almost no
 * network and `--offline` can run from it alone. It is never a trust root:
 *
 *   <dir>/objects/<sha256 of the bytes>       the exact manifest bytes
 *   <dir>/objects/<sha256 of the bytes>.asc   its detached signature
 *   <dir>/index/<sha256 of the key>           JSON {platform, name, version, arch, digest}
 *
 * The key is (platform, name, version, arch). Every read re-verifies the bytes against the
 * keyring given (about a millisecond) and checks they are the manifest asked for; anything that
 * fails (a corrupt or tampered object, a signature by a key no longer pinned, a dangling index
 * entry) is removed and reported as a miss, never trusted. Writes are atomic (temporary file,
 * fsync, rename). The number of objects and their total size are bounded: past either bound, the
 * least recently used objects are removed.
 */
export interface ManifestCacheOptions {
  /** Most objects kept (default 20,000). */
  maxEntries?: number;
  /** Most bytes of manifests kept (default 2 GiB). */
  maxBytes?: number;
}

export interface CacheKey {
  name: string;
  version: string;
  arch: string;
}

/** `$SYSATTEST_CLIENT_HOME/cache`, else `$XDG_CACHE_HOME/sysattest`, else `~/.cache/sysattest`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SYSATTEST_CLIENT_HOME) return path.join(env.SYSATTEST_CLIENT_HOME, 'cache');
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'sysattest');
}

const MAX_SIGNATURE_BYTES = 64 * 1024;
const MAX_INDEX_BYTES = 4096;
const DIGEST = /^[0-9a-f]{64}$/;

interface IndexRecord {
  platform: string;
  name: string;
  version: string;
  arch: string;
  digest: string;
}

export class ManifestCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly objects: string;
  private readonly index: string;

  constructor(
    readonly dir: string,
    options: ManifestCacheOptions = {},
  ) {
    this.maxEntries = options.maxEntries ?? 20_000;
    this.maxBytes = options.maxBytes ?? 2 * 1024 * 1024 * 1024;
    this.objects = path.join(dir, 'objects');
    this.index = path.join(dir, 'index');
  }

  /** The verified manifest for the key, re-verified now; undefined on a miss or a bad entry (removed). */
  async get(
    platform: Platform,
    key: CacheKey,
    keyring: TrustedKeyring,
  ): Promise<VerifiedManifest | undefined> {
    const platformId = formatPlatform({ ...platform, arch: key.arch });
    const indexFile = path.join(this.index, indexName(platformId, key));
    const raw = await readSmall(indexFile, MAX_INDEX_BYTES);
    if (raw === undefined) return undefined;
    let record: IndexRecord | undefined;
    try {
      record = JSON.parse(raw.toString('utf8')) as IndexRecord;
    } catch {
      record = undefined;
    }
    if (
      record === undefined ||
      typeof record.digest !== 'string' ||
      !DIGEST.test(record.digest) ||
      record.platform !== platformId ||
      record.name !== key.name ||
      record.version !== key.version ||
      record.arch !== key.arch
    ) {
      await fs.rm(indexFile, { force: true });
      return undefined;
    }
    const objectFile = path.join(this.objects, record.digest);
    const bytes = await readSmall(objectFile, MANIFEST_LIMITS.maxBytes);
    const signature = await readSmall(`${objectFile}.asc`, MAX_SIGNATURE_BYTES);
    const drop = async (): Promise<undefined> => {
      await Promise.all([
        fs.rm(indexFile, { force: true }),
        fs.rm(objectFile, { force: true }),
        fs.rm(`${objectFile}.asc`, { force: true }),
      ]);
      return undefined;
    };
    if (bytes === undefined || signature === undefined || sha256Hex(bytes) !== record.digest) return drop();
    let verified: VerifiedManifest;
    try {
      verified = await verifyManifest(bytes, signature.toString('utf8'), keyring);
    } catch {
      return drop();
    }
    const pkg = verified.content.package;
    if (
      verified.content.platform !== platformId ||
      pkg.name !== key.name ||
      pkg.version !== key.version ||
      pkg.architecture !== key.arch
    ) {
      return drop();
    }
    // Recently used: prune() removes the oldest first.
    const now = new Date();
    await fs.utimes(objectFile, now, now).catch(() => undefined);
    return verified;
  }

  /**
   * Stores a manifest that verified (only a VerifiedManifest can be stored). The bounds are
   * enforced by prune(), which the caller runs once after a batch of puts (it lists the objects).
   */
  async put(manifest: VerifiedManifest): Promise<void> {
    const pkg = manifest.content.package;
    const key: CacheKey = { name: pkg.name, version: pkg.version, arch: pkg.architecture };
    await fs.mkdir(this.objects, { recursive: true, mode: 0o755 });
    await fs.mkdir(this.index, { recursive: true, mode: 0o755 });
    const objectFile = path.join(this.objects, manifest.digest);
    await writeAtomic(`${objectFile}.asc`, manifest.signature, 0o644);
    await writeAtomic(objectFile, manifest.bytes, 0o644);
    const record: IndexRecord = { platform: manifest.content.platform, ...key, digest: manifest.digest };
    await writeAtomic(
      path.join(this.index, indexName(manifest.content.platform, key)),
      JSON.stringify(record),
      0o644,
    );
  }

  /** Removes least recently used objects (and stray temporary files) until within the bounds. */
  async prune(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.objects);
    } catch {
      return;
    }
    const objects: { name: string; size: number; atime: number }[] = [];
    for (const name of names) {
      if (!DIGEST.test(name)) continue;
      try {
        const st = await fs.stat(path.join(this.objects, name));
        objects.push({ name, size: st.size, atime: st.mtimeMs });
      } catch {
        // removed meanwhile
      }
    }
    let total = objects.reduce((n, o) => n + o.size, 0);
    let count = objects.length;
    if (count <= this.maxEntries && total <= this.maxBytes) return;
    objects.sort((a, b) => a.atime - b.atime);
    for (const o of objects) {
      if (count <= this.maxEntries && total <= this.maxBytes) break;
      const file = path.join(this.objects, o.name);
      await fs.rm(file, { force: true });
      await fs.rm(`${file}.asc`, { force: true });
      count--;
      total -= o.size;
    }
    // Index entries of removed objects are dangling: remove them too (get() would, lazily).
    let entries: string[] = [];
    try {
      entries = await fs.readdir(this.index);
    } catch {
      return;
    }
    const kept = new Set(objects.slice(objects.length - count).map((o) => o.name));
    for (const name of entries) {
      const file = path.join(this.index, name);
      const raw = await readSmall(file, MAX_INDEX_BYTES);
      let digest: unknown;
      try {
        digest = raw === undefined ? undefined : (JSON.parse(raw.toString('utf8')) as IndexRecord).digest;
      } catch {
        digest = undefined;
      }
      if (typeof digest !== 'string' || !kept.has(digest)) await fs.rm(file, { force: true });
    }
  }
}

function indexName(platformId: string, key: CacheKey): string {
  return createHash('sha256')
    .update(JSON.stringify([platformId, key.name, key.version, key.arch]))
    .digest('hex');
}

async function readSmall(file: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > maxBytes) return undefined;
    return await fh.readFile();
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}
