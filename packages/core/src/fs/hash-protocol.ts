import type { CapabilityMode, FileObservation } from './file-entry.js';

/**
 * Messages between HashPool (main thread) and hash-worker.js. Internal to the pool.
 *
 * Results are encoded in columns rather than as one object per path: structured-cloning ~100,000
 * objects, and collecting them, costs the main thread more CPU than the workers spend on lstat.
 * The common case (an `ok` regular file without capabilities) is a row of numbers plus 64 hex
 * characters; everything else travels as a plain FileObservation.
 */

/** Inspect `paths` under `root` (a host path) for run `runId`. */
export interface BatchRequest {
  kind: 'batch';
  runId: number;
  batchId: number;
  root: string;
  capabilities: CapabilityMode;
  md5: boolean;
  /**
   * Also SHA-1 / SHA-512 of regular files (to compare with apk `Z:` checksums and rpm SHA-512
   * file digests). Absent means false. The observation then carries `sha1` / `sha512`.
   */
  sha1?: boolean;
  sha512?: boolean;
  paths: string[];
}

/** The run is over: the worker drops its RootDir (and so its directory cache). */
export interface EndRun {
  kind: 'end-run';
  runId: number;
}

export type ToWorker = BatchRequest | EndRun;

/** Numbers per row of BatchResult.numbers. */
export const ROW = 8; // mode, uid, gid, size, mtimeMs, nlink, dev, ino

export interface BatchResult {
  kind: 'results';
  runId: number;
  batchId: number;
  /** Rows (ROW numbers each, one row per path) for the regular files observed `ok`. */
  numbers: Float64Array;
  /** 64 hex characters per path ('0' × 64 where the path is in `others`). */
  sha256: string;
  /** Paths whose resolvedPath differs from the path asked: [index, resolvedPath]. */
  resolved: [number, string][];
  /** Every other observation, whole: [index, observation]. */
  others: [number, FileObservation][];
  /** Bytes hashed (sum of the sizes of the regular files observed `ok`). */
  bytes: number;
}

/** The batch could not be processed at all (the root is gone, or a bug). */
export interface BatchFailure {
  kind: 'failed';
  runId: number;
  batchId: number;
  code: string;
  message: string;
}

/** Sent once, when the worker has loaded everything it needs (native modules included). */
export interface WorkerReady {
  kind: 'ready';
}

export type FromWorker = BatchResult | BatchFailure | WorkerReady;

const NO_HASH = '0'.repeat(64);

/** Worker side: observations → BatchResult. */
export function encodeResults(
  runId: number,
  batchId: number,
  observations: readonly FileObservation[],
): BatchResult {
  const numbers = new Float64Array(observations.length * ROW);
  const sha: string[] = new Array<string>(observations.length);
  const resolved: [number, string][] = [];
  const others: [number, FileObservation][] = [];
  let bytes = 0;
  for (let i = 0; i < observations.length; i++) {
    const o = observations[i] as FileObservation;
    if (o.status === 'ok' && o.type === 'file') bytes += o.size;
    if (
      o.status !== 'ok' ||
      o.type !== 'file' ||
      o.capability !== undefined ||
      o.md5 !== undefined ||
      'sha1' in o ||
      'sha512' in o
    ) {
      others.push([i, o]);
      sha[i] = NO_HASH;
      continue;
    }
    const r = i * ROW;
    numbers[r] = o.mode;
    numbers[r + 1] = o.uid;
    numbers[r + 2] = o.gid;
    numbers[r + 3] = o.size;
    numbers[r + 4] = o.mtimeMs;
    numbers[r + 5] = o.nlink;
    numbers[r + 6] = o.dev;
    numbers[r + 7] = o.ino;
    sha[i] = o.sha256;
    if (o.resolvedPath !== o.path) resolved.push([i, o.resolvedPath]);
  }
  return { kind: 'results', runId, batchId, numbers, sha256: sha.join(''), resolved, others, bytes };
}

/** Main side: BatchResult → one observation per path of the batch, in order. */
export function decodeResults(
  result: BatchResult,
  paths: readonly string[],
  start: number,
  count: number,
): FileObservation[] {
  const out = new Array<FileObservation>(count);
  for (const [i, o] of result.others) out[i] = o;
  const resolved = new Map(result.resolved);
  const { numbers, sha256 } = result;
  for (let i = 0; i < count; i++) {
    if (out[i] !== undefined) continue;
    const path = paths[start + i] as string;
    const r = i * ROW;
    out[i] = {
      status: 'ok',
      path,
      resolvedPath: resolved.get(i) ?? path,
      type: 'file',
      mode: numbers[r] as number,
      uid: numbers[r + 1] as number,
      gid: numbers[r + 2] as number,
      size: numbers[r + 3] as number,
      mtimeMs: numbers[r + 4] as number,
      nlink: numbers[r + 5] as number,
      dev: numbers[r + 6] as number,
      ino: numbers[r + 7] as number,
      sha256: sha256.slice(i * 64, i * 64 + 64),
    };
  }
  return out;
}
