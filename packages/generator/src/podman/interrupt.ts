import { GeneratorError } from '../errors.js';

export interface InterruptOptions {
  /** Signals that interrupt (default SIGINT and SIGTERM). */
  signals?: NodeJS.Signals[];
  /** Told when the first signal arrives (e.g. to print "cleaning up…"). */
  onInterrupt?: (signal: NodeJS.Signals) => void;
  /** Told when a second signal arrives, just before the process exits without cleaning up. */
  onForcedExit?: (signal: NodeJS.Signals) => void;
}

/**
 * Runs `fn` with an AbortSignal that Ctrl-C (SIGINT) or SIGTERM aborts. The work is expected to
 * stop its children and clean up in its own `finally` blocks (remove containers, temporary files)
 * and then reject; that rejection is turned into one INTERRUPTED error. A second signal while
 * cleaning up exits at once (status 130), for a user who prefers to clean up by hand.
 */
export async function withInterrupt<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  opts: InterruptOptions = {},
): Promise<T> {
  const signals = opts.signals ?? ['SIGINT', 'SIGTERM'];
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals) => {
    if (received === undefined) {
      received = sig;
      opts.onInterrupt?.(sig);
      controller.abort(new GeneratorError('INTERRUPTED', `interrupted by ${sig}`));
      return;
    }
    opts.onForcedExit?.(sig);
    process.exit(130);
  };
  for (const s of signals) process.on(s, handler);
  try {
    return await fn(controller.signal);
  } catch (e) {
    if (received !== undefined) {
      throw new GeneratorError(
        'INTERRUPTED',
        `interrupted by ${received}: the work was stopped and its containers and temporary files removed`,
        { cause: e },
      );
    }
    throw e;
  } finally {
    for (const s of signals) process.off(s, handler);
  }
}

/** Throws INTERRUPTED when `signal` has been aborted (call between steps of long work). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof GeneratorError && reason.code === 'INTERRUPTED') throw reason;
    throw new GeneratorError('INTERRUPTED', 'interrupted: the work was stopped', { cause: reason });
  }
}
