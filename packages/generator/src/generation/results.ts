/**
 * What a generation run reports, whatever the package family: an event as each step happens
 * (for progress lines and the worker's log) and a result at the end. Its own module so that the
 * family generators, the container helper and the callers all import it, and none imports another
 * for its types.
 */

export type GenerationEvent =
  | { kind: 'batch-start'; packages: string[] }
  | { kind: 'manifest'; name: string; version: string; architecture: string; entries: number; file: string }
  | { kind: 'digest-mismatch'; name: string; version: string; paths: string[] }
  | { kind: 'failed'; request: string; message: string }
  | { kind: 'retry'; packages: string[]; reason: string };

/** Where the time of a run went: the package manager's share and podman's. */
export interface GenerationTiming {
  /** Time spent in the package manager inside containers. */
  packageManagerMs: number;
  /** Time spent by podman creating, mounting and removing containers. */
  podmanMs: number;
}

export interface GenerationResult extends GenerationTiming {
  manifests: { name: string; version: string; architecture: string; file: string }[];
  failures: { request: string; message: string }[];
  /** Time spent by us: mounting, reading the database, hashing, signing, writing. */
  ownMs: number;
}

/** A result with nothing in it yet. */
export function emptyResult(): GenerationResult {
  return { manifests: [], failures: [], packageManagerMs: 0, ownMs: 0, podmanMs: 0 };
}
