/**
 * The worker thread behind HashPool: receives batches of paths, inspects each with inspectFile
 * (synchronous I/O, one reused read buffer per thread), and posts the observations back. It keeps
 * one RootDir per run, so directories are resolved once per worker and per run.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { isSysattestError } from '../errors.js';
import {
  HASH_CHUNK_SIZE,
  inspectFile,
  openForReading,
  type FileObservation,
  type InspectOptions,
} from './file-entry.js';
import type { ExtraDigests } from './hash-pool.js';
import { encodeResults, type FromWorker, type ToWorker } from './hash-protocol.js';
import { RootDir } from './in-root.js';

const port = parentPort;
if (port === null) throw new Error('hash-worker.js must run as a worker thread (HashPool starts it)');

/**
 * Per run: the root (with its directory cache) and the inspection options, among them the run's
 * hard links (so an inode with several names is read once per thread and run).
 */
const runs = new Map<number, { root: RootDir; options: InspectOptions; extra: ('sha1' | 'sha512')[] }>();

let buffer: Buffer | undefined;

/**
 * Adds SHA-1 / SHA-512 to an `ok` regular-file observation by reading the file again (only when
 * asked: the default path reads each file once). The file must still be the one observed (same
 * inode, size and mtime before and after the read), else the observation becomes
 * `changed-while-hashing`.
 */
function addDigests(root: RootDir, o: FileObservation, algorithms: ('sha1' | 'sha512')[]): FileObservation {
  if (o.status !== 'ok' || o.type !== 'file') return o;
  const changed = (detail: string): FileObservation => ({
    status: 'changed-while-hashing',
    path: o.path,
    detail: `${o.path} ${detail}`,
  });
  let fd: number;
  try {
    fd = openForReading(root.resolveFinal(o.path).host);
  } catch (e) {
    return changed(`could not be opened again for its other digests: ${(e as Error).message}`);
  }
  try {
    const same = (st: fs.Stats): boolean =>
      st.isFile() && st.ino === o.ino && st.dev === o.dev && st.size === o.size && st.mtimeMs === o.mtimeMs;
    if (!same(fs.fstatSync(fd))) return changed('was replaced or changed after it was hashed');
    const hashes = algorithms.map((a) => createHash(a));
    const buf = (buffer ??= Buffer.allocUnsafe(HASH_CHUNK_SIZE));
    let total = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      for (const h of hashes) h.update(buf.subarray(0, n));
      total += n;
    }
    if (total !== o.size || !same(fs.fstatSync(fd))) return changed('changed while it was read again');
    const out: FileObservation & ExtraDigests = { ...o };
    algorithms.forEach((a, i) => (out[a] = (hashes[i] as ReturnType<typeof createHash>).digest('hex')));
    return out;
  } catch (e) {
    return changed(`could not be read again: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
}

// Every import (@napi-rs/xattr's native module among them) is loaded by now: the pool may stop this
// thread from here on (terminating a thread while a native module initialises aborts the process).
port.postMessage({ kind: 'ready' } satisfies FromWorker);

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
        options: { capabilities: msg.capabilities, md5: msg.md5, links: new Map() },
        extra: [
          ...(msg.sha1 === true ? ['sha1' as const] : []),
          ...(msg.sha512 === true ? ['sha512' as const] : []),
        ],
      };
      runs.set(msg.runId, run);
    }
    const { root, options, extra } = run;
    const observations: FileObservation[] = new Array<FileObservation>(msg.paths.length);
    for (let i = 0; i < msg.paths.length; i++)
      observations[i] = inspectFile(root, msg.paths[i] as string, options);
    if (extra.length > 0) {
      for (let i = 0; i < observations.length; i++)
        observations[i] = addDigests(root, observations[i] as FileObservation, extra);
    }
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
