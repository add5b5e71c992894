import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { GeneratorError } from '../errors.js';
import { spawnCapture } from '../podman/process.js';
import { CACHE_LOCKS } from './apt-install.js';

/**
 * Keeps a platform's shared apt download cache (apt-install.ts) under a size: the .debs used least
 * recently go first, until the cache is at most 80 % of the limit (so it is not pruned again after
 * every batch). Deleting any .deb is always safe for what gets signed (apt fetches it again and
 * checks it against the signed index); what must not happen is a deletion between a container's
 * download and its install, so the files go under an exclusive lock on the cache's in-use lock,
 * which every container holds shared for its whole apt run. If a container holds it, the prune is
 * skipped and tried again after the next batch.
 *
 * `evictions` is the pure rule; `pruneAptCache` reads the directory and deletes.
 */

export interface CachedDeb {
  name: string;
  bytes: number;
  /** Last use as the file system tells it: the later of its access and modification times. */
  lastUsedMs: number;
}

/** Prune down to this share of the limit. */
const LOW_WATER = 0.8;

/** The files to delete so that what stays is at most LOW_WATER × maxBytes; none while under maxBytes. */
export function evictions(files: readonly CachedDeb[], maxBytes: number): CachedDeb[] {
  const total = files.reduce((sum, f) => sum + f.bytes, 0);
  if (total <= maxBytes) return [];
  const target = Math.floor(maxBytes * LOW_WATER);
  const oldestFirst = [...files].sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.name.localeCompare(b.name));
  const out: CachedDeb[] = [];
  let kept = total;
  for (const f of oldestFirst) {
    if (kept <= target) break;
    out.push(f);
    kept -= f.bytes;
  }
  return out;
}

export interface PruneResult {
  /** Bytes of .debs in the cache before pruning. */
  totalBytes: number;
  deleted: number;
  freedBytes: number;
  /** A container was using the cache: nothing was deleted this time. */
  busy: boolean;
}

/** The cache's complete .debs (regular files directly in it; `partial/` and locks are apt's and ours). */
export async function listCachedDebs(dir: string): Promise<CachedDeb[]> {
  const out: CachedDeb[] = [];
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  for (const name of names) {
    if (!name.endsWith('.deb')) continue;
    const st = await fsp.lstat(path.join(dir, name)).catch(() => undefined);
    if (st === undefined || !st.isFile()) continue;
    out.push({ name, bytes: st.size, lastUsedMs: Math.max(st.atimeMs, st.mtimeMs) });
  }
  return out;
}

/** Deletes the least recently used .debs of `dir` past `maxBytes` (see the module comment). */
export async function pruneAptCache(
  dir: string,
  maxBytes: number,
  opts: { signal?: AbortSignal } = {},
): Promise<PruneResult> {
  const files = await listCachedDebs(dir);
  const totalBytes = files.reduce((sum, f) => sum + f.bytes, 0);
  const doomed = evictions(files, maxBytes);
  if (doomed.length === 0) return { totalBytes, deleted: 0, freedBytes: 0, busy: false };
  // flock -n: give up at once if a container holds the lock; xargs -0 takes any number of names.
  const lock = path.join(dir, CACHE_LOCKS.inUse);
  const r = await spawnCapture(
    'flock',
    ['--exclusive', '--nonblock', '--conflict-exit-code', '75', lock, 'xargs', '-0', 'rm', '-f', '--'],
    {
      input: doomed.map((f) => `${path.join(dir, f.name)}\0`).join(''),
      signal: opts.signal,
      timeoutMs: 10 * 60_000,
    },
  );
  if (r.code === 75) return { totalBytes, deleted: 0, freedBytes: 0, busy: true };
  if (r.code !== 0) {
    throw new GeneratorError(
      'GENERATION_FAILED',
      `pruning the apt cache ${dir} failed (exit ${r.code ?? r.exitSignal}): ${r.stderr.trim().slice(-400)}`,
    );
  }
  const freedBytes = doomed.reduce((sum, f) => sum + f.bytes, 0);
  return { totalBytes, deleted: doomed.length, freedBytes, busy: false };
}
