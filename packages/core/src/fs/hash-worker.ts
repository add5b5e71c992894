/**
 * The worker thread behind HashPool: receives batches of paths, inspects each with inspectFile
 * (synchronous I/O, one reused read buffer per thread), and posts the observations back. It keeps
 * one RootDir per run, so directories are resolved once per worker and per run.
 */
import { parentPort } from 'node:worker_threads';
import { isSysattestError } from '../errors.js';
import { inspectFile, type FileObservation, type InspectOptions } from './file-entry.js';
import { encodeResults, type FromWorker, type ToWorker } from './hash-protocol.js';
import { RootDir } from './in-root.js';

const port = parentPort;
if (port === null) throw new Error('hash-worker.js must run as a worker thread (HashPool starts it)');

/** Per run: the root (with its directory cache) and the inspection options. */
const runs = new Map<number, { root: RootDir; options: InspectOptions }>();

port.on('message', (msg: ToWorker) => {
  if (msg.kind === 'end-run') {
    runs.delete(msg.runId);
    return;
  }
  let reply: FromWorker;
  try {
    let run = runs.get(msg.runId);
    if (run === undefined) {
      run = {
        root: RootDir.open(msg.root),
        options: { capabilities: msg.capabilities, md5: msg.md5 },
      };
      runs.set(msg.runId, run);
    }
    const { root, options } = run;
    const observations: FileObservation[] = new Array<FileObservation>(msg.paths.length);
    for (let i = 0; i < msg.paths.length; i++)
      observations[i] = inspectFile(root, msg.paths[i] as string, options);
    reply = encodeResults(msg.runId, msg.batchId, observations);
  } catch (e) {
    reply = {
      kind: 'failed',
      runId: msg.runId,
      batchId: msg.batchId,
      code: isSysattestError(e) ? e.code : 'WORKER_FAILED',
      message: e instanceof Error ? e.message : String(e),
    };
  }
  // The rows' buffer is moved, not copied.
  port.postMessage(reply, reply.kind === 'results' ? [reply.numbers.buffer as ArrayBuffer] : []);
});
