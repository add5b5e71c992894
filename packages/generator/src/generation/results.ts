/**
 * What a generation run reports, whatever the package family: an event as each step happens
 * (for progress lines and the worker's log) and a result at the end. Its own module so that the
 * family generators, the container helper and the callers all import it, and none imports another
 * for its types.
 */
import { GeneratorError, type GeneratorErrorCode } from '../errors.js';

/**
 * A request that got no manifest. Callers decide by `code` (UNKNOWN_PACKAGE, UNKNOWN_VERSION:
 * the image does not offer it; GENERATION_FAILED: the install or the manifest failed;
 * OUTPUT_FAILED: the sink could not keep it) and match it to what they asked by `name` and
 * `version`, never by the text.
 */
export interface GenerationFailure {
  /** The request as given or as the package manager took it (`name=version`…), for messages. */
  request: string;
  name: string;
  /** Undefined for a Debian request without a version that failed before one was chosen. */
  version?: string;
  code: GeneratorErrorCode;
  message: string;
}

/** A manifest made and handed to the sink; `file` is where the sink keeps it (ManifestSink.put). */
export interface ProducedManifest {
  name: string;
  version: string;
  architecture: string;
  file: string;
}

export type GenerationEvent =
  | { kind: 'batch-start'; packages: string[] }
  | ({ kind: 'manifest'; entries: number } & ProducedManifest)
  | { kind: 'digest-mismatch'; name: string; version: string; paths: string[] }
  | ({ kind: 'failed' } & GenerationFailure)
  | { kind: 'retry'; packages: string[]; reason: string }
  /** The package manager refused the batch as a whole: it is tried again in two halves. */
  | { kind: 'batch-split'; packages: string[]; reason: string }
  | { kind: 'isolated'; name: string; version: string; reason: string };

/** Where the time of a run went: the package manager's share and podman's. */
export interface GenerationTiming {
  /** Time spent in the package manager inside containers. */
  packageManagerMs: number;
  /** Time spent by podman creating, mounting and removing containers. */
  podmanMs: number;
}

/** What a run made and what it could not. */
export interface GenerationOutcome {
  manifests: ProducedManifest[];
  failures: GenerationFailure[];
}

export interface GenerationResult extends GenerationOutcome, GenerationTiming {
  /** Time spent by us: mounting, reading the database, hashing, signing, handing over. */
  ownMs: number;
  /** The part of packageManagerMs spent downloading (Debian: into the shared cache, lock waits included). */
  downloadMs: number;
  /** Requests whose manifest made in a shared container was set aside and made again alone. */
  isolated: number;
}

/** A result with nothing in it yet. */
export function emptyResult(): GenerationResult {
  return {
    manifests: [],
    failures: [],
    packageManagerMs: 0,
    ownMs: 0,
    podmanMs: 0,
    downloadMs: 0,
    isolated: 0,
  };
}

/** The code and message a thrown error stands for: a GeneratorError's own, else GENERATION_FAILED. */
export function failureOf(e: unknown): { code: GeneratorErrorCode; message: string } {
  if (e instanceof GeneratorError) return { code: e.code, message: e.message };
  return { code: 'GENERATION_FAILED', message: e instanceof Error ? e.message : String(e) };
}

/** Records a failure in the outcome and reports it as an event. */
export function recordFailure(
  into: Pick<GenerationOutcome, 'failures'>,
  emit: (e: GenerationEvent) => void,
  failure: GenerationFailure,
): void {
  into.failures.push(failure);
  emit({ kind: 'failed', ...failure });
}
