import * as os from 'node:os';
import { Worker } from 'node:worker_threads';
import { SysattestError } from '../errors.js';
import type { CapabilityMode, FileObservation } from './file-entry.js';
import { decodeResults, ROW, type BatchRequest, type FromWorker, type ToWorker } from './hash-protocol.js';
import { RootDir } from './in-root.js';

/**
 * Inspects and hashes many paths inside a root on every core: a fixed set of worker threads, each
 * running inspectFile (see file-entry.ts) on batches of paths with synchronous I/O and one reused
 * 1 MiB read buffer, and keeping one RootDir (directory cache) per run.
 *
 * Memory stays bounded: paths are sent in batches of at most `batchSize`, each worker has at most
 * `maxInFlightPerWorker` batches queued, and an iterator that is not being read stops the
 * dispatching once `maxBufferedBatches` results are waiting. No file is ever read whole.
 *
 * A worker that dies (crash, out of memory) rejects every run in progress with
 * HashPoolError('WORKER_FAILED') and makes the pool unusable; close() rejects runs in progress
 * with HashPoolError('POOL_CLOSED'). Idle workers do not keep the process alive, but close() the
 * pool when done with it.
 */

/** Failures of the pool itself (not of a file: those are FileObservation results). */
/** What an observation of a regular file carries besides FileEntry when HashPoolOptions asked. */
export interface ExtraDigests {
  sha1?: string;
  sha512?: string;
}

export class HashPoolError extends SysattestError<'WORKER_FAILED' | 'POOL_CLOSED'> {}

export interface HashPoolOptions {
  /** Worker threads (default: os.availableParallelism()). */
  threads?: number;
  /** Most paths per message to a worker (default 256); batches shrink near the end of a run. */
  batchSize?: number;
  /** Batches queued per worker (default 2: one being worked on, one waiting). */
  maxInFlightPerWorker?: number;
  /**
   * How runs in progress share the threads: `'round-robin'` (default: each gets batches in turn,
   * so a small run is not stuck behind a large one) or `'first-come'` (a run's paths all go
   * before the next run's: for a pipeline that queues the next run while it consumes this one).
   */
  runOrder?: 'round-robin' | 'first-come';
  /** Batches of results an iterator may hold unread before dispatching pauses (default 64). */
  maxBufferedBatches?: number;
  /** Which regular files get `security.capability` read (see CapabilityMode; default 'executable'). */
  capabilities?: CapabilityMode | boolean;
  /** Also compute MD5 of regular files (see InspectOptions.md5; default false). */
  md5?: boolean;
  /**
   * Also compute SHA-1 / SHA-512 of regular files (default false), only to compare with a
   * distribution's own digests (apk `Z:` checksums, rpm SHA-512 file digests). Each observed
   * `ok` regular file then carries a `sha1` / `sha512` property (lower-case hex); see
   * ExtraDigests. They cost a second read of each file, made only when asked for.
   */
  sha1?: boolean;
  sha512?: boolean;
  /** The worker script (default: hash-worker.js next to this file). For tests and bundlers. */
  workerUrl?: URL;
}

export interface HashProgress {
  filesDone: number;
  filesTotal: number;
  /** Bytes of regular files hashed so far. */
  bytesDone: number;
}

export interface InspectManyOptions {
  /** Called after each batch completes (a few hundred files). If it throws, the run rejects with that. */
  onProgress?: (progress: HashProgress) => void;
}

const MIN_BATCH = 16;

/** A results message of the right shape for a batch of `count` paths. */
function isWellFormed(msg: FromWorker & { kind: 'results' }, count: number): boolean {
  return (
    msg.numbers instanceof Float64Array &&
    msg.numbers.length === count * ROW &&
    typeof msg.sha256 === 'string' &&
    msg.sha256.length === count * 64 &&
    Array.isArray(msg.others) &&
    msg.others.every(([i]) => Number.isInteger(i) && i >= 0 && i < count) &&
    Array.isArray(msg.resolved)
  );
}

interface Slot {
  worker: Worker;
  inFlight: Map<number, Batch>;
  exited: boolean;
  /** Resolves when the worker said it is ready, or exited. */
  ready: Promise<void>;
  markReady: () => void;
}

/** How long close() waits for a starting worker to finish loading before stopping it anyway. */
const READY_WAIT_MS = 10_000;

interface Batch {
  run: Run;
  start: number;
  count: number;
}

/** One inspect()/inspectAll() call. */
abstract class Run {
  /** Index of the next path to dispatch. */
  cursor = 0;
  outstanding = 0;
  filesDone = 0;
  bytesDone = 0;
  ended = false;
  readonly slotsUsed = new Set<Slot>();

  constructor(
    readonly id: number,
    /** Host path of the root; set by HashPool.start() once the root is opened. */
    public root: string,
    readonly paths: readonly string[],
    readonly onProgress: ((p: HashProgress) => void) | undefined,
  ) {}

  get dispatchDone(): boolean {
    return this.cursor >= this.paths.length;
  }

  /** False while the consumer is behind (backpressure). */
  abstract canAccept(): boolean;
  abstract deliver(start: number, observations: FileObservation[]): void;
  abstract fail(error: Error): void;
  abstract finish(): void;
}

class ArrayRun extends Run {
  readonly results: FileObservation[];
  readonly done: Promise<FileObservation[]>;
  private resolve!: (r: FileObservation[]) => void;
  private reject!: (e: Error) => void;

  constructor(id: number, root: string, paths: readonly string[], onProgress?: (p: HashProgress) => void) {
    super(id, root, paths, onProgress);
    this.results = new Array<FileObservation>(paths.length);
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  canAccept(): boolean {
    return true;
  }

  deliver(start: number, observations: FileObservation[]): void {
    for (let i = 0; i < observations.length; i++)
      this.results[start + i] = observations[i] as FileObservation;
  }

  fail(error: Error): void {
    this.reject(error);
  }

  finish(): void {
    this.resolve(this.results);
  }
}

class IteratorRun extends Run implements AsyncIterableIterator<FileObservation> {
  private readonly queue: FileObservation[][] = [];
  private current: FileObservation[] = [];
  private index = 0;
  private error: Error | undefined;
  private finished = false;
  private waiter:
    { resolve: (r: IteratorResult<FileObservation>) => void; reject: (e: Error) => void } | undefined;

  constructor(
    private readonly pool: HashPool,
    private readonly maxBuffered: number,
    id: number,
    root: string,
    paths: readonly string[],
    onProgress?: (p: HashProgress) => void,
  ) {
    super(id, root, paths, onProgress);
  }

  canAccept(): boolean {
    return this.queue.length + this.outstanding < this.maxBuffered;
  }

  deliver(_start: number, observations: FileObservation[]): void {
    if (observations.length === 0) return;
    if (this.waiter !== undefined && this.index >= this.current.length) {
      const waiter = this.waiter;
      this.waiter = undefined;
      this.current = observations;
      this.index = 1;
      waiter.resolve({ value: observations[0] as FileObservation, done: false });
      return;
    }
    this.queue.push(observations);
  }

  fail(error: Error): void {
    if (this.finished || this.error !== undefined) return;
    this.error = error;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.reject(error);
  }

  finish(): void {
    this.finished = true;
    if (this.waiter !== undefined && this.index >= this.current.length && this.queue.length === 0) {
      const waiter = this.waiter;
      this.waiter = undefined;
      waiter.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<FileObservation>> {
    if (this.index < this.current.length) {
      return Promise.resolve({ value: this.current[this.index++] as FileObservation, done: false });
    }
    const batch = this.queue.shift();
    if (batch !== undefined) {
      this.current = batch;
      this.index = 1;
      this.pool.pump(); // room in the buffer again
      return Promise.resolve({ value: batch[0] as FileObservation, done: false });
    }
    if (this.error !== undefined) return Promise.reject(this.error);
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The consumer stopped early (break, throw): stop dispatching, drop what is in flight. */
  return(): Promise<IteratorResult<FileObservation>> {
    if (!this.finished && this.error === undefined) {
      this.pool.cancel(this);
      this.finished = true;
    }
    this.queue.length = 0;
    this.current = [];
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<FileObservation> {
    return this;
  }
}

export class HashPool {
  /** Number of worker threads. */
  readonly threads: number;
  private readonly batchSize: number;
  private readonly maxInFlight: number;
  private readonly maxBuffered: number;
  private readonly runOrder: 'round-robin' | 'first-come';
  private readonly capabilities: CapabilityMode;
  private readonly md5: boolean;
  private readonly sha1: boolean;
  private readonly sha512: boolean;
  private readonly slots: Slot[] = [];
  private runs: Run[] = [];
  private nextRunId = 1;
  private nextBatchId = 1;
  private rotation = 0;
  private broken: Error | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: HashPoolOptions = {}) {
    this.threads = Math.max(1, Math.floor(options.threads ?? os.availableParallelism()));
    this.batchSize = Math.max(1, Math.floor(options.batchSize ?? 256));
    this.maxInFlight = Math.max(1, Math.floor(options.maxInFlightPerWorker ?? 2));
    this.maxBuffered = Math.max(1, Math.floor(options.maxBufferedBatches ?? 64));
    this.runOrder = options.runOrder ?? 'round-robin';
    const caps = options.capabilities ?? 'executable';
    this.capabilities = caps === true ? 'all' : caps === false ? 'none' : caps;
    this.md5 = options.md5 === true;
    this.sha1 = options.sha1 === true;
    this.sha512 = options.sha512 === true;
    const url = options.workerUrl ?? new URL('./hash-worker.js', import.meta.url);
    for (let i = 0; i < this.threads; i++) this.slots.push(this.spawn(url));
  }

  /** Workers still running (0 once close() has resolved). */
  get liveWorkers(): number {
    return this.slots.filter((s) => !s.exited).length;
  }

  /**
   * Inspects every path (absolute inside `root`) and yields the observations as batches complete:
   * NOT in input order (each observation carries its `path`). Breaking out of the loop cancels
   * the rest. Rejects with PathError when the root cannot be opened, HashPoolError when the pool
   * fails or is closed.
   */
  inspect(
    root: string | RootDir,
    paths: readonly string[],
    options: InspectManyOptions = {},
  ): AsyncIterableIterator<FileObservation> {
    const run = new IteratorRun(this, this.maxBuffered, this.nextRunId++, '', paths, options.onProgress);
    this.start(run, root);
    return run;
  }

  /** As inspect(), but resolves to every observation in input order (one per path). */
  inspectAll(
    root: string | RootDir,
    paths: readonly string[],
    options: InspectManyOptions = {},
  ): Promise<FileObservation[]> {
    const run = new ArrayRun(this.nextRunId++, '', paths, options.onProgress);
    this.start(run, root);
    return run.done;
  }

  /** Stops the workers. Runs in progress reject with HashPoolError('POOL_CLOSED'). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.failAll(new HashPoolError('POOL_CLOSED', 'the hash pool was closed'));
      // A worker stopped while it loads its native module brings the whole process down
      // (SIGABRT): let each finish starting first (a pool closed right after it was made).
      await Promise.all(
        this.slots.map(async (s) => {
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            s.ready,
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, READY_WAIT_MS);
            }),
          ]);
          clearTimeout(timer);
          await s.worker.terminate();
        }),
      );
    })();
    return this.closing;
  }

  private start(run: Run, root: string | RootDir): void {
    if (this.closing !== undefined)
      return run.fail(new HashPoolError('POOL_CLOSED', 'the hash pool is closed'));
    if (this.broken !== undefined) return run.fail(this.broken);
    let hostPath: string;
    try {
      hostPath = typeof root === 'string' ? RootDir.open(root).hostPath : root.hostPath;
    } catch (e) {
      return run.fail(e instanceof Error ? e : new Error(String(e)));
    }
    run.root = hostPath;
    if (run.paths.length === 0) return run.finish();
    if (this.runs.length === 0) for (const s of this.slots) s.worker.ref();
    this.runs.push(run);
    this.pump();
  }

  private spawn(url: URL): Slot {
    const worker = new Worker(url);
    let markReady = (): void => undefined;
    const ready = new Promise<void>((resolve) => {
      markReady = resolve;
    });
    const slot: Slot = { worker, inFlight: new Map(), exited: false, ready, markReady };
    worker.unref();
    worker.on('message', (msg: FromWorker) => this.onMessage(slot, msg));
    worker.on('error', (e) =>
      this.crash(new HashPoolError('WORKER_FAILED', `a hash worker failed: ${e.message}`, { cause: e })),
    );
    worker.on('messageerror', (e) =>
      this.crash(
        new HashPoolError('WORKER_FAILED', `a hash worker sent an unreadable message: ${e.message}`, {
          cause: e,
        }),
      ),
    );
    worker.on('exit', (code) => {
      slot.exited = true;
      slot.markReady();
      if (this.closing === undefined) {
        this.crash(
          new HashPoolError('WORKER_FAILED', `a hash worker exited unexpectedly (exit code ${code})`),
        );
      }
    });
    return slot;
  }

  /** Sends batches while workers have room and runs have paths (and room for results). @internal */
  pump(): void {
    if (this.broken !== undefined || this.closing !== undefined) return;
    for (;;) {
      const run = this.pickRun();
      if (run === undefined) return;
      let slot: Slot | undefined;
      for (const s of this.slots) {
        if (
          !s.exited &&
          s.inFlight.size < this.maxInFlight &&
          (slot === undefined || s.inFlight.size < slot.inFlight.size)
        ) {
          slot = s;
        }
      }
      if (slot === undefined) return;
      this.send(slot, run);
    }
  }

  private pickRun(): Run | undefined {
    if (this.runOrder === 'first-come') return this.runs.find((r) => !r.dispatchDone && r.canAccept());
    const n = this.runs.length;
    for (let i = 0; i < n; i++) {
      const run = this.runs[(this.rotation + i) % n] as Run;
      if (!run.dispatchDone && run.canAccept()) {
        this.rotation = (this.rotation + i + 1) % n;
        return run;
      }
    }
    return undefined;
  }

  private send(slot: Slot, run: Run): void {
    // Smaller batches near the end keep every worker busy until the last file: the end of the
    // run, or (first come, first served) of all the runs queued behind it.
    let remaining = run.paths.length - run.cursor;
    if (this.runOrder === 'first-come')
      for (const r of this.runs) if (r !== run) remaining += r.paths.length - r.cursor;
    const tail = Math.ceil(remaining / (this.threads * this.maxInFlight * 2));
    const count = Math.min(run.paths.length - run.cursor, this.batchSize, Math.max(MIN_BATCH, tail));
    const batchId = this.nextBatchId++;
    const message: BatchRequest = {
      kind: 'batch',
      runId: run.id,
      batchId,
      root: run.root,
      capabilities: this.capabilities,
      md5: this.md5,
      ...(this.sha1 ? { sha1: true } : {}),
      ...(this.sha512 ? { sha512: true } : {}),
      paths: run.paths.slice(run.cursor, run.cursor + count),
    };
    slot.inFlight.set(batchId, { run, start: run.cursor, count });
    run.slotsUsed.add(slot);
    run.cursor += count;
    run.outstanding++;
    slot.worker.postMessage(message satisfies ToWorker);
  }

  private onMessage(slot: Slot, msg: FromWorker): void {
    if (msg.kind === 'ready') {
      slot.markReady();
      return;
    }
    const batch = slot.inFlight.get(msg.batchId);
    if (batch === undefined) return;
    slot.inFlight.delete(msg.batchId);
    const run = batch.run;
    run.outstanding--;
    if (!run.ended) {
      if (msg.kind === 'failed') {
        this.endRun(run);
        run.fail(
          new HashPoolError(
            'WORKER_FAILED',
            `a hash worker could not process a batch: ${msg.message} (${msg.code})`,
          ),
        );
      } else if (!isWellFormed(msg, batch.count)) {
        this.endRun(run);
        run.fail(new HashPoolError('WORKER_FAILED', 'a hash worker returned a malformed batch'));
      } else {
        run.filesDone += batch.count;
        run.bytesDone += msg.bytes;
        run.deliver(batch.start, decodeResults(msg, run.paths, batch.start, batch.count));
        try {
          run.onProgress?.({
            filesDone: run.filesDone,
            filesTotal: run.paths.length,
            bytesDone: run.bytesDone,
          });
        } catch (e) {
          this.endRun(run);
          run.fail(e instanceof Error ? e : new Error(String(e)));
        }
        if (!run.ended && run.dispatchDone && run.outstanding === 0) {
          this.endRun(run);
          run.finish();
        }
      }
    }
    this.pump();
  }

  /** A consumer stopped reading. @internal */
  cancel(run: Run): void {
    this.endRun(run);
    this.pump();
  }

  /** Removes a run; its batches still in flight are ignored when they come back. */
  private endRun(run: Run): void {
    if (run.ended) return;
    run.ended = true;
    this.runs = this.runs.filter((r) => r !== run);
    for (const slot of run.slotsUsed) {
      if (!slot.exited) slot.worker.postMessage({ kind: 'end-run', runId: run.id } satisfies ToWorker);
    }
    if (this.runs.length === 0) for (const s of this.slots) s.worker.unref();
  }

  private failAll(error: Error): void {
    const runs = this.runs;
    this.runs = [];
    for (const run of runs) {
      run.ended = true;
      run.fail(error);
    }
    for (const s of this.slots) s.worker.unref();
  }

  private crash(error: Error): void {
    if (this.broken !== undefined || this.closing !== undefined) return;
    this.broken = error;
    this.failAll(error);
    for (const s of this.slots) void s.worker.terminate();
  }
}
