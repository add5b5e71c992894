/**
 * The benchmark's lower bound: the least work that hashes a list of files — open, read in 1 MiB
 * chunks into one reused buffer, SHA-256, close. No path resolution, no stat, no xattr, no result
 * objects. Persistent: each message is one round over this thread's share of the files.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { parentPort } from 'node:worker_threads';

export interface LowerBoundRequest {
  paths: string[];
}

export interface LowerBoundResult {
  /** Hex digests in the request's order ('' for a file that could not be read). */
  digests: string[];
  bytes: number;
}

const port = parentPort;
if (port === null) throw new Error('lower-bound-worker.js must run as a worker thread');
const buf = Buffer.allocUnsafe(1 << 20);

port.on('message', ({ paths }: LowerBoundRequest) => {
  const digests = new Array<string>(paths.length);
  let bytes = 0;
  for (let i = 0; i < paths.length; i++) {
    let fd: number;
    try {
      fd = fs.openSync(paths[i] as string, fs.constants.O_RDONLY);
    } catch {
      digests[i] = '';
      continue;
    }
    try {
      const hash = createHash('sha256');
      let n: number;
      while ((n = fs.readSync(fd, buf, 0, buf.length, null)) > 0) {
        hash.update(n === buf.length ? buf : buf.subarray(0, n));
        bytes += n;
      }
      digests[i] = hash.digest('hex');
    } catch {
      digests[i] = '';
    } finally {
      fs.closeSync(fd);
    }
  }
  port.postMessage({ digests, bytes } satisfies LowerBoundResult);
});
