import { createHash } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CATALOG_KIND,
  CATALOG_LIMITS,
  MANIFEST_LIMITS,
  openDocumentSeal,
  sealDocument,
  verifyCatalog,
  type VerifiedCatalog,
  SEAL_SECRET_BYTES,
  formatPlatform,
  openSealedManifest,
  sealManifest,
  sha256Hex,
  verifyManifest,
  type DocumentSeal,
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
 *   <dir>/index/<sha256 of the key>           JSON {platform, name, version, arch, digest,
 *                                             signature?, seal?}
 *   <dir>/catalogs/<sha256>, .asc, .json      catalog snapshots the same way (JSON {digest,
 *                                             signature?, seal?}); the newest few are kept
 *
 * The key is (platform, name, version, arch). Every read checks the bytes against the keyring
 * given and that they are the manifest asked for; anything that fails (a corrupt or tampered
 * object, a signature by a key no longer pinned, a dangling index entry) is removed and reported
 * as a miss, never trusted.
 *
 * How a read checks: with a seal secret (`sealSecret`, kept with the pinned keys, see
 * trust/store.ts), each stored manifest carries a seal (core's sealDocument: an HMAC under that
 * secret over the bytes, the signature, the signer and everything the keyring held for the
 * signer's key when the signature verified). A read whose seal holds skips repeating the
 * signature check and the schema validation (about 4 s of CPU over a whole machine's 35 MB of
 * manifests); one whose seal does not hold (no seal, another secret, the key re-pinned with a
 * new revocation or expiry, any byte changed) is verified in full, and sealed again if it passes.
 * Without a secret every read is verified in full. Writes are atomic (temporary file, fsync,
 * rename). The number of objects and their total size are bounded: past either bound, the least
 * recently used objects are removed.
 */
export interface ManifestCacheOptions {
  /**
   * The secret seals are made and checked with (≥ 32 bytes); without it every read verifies the
   * signature and the schema again.
   */
  sealSecret?: Uint8Array;
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
/** Largest signature written into the index record (bigger ones are read from the `.asc`). */
const MAX_INLINE_SIGNATURE_BYTES = 8 * 1024;
const MAX_INDEX_BYTES = 16 * 1024;
/** Catalog snapshots kept (a few platforms, a few refreshes each). */
const MAX_CATALOGS = 16;
/** An object read is marked recently used (mtime) when its mark is older than this. */
const TOUCH_AFTER_MS = 60 * 60 * 1000;
const DIGEST = /^[0-9a-f]{64}$/;

interface IndexRecord {
  platform: string;
  name: string;
  version: string;
  arch: string;
  digest: string;
  /** The armored signature, when small (also in `<object>.asc`). */
  signature?: string;
  seal?: DocumentSeal;
}

/** The newest catalog snapshot verified for a platform: its digest and signed time. */
export interface CatalogMark {
  digest: string;
  generatedAt: string;
}

/** Where the catalog marks live, under the catalogs directory. */
const MARKS_FILE = 'newest.json';

export class ManifestCache {
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly objects: string;
  private readonly index: string;
  private readonly catalogs: string;
  private readonly sealSecret: Uint8Array | undefined;
  /** Manifests read back so far: opened by their seal, or verified in full (OpenPGP and schema). */
  readonly reads = { sealed: 0, inFull: 0 };
  /** The index's file names, listed once for has(). */
  private indexNames: Set<string> | undefined;

  constructor(
    readonly dir: string,
    options: ManifestCacheOptions = {},
  ) {
    if (options.sealSecret !== undefined && options.sealSecret.length < SEAL_SECRET_BYTES)
      throw new TypeError(`a seal secret is at least ${SEAL_SECRET_BYTES} bytes`);
    this.sealSecret = options.sealSecret;
    this.maxEntries = options.maxEntries ?? 20_000;
    this.maxBytes = options.maxBytes ?? 2 * 1024 * 1024 * 1024;
    this.objects = path.join(dir, 'objects');
    this.index = path.join(dir, 'index');
    this.catalogs = path.join(dir, 'catalogs');
  }

  /**
   * Whether the cache has an entry for the key: a hint only (the index's names, listed once;
   * nothing read or checked); get() says whether the entry is good.
   */
  has(platform: Platform, key: CacheKey): boolean {
    // One listing of the index for every question (a stat per package costs more): names of
    // entries put since are added by writeIndex, and a stale "yes" is what get() is for.
    if (this.indexNames === undefined) {
      try {
        this.indexNames = new Set(fsSync.readdirSync(this.index));
      } catch {
        this.indexNames = new Set();
      }
    }
    return this.indexNames.has(indexName(formatPlatform({ ...platform, arch: key.arch }), key));
  }

  /** The verified manifest for the key, checked now; undefined on a miss or a bad entry (removed). */
  async get(
    platform: Platform,
    key: CacheKey,
    keyring: TrustedKeyring,
  ): Promise<VerifiedManifest | undefined> {
    const platformId = formatPlatform({ ...platform, arch: key.arch });
    const indexFile = path.join(this.index, indexName(platformId, key));
    const raw = readSmall(indexFile, MAX_INDEX_BYTES);
    if (raw === undefined) return undefined;
    let record: IndexRecord | undefined;
    try {
      record = JSON.parse(raw.bytes.toString('utf8')) as IndexRecord;
    } catch {
      record = undefined;
    }
    if (
      typeof record !== 'object' ||
      record === null ||
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
    const drop = async (): Promise<undefined> => {
      await Promise.all([
        fs.rm(indexFile, { force: true }),
        fs.rm(objectFile, { force: true }),
        fs.rm(`${objectFile}.asc`, { force: true }),
      ]);
      return undefined;
    };
    const object = readSmall(objectFile, MANIFEST_LIMITS.maxBytes);
    if (object === undefined) return drop();
    const bytes = object.bytes;
    const isAsked = (m: VerifiedManifest): boolean => {
      const pkg = m.content.package;
      return (
        m.digest === record.digest &&
        m.content.platform === platformId &&
        pkg.name === key.name &&
        pkg.version === key.version &&
        pkg.architecture === key.arch
      );
    };
    const touch = async (): Promise<void> => {
      // Recently used: prune() removes the oldest first.
      if (Date.now() - object.mtimeMs < TOUCH_AFTER_MS) return;
      const now = new Date();
      await fs.utimes(objectFile, now, now).catch(() => undefined);
    };

    const secret = this.sealSecret;
    if (secret !== undefined && record.seal !== undefined && typeof record.signature === 'string') {
      const sealed = openSealedManifest(bytes, record.signature, record.seal, keyring, secret, {
        adoptBytes: true, // read for this call, never changed
      });
      if (sealed !== undefined && isAsked(sealed)) {
        this.reads.sealed++;
        await touch();
        return sealed;
      }
    }

    // In full: the signature against the keyring, the schema, the canonical form.
    const signature =
      typeof record.signature === 'string'
        ? record.signature
        : readSmall(`${objectFile}.asc`, MAX_SIGNATURE_BYTES)?.bytes.toString('utf8');
    if (signature === undefined || sha256Hex(bytes) !== record.digest) return drop();
    let verified: VerifiedManifest;
    try {
      verified = await verifyManifest(bytes, signature, keyring, { adoptBytes: true });
    } catch {
      return drop();
    }
    if (!isAsked(verified)) return drop();
    this.reads.inFull++;
    if (secret !== undefined) {
      // Sealed from now on (a cache written without a secret, or a key whose state changed).
      await this.writeIndex(verified, keyring).catch(() => undefined);
    }
    await touch();
    return verified;
  }

  /**
   * Stores a manifest that verified (only a VerifiedManifest can be stored), sealed for `keyring`
   * (the keys it verified against) when the cache has a secret. The bounds are enforced by
   * prune(), which the caller runs once after a batch of puts (it lists the objects).
   */
  async put(manifest: VerifiedManifest, keyring?: TrustedKeyring): Promise<void> {
    await fs.mkdir(this.objects, { recursive: true, mode: 0o755 });
    await fs.mkdir(this.index, { recursive: true, mode: 0o755 });
    const objectFile = path.join(this.objects, manifest.digest);
    await writeAtomic(`${objectFile}.asc`, manifest.signature, 0o644);
    await writeAtomic(objectFile, manifest.bytes, 0o644);
    await this.writeIndex(manifest, keyring);
  }

  /** The index record of a stored manifest, sealed when there is a secret and a keyring. */
  private async writeIndex(manifest: VerifiedManifest, keyring: TrustedKeyring | undefined): Promise<void> {
    const pkg = manifest.content.package;
    const key: CacheKey = { name: pkg.name, version: pkg.version, arch: pkg.architecture };
    const record: IndexRecord = { platform: manifest.content.platform, ...key, digest: manifest.digest };
    const seal =
      this.sealSecret === undefined || keyring === undefined
        ? undefined
        : sealManifest(manifest, keyring, this.sealSecret);
    if (seal !== undefined && manifest.signature.length <= MAX_INLINE_SIGNATURE_BYTES) {
      record.signature = manifest.signature;
      record.seal = seal;
    }
    const name = indexName(manifest.content.platform, key);
    await writeAtomic(path.join(this.index, name), JSON.stringify(record), 0o644);
    this.indexNames?.add(name);
  }

  /**
   * The catalog snapshot with this digest, verified against `keyring` (through its seal when it
   * holds, else in full, then sealed), or undefined (not cached, or refused: then removed).
   */
  async getCatalog(digest: string, keyring: TrustedKeyring): Promise<VerifiedCatalog | undefined> {
    if (!DIGEST.test(digest)) return undefined;
    const file = path.join(this.catalogs, digest);
    const bytes = readSmall(file, CATALOG_LIMITS.maxBytes)?.bytes;
    if (bytes === undefined) return undefined;
    const raw = readSmall(`${file}.json`, MAX_INDEX_BYTES);
    let record: { signature?: unknown; seal?: unknown } = {};
    try {
      if (raw !== undefined) record = JSON.parse(raw.bytes.toString('utf8')) as typeof record;
    } catch {
      record = {};
    }
    const secret = this.sealSecret;
    if (secret !== undefined && typeof record.signature === 'string' && record.seal !== undefined) {
      const opened = openDocumentSeal(CATALOG_KIND, bytes, record.signature, record.seal, keyring, secret, {
        adoptBytes: true,
      });
      if (opened !== undefined && opened.digest === digest) return opened;
    }
    const signature = readSmall(`${file}.asc`, MAX_SIGNATURE_BYTES)?.bytes.toString('utf8');
    let verified: VerifiedCatalog | undefined;
    try {
      verified =
        signature === undefined
          ? undefined
          : await verifyCatalog(bytes, signature, keyring, { adoptBytes: true });
    } catch {
      verified = undefined;
    }
    if (verified === undefined || verified.digest !== digest) {
      await Promise.all(['', '.asc', '.json'].map((ext) => fs.rm(`${file}${ext}`, { force: true })));
      return undefined;
    }
    if (secret !== undefined) await this.writeCatalogRecord(verified, keyring).catch(() => undefined);
    return verified;
  }

  /**
   * The newest catalog snapshot verified so far, per platform id (see recordCatalogMark): a
   * server that later offers an older one is rolling the client back. Empty when never recorded
   * or unreadable (a damaged file is as good as none: the next verified snapshot records again).
   */
  catalogMarks(): Map<string, CatalogMark> {
    const raw = readSmall(path.join(this.catalogs, MARKS_FILE), MAX_INDEX_BYTES);
    const out = new Map<string, CatalogMark>();
    if (raw === undefined) return out;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.bytes.toString('utf8'));
    } catch {
      return out;
    }
    if (typeof parsed !== 'object' || parsed === null) return out;
    for (const [platform, v] of Object.entries(parsed as Record<string, unknown>)) {
      const m = v as Partial<CatalogMark> | null;
      if (typeof m?.digest === 'string' && DIGEST.test(m.digest) && typeof m.generatedAt === 'string')
        out.set(platform, { digest: m.digest, generatedAt: m.generatedAt });
    }
    return out;
  }

  /** Records `mark` as the newest snapshot of `platform` when it is newer than the one recorded. */
  async recordCatalogMark(platform: string, mark: CatalogMark): Promise<void> {
    const marks = this.catalogMarks();
    const known = marks.get(platform);
    if (known !== undefined && Date.parse(known.generatedAt) >= Date.parse(mark.generatedAt)) return;
    marks.set(platform, mark);
    await fs.mkdir(this.catalogs, { recursive: true, mode: 0o755 });
    await writeAtomic(path.join(this.catalogs, MARKS_FILE), JSON.stringify(Object.fromEntries(marks)), 0o644);
  }

  /** Stores a catalog snapshot that verified (sealed when the cache has a secret); keeps the newest few. */
  async putCatalog(catalog: VerifiedCatalog, keyring?: TrustedKeyring): Promise<void> {
    await fs.mkdir(this.catalogs, { recursive: true, mode: 0o755 });
    const file = path.join(this.catalogs, catalog.digest);
    await writeAtomic(`${file}.asc`, catalog.signature, 0o644);
    await writeAtomic(file, catalog.bytes, 0o644);
    await this.writeCatalogRecord(catalog, keyring);
    // Bounded: the most recently stored MAX_CATALOGS snapshots stay.
    // The snapshots the marks name stay: they are what a rolled-back server is checked against.
    const marked = new Set([...this.catalogMarks().values()].map((m) => m.digest));
    const names = (await fs.readdir(this.catalogs)).filter((n) => DIGEST.test(n) && !marked.has(n));
    if (names.length <= MAX_CATALOGS) return;
    const dated = await Promise.all(
      names.map(async (n) => ({
        n,
        t: (await fs.stat(path.join(this.catalogs, n)).catch(() => undefined))?.mtimeMs ?? 0,
      })),
    );
    dated.sort((a, b) => b.t - a.t);
    for (const { n } of dated.slice(MAX_CATALOGS)) {
      await Promise.all(
        ['', '.asc', '.json'].map((ext) => fs.rm(path.join(this.catalogs, `${n}${ext}`), { force: true })),
      );
    }
  }

  private async writeCatalogRecord(
    catalog: VerifiedCatalog,
    keyring: TrustedKeyring | undefined,
  ): Promise<void> {
    const seal =
      this.sealSecret === undefined || keyring === undefined
        ? undefined
        : sealDocument(CATALOG_KIND, catalog, keyring, this.sealSecret);
    const record =
      seal !== undefined && catalog.signature.length <= MAX_INLINE_SIGNATURE_BYTES
        ? { digest: catalog.digest, signature: catalog.signature, seal }
        : { digest: catalog.digest };
    await writeAtomic(path.join(this.catalogs, `${catalog.digest}.json`), JSON.stringify(record), 0o644);
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
      // Synchronous: thousands of small local stats, each a thread-pool round trip otherwise.
      let st: fsSync.Stats | undefined;
      try {
        st = fsSync.statSync(path.join(this.objects, name), { throwIfNoEntry: false });
      } catch {
        continue; // unreadable: left alone
      }
      if (st !== undefined) objects.push({ name, size: st.size, atime: st.mtimeMs }); // else removed meanwhile
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
      const raw = readSmall(file, MAX_INDEX_BYTES);
      let digest: unknown;
      try {
        digest =
          raw === undefined ? undefined : (JSON.parse(raw.bytes.toString('utf8')) as IndexRecord).digest;
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

/**
 * A file of at most `maxBytes`, opened without following a symlink and without blocking on a
 * FIFO; undefined when it is not there, not a regular file, too large or unreadable. Synchronous:
 * cache files are small and local, and 1,600 promise-based open/fstat/read/close round trips
 * through the thread pool cost the main thread ~0.4 s of a whole-machine run.
 */
function readSmall(file: string, maxBytes: number): { bytes: Buffer; mtimeMs: number } | undefined {
  let fd: number;
  try {
    fd = fsSync.openSync(
      file,
      fsSync.constants.O_RDONLY | fsSync.constants.O_NONBLOCK | fsSync.constants.O_NOFOLLOW,
    );
  } catch {
    return undefined;
  }
  try {
    const st = fsSync.fstatSync(fd);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    const bytes = Buffer.allocUnsafe(st.size);
    let total = 0;
    while (total < st.size) {
      const n = fsSync.readSync(fd, bytes, total, st.size - total, null);
      if (n === 0) return undefined; // shrank while read: a writer is at work, not ours to trust
      total += n;
    }
    return { bytes, mtimeMs: st.mtimeMs };
  } catch {
    return undefined;
  } finally {
    fsSync.closeSync(fd);
  }
}
