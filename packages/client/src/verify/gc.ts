import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/**
 * A full garbage collection, on demand. verifyMachine calls it between chunks: V8 otherwise lets
 * the old generation grow with garbage (parsed manifests, observations) long before it collects,
 * and the peak memory of a whole-machine run is what a nightly job on a small host pays for.
 * `--expose-gc` set at run time makes `gc` available in a fresh context (the documented V8
 * flag; node's own tests use the same approach); when that is not possible this does nothing.
 */
let collect: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (collect === undefined) {
    try {
      v8.setFlagsFromString('--expose-gc');
      const fn: unknown = vm.runInNewContext('gc');
      collect = typeof fn === 'function' ? (fn as () => void) : null;
    } catch {
      collect = null;
    }
  }
  collect?.();
}
