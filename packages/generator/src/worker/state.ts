import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { writeFileAtomic } from '@sysattest/core';
import { z } from 'zod';

/**
 * What a worker remembers between runs, in `<home>/worker-state.json`: when it last synced each
 * platform's catalog, so that a restarted worker (or a re-run of verify-this-machine) does not
 * sync again before the interval is up.
 */
const STATE_SCHEMA = z.strictObject({
  format: z.literal('sysattest-generator-worker'),
  version: z.literal(1),
  catalogs: z.record(
    z.string().max(200),
    z.strictObject({
      syncedAt: z.iso.datetime(),
      digest: z.string().regex(/^[0-9a-f]{64}$/),
      packages: z.number().int().nonnegative(),
    }),
  ),
});
export type WorkerState = z.infer<typeof STATE_SCHEMA>;

const MAX_STATE_BYTES = 1024 * 1024;

export function workerStatePath(home: string): string {
  return path.join(home, 'worker-state.json');
}

/** The state, or an empty one when there is none or it is unreadable (`problem` says why). */
export async function readWorkerState(file: string): Promise<{ state: WorkerState; problem?: string }> {
  const empty: WorkerState = { format: 'sysattest-generator-worker', version: 1, catalogs: {} };
  let text: string;
  try {
    const st = await fs.stat(file);
    if (st.size > MAX_STATE_BYTES)
      return { state: empty, problem: `${file} is larger than ${MAX_STATE_BYTES} bytes` };
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { state: empty };
    return { state: empty, problem: `cannot read ${file}: ${(e as Error).message}` };
  }
  try {
    const r = STATE_SCHEMA.safeParse(JSON.parse(text));
    if (r.success) return { state: r.data };
    return {
      state: empty,
      problem: `${file} is not a worker state file (${r.error.issues[0]?.message ?? 'invalid'})`,
    };
  } catch {
    return { state: empty, problem: `${file} is not JSON` };
  }
}

export async function writeWorkerState(file: string, state: WorkerState): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}
