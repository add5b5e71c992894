import type { CapabilityMode, FileObservation } from './file-entry.js';

/** Messages between HashPool (main thread) and hash-worker.js. Internal to the pool. */

/** Inspect `paths` under `root` (a host path) for run `runId`. */
export interface BatchRequest {
  kind: 'batch';
  runId: number;
  batchId: number;
  root: string;
  capabilities: CapabilityMode;
  paths: string[];
}

/** The run is over: the worker drops its RootDir (and so its directory cache). */
export interface EndRun {
  kind: 'end-run';
  runId: number;
}

export type ToWorker = BatchRequest | EndRun;

export interface BatchResult {
  kind: 'results';
  runId: number;
  batchId: number;
  /** One per path, in the request's order. */
  observations: FileObservation[];
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

export type FromWorker = BatchResult | BatchFailure;
