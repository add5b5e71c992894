import { spawn } from 'node:child_process';

/** How a child process is run: argv only (never a shell), bounded output, time limit, abort. */
export interface SpawnOptions {
  /** Written to the child's stdin, which is then closed. Without it stdin is /dev/null. */
  input?: string | Buffer;
  /** Kill the child after this many milliseconds (0 or undefined: no limit). */
  timeoutMs?: number;
  /** Aborting kills the child (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal?: AbortSignal;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Keep at most this many bytes of stdout (the head); more sets `stdoutTruncated`. */
  maxStdoutBytes?: number;
  /** Keep at most this many bytes of stderr (the tail: the end is where tools say what failed). */
  maxStderrBytes?: number;
  /** Called with each complete stderr line as it arrives (progress). */
  onStderrLine?: (line: string) => void;
  /** Called with each complete stdout line as it arrives (progress). */
  onStdoutLine?: (line: string) => void;
  /** Time between SIGTERM and SIGKILL when killing the child. */
  killGraceMs?: number;
}

export interface SpawnResult {
  file: string;
  args: readonly string[];
  /** Exit status, or null when the child was killed by a signal. */
  code: number | null;
  /** The signal that ended the child, if any. */
  exitSignal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
}

export const DEFAULT_MAX_STDOUT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_STDERR_BYTES = 1024 * 1024;
const DEFAULT_KILL_GRACE_MS = 5000;

/** Collects a stream's bytes up to a cap, keeping either the head or the tail. */
class BoundedBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;
  truncated = false;

  constructor(
    private readonly cap: number,
    private readonly keep: 'head' | 'tail',
  ) {}

  push(chunk: Buffer): void {
    if (this.keep === 'head') {
      const room = this.cap - this.bytes;
      if (room <= 0) {
        this.truncated = true;
        return;
      }
      const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (part !== chunk) this.truncated = true;
      this.chunks.push(part);
      this.bytes += part.length;
      return;
    }
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.bytes > this.cap && this.chunks.length > 0) {
      const first = this.chunks[0]!;
      const excess = this.bytes - this.cap;
      this.truncated = true;
      if (first.length <= excess) {
        this.chunks.shift();
        this.bytes -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.bytes -= excess;
      }
    }
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Splits a byte stream into lines for a callback; a partial last line is flushed at the end. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let pending = '';
  return {
    push(chunk) {
      pending += chunk.toString('utf8');
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).replace(/\r$/, '');
        pending = pending.slice(nl + 1);
        if (line.length > 0) onLine(line);
      }
      // A tool that never prints a newline must not make us hold megabytes.
      if (pending.length > 64 * 1024) pending = pending.slice(-64 * 1024);
    },
    end() {
      if (pending.trim().length > 0) onLine(pending.replace(/\r$/, ''));
      pending = '';
    },
  };
}

/**
 * Runs `file args…` without a shell and resolves with its status and (bounded) output. Rejects
 * only when the process cannot be started at all (ENOENT, EACCES…: the spawn error, unchanged);
 * a non-zero exit, a timeout or an abort are reported in the result for the caller to judge.
 */
export function spawnCapture(
  file: string,
  args: readonly string[],
  opts: SpawnOptions = {},
): Promise<SpawnResult> {
  const started = Date.now();
  const stdout = new BoundedBuffer(opts.maxStdoutBytes ?? DEFAULT_MAX_STDOUT_BYTES, 'head');
  const stderr = new BoundedBuffer(opts.maxStderrBytes ?? DEFAULT_MAX_STDERR_BYTES, 'tail');
  const outLines = opts.onStdoutLine ? lineSplitter(opts.onStdoutLine) : undefined;
  const errLines = opts.onStderrLine ? lineSplitter(opts.onStderrLine) : undefined;

  return new Promise<SpawnResult>((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({
        file,
        args,
        code: null,
        exitSignal: null,
        stdout: '',
        stderr: '',
        stdoutTruncated: false,
        timedOut: false,
        aborted: true,
        durationMs: 0,
      });
      return;
    }
    const child = spawn(file, args, {
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      shell: false,
      windowsHide: true,
    });
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let killTimer: NodeJS.Timeout | undefined;

    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS);
      killTimer.unref();
    };
    const timer =
      opts.timeoutMs && opts.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            kill();
          }, opts.timeoutMs)
        : undefined;
    const onAbort = () => {
      aborted = true;
      kill();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
    };

    child.stdout!.on('data', (chunk: Buffer) => {
      stdout.push(chunk);
      outLines?.push(chunk);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr.push(chunk);
      errLines?.push(chunk);
    });
    if (opts.input !== undefined && child.stdin) {
      // A child that exits without reading its input must not crash us with EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    child.on('error', (err) => {
      if (settled) return;
      settled = true;
      finish();
      reject(err);
    });
    child.on('close', (code, exitSignal) => {
      if (settled) return;
      settled = true;
      finish();
      outLines?.end();
      errLines?.end();
      resolve({
        file,
        args,
        code,
        exitSignal,
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutTruncated: stdout.truncated,
        timedOut,
        aborted,
        durationMs: Date.now() - started,
      });
    });
  });
}

/**
 * The last lines of a tool's stderr, joined into one line for an error message (at most
 * `maxChars`, cut at the front). Podman's own `time="…" level=warning` noise is dropped.
 */
export function stderrTail(stderr: string, maxChars = 600): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(
      (l) =>
        l.length > 0 &&
        !/^time="[^"]*" level=(warning|info|debug)/.test(l) &&
        !/^WARNING: image platform .* does not match the expected platform/.test(l),
    );
  const picked: string[] = [];
  let total = 0;
  for (let i = lines.length - 1; i >= 0 && picked.length < 6; i--) {
    const line = lines[i]!;
    if (total + line.length > maxChars) {
      if (picked.length === 0) picked.unshift(`…${line.slice(line.length - maxChars)}`);
      break;
    }
    picked.unshift(line);
    total += line.length + 3;
  }
  return picked.join(' | ');
}

/** A command line for messages: argv joined, words with spaces quoted, cut at `maxChars`. */
export function describeCommand(file: string, args: readonly string[], maxChars = 240): string {
  const words = [file, ...args].map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : JSON.stringify(w)));
  const s = words.join(' ');
  return s.length > maxChars ? `${s.slice(0, maxChars - 1)}…` : s;
}
