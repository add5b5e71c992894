import * as fs from 'node:fs';
import { PackageDatabaseError, PathError } from '../../errors.js';

const SCRATCH_INITIAL_BYTES = 256 * 1024;
/** A scratch buffer grown for a big file is dropped after it rather than kept for the process's life. */
const SCRATCH_KEEP_BYTES = 4 * 1024 * 1024;
/** Reused between reads: most database files are small, and a Buffer per file costs more than it holds. */
let scratch = Buffer.allocUnsafe(SCRATCH_INITIAL_BYTES);

/**
 * Reads a database file at a host path that was resolved inside the root (RootDir.resolve) and
 * decodes it as UTF-8. Returns undefined when the file does not exist.
 *
 * Opened with O_NOFOLLOW, so a final component swapped for a symlink since resolution fails
 * instead of being followed out of the root, and O_NONBLOCK, so a FIFO planted there cannot hang
 * us. A file is read whole when it fits the scratch buffer (a short read of a regular file is its
 * end); otherwise, and whenever a read fails, fstat decides: anything that is not a regular file
 * is DATABASE_CORRUPT, anything larger than `maxBytes` DATABASE_TOO_LARGE (without reading on).
 * Other I/O failures are PathError IO_ERROR.
 *
 * Synchronous on purpose: a dpkg database is ~1,500 small files, and open/read/close done
 * synchronously costs far less than the thread-pool round trips of fs.promises (measured on a
 * 2-core machine, warm cache: ~25-70 ms against ~130-180 ms for the same files). Callers read in
 * batches and yield to the event loop between them.
 */
export function readDatabaseText(hostPath: string, maxBytes: number): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(hostPath, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') {
      throw new PackageDatabaseError('DATABASE_CORRUPT', 'database file was replaced by a symbolic link', {
        file: hostPath,
      });
    }
    throw new PathError('IO_ERROR', `cannot open ${hostPath}: ${code ?? String(e)}`, { cause: e });
  }
  try {
    let length = 0;
    let checked = false;
    for (;;) {
      if (length === scratch.length) {
        // The file fills the scratch buffer: learn its size once, and grow to fit it.
        const size = checked ? 0 : checkRegularFile(fd, hostPath, maxBytes);
        checked = true;
        const bigger = Buffer.allocUnsafe(Math.min(Math.max(scratch.length * 2, size + 1), maxBytes + 1));
        scratch.copy(bigger, 0, 0, length);
        scratch = bigger;
      }
      const wanted = scratch.length - length;
      let n: number;
      try {
        n = fs.readSync(fd, scratch, length, wanted, null);
      } catch (e) {
        checkRegularFile(fd, hostPath, maxBytes); // says "not a regular file" for EISDIR, EAGAIN…
        throw e;
      }
      length += n;
      if (length > maxBytes) {
        if (!checked) checkRegularFile(fd, hostPath, maxBytes);
        throw tooLarge(hostPath, maxBytes);
      }
      if (n < wanted) {
        if (n === 0 && !checked) checkRegularFile(fd, hostPath, maxBytes); // an empty FIFO reads as 0 bytes
        break;
      }
    }
    const text = scratch.toString('utf8', 0, length);
    if (scratch.length > SCRATCH_KEEP_BYTES) scratch = Buffer.allocUnsafe(SCRATCH_INITIAL_BYTES);
    return text;
  } catch (e) {
    if (e instanceof PackageDatabaseError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new PathError('IO_ERROR', `cannot read ${hostPath}: ${code ?? String(e)}`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}

/** Throws unless `fd` is a regular file of at most `maxBytes`; returns its size. */
function checkRegularFile(fd: number, hostPath: string, maxBytes: number): number {
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    throw new PackageDatabaseError('DATABASE_CORRUPT', 'database file is not a regular file', {
      file: hostPath,
    });
  }
  if (st.size > maxBytes) throw tooLarge(hostPath, maxBytes, st.size);
  return st.size;
}

function tooLarge(file: string, maxBytes: number, size?: number): PackageDatabaseError {
  const is = size === undefined ? 'is larger than' : `is ${size} bytes, more than`;
  return new PackageDatabaseError('DATABASE_TOO_LARGE', `database file ${is} the ${maxBytes} bytes allowed`, {
    file,
  });
}

/** Resolves on the event loop's next turn, so timers and I/O callbacks can run in between. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
