import type { Transaction } from 'kysely';
import { iso, type StoreContext } from './context.js';
import type { Database } from './database.js';
import { StoreError } from './store-error.js';

/**
 * Who may make a lookup write — queue generation jobs, track packages — and how much:
 * - `open`: anything the answer needs (a token holder, the operator, the store's own callers);
 * - `closed`: nothing (an anonymous client when the server wants a token for queueing);
 * - `quota`: at most `max` new jobs and `max` newly tracked packages per `client` per window of
 *   `windowSeconds` (fixed windows from the epoch), counted in the database so that every server
 *   process over it enforces the same quota.
 * What is not written is answered as `pending` with the reason it was deferred; the next lookup
 * with room left writes it.
 */
export type QueuePolicy =
  | { kind: 'open' }
  | { kind: 'closed' }
  | { kind: 'quota'; client: string; max: number; windowSeconds: number };

export type DeferReason = 'quota' | 'token-required';

/** What a lookup may still write under its policy (Infinity: no limit). */
export interface QueueAllowance {
  jobs: number;
  tracked: number;
  /** The quota window the allowance belongs to (`quota` policies only). */
  windowStart?: string;
}

const MAX_CLIENT_LENGTH = 200;

export function checkQueuePolicy(policy: QueuePolicy): void {
  if (policy.kind !== 'quota') return;
  if (
    typeof policy.client !== 'string' ||
    policy.client.length === 0 ||
    policy.client.length > MAX_CLIENT_LENGTH
  )
    throw new StoreError('INVALID', `a quota client is a string of 1 to ${MAX_CLIENT_LENGTH} characters`);
  if (!Number.isInteger(policy.max) || policy.max < 0)
    throw new StoreError('INVALID', 'a quota max is a whole number, 0 or more');
  if (!Number.isInteger(policy.windowSeconds) || policy.windowSeconds < 1)
    throw new StoreError('INVALID', 'a quota window is a whole number of seconds, 1 or more');
}

export function windowStart(now: Date, windowSeconds: number): string {
  const ms = windowSeconds * 1000;
  return iso(new Date(Math.floor(now.getTime() / ms) * ms));
}

/**
 * What the policy lets this lookup write, read inside the lookup's write transaction. For a quota,
 * the client's row of the current window is made if missing and locked (PostgreSQL; SQLite has
 * one writer), so concurrent lookups of one client take turns and together stay within the quota.
 * Rows of past windows are deleted on the way.
 */
export async function queueAllowance(
  trx: Transaction<Database>,
  ctx: StoreContext,
  policy: QueuePolicy,
): Promise<QueueAllowance> {
  if (policy.kind === 'open') return { jobs: Infinity, tracked: Infinity };
  if (policy.kind === 'closed') return { jobs: 0, tracked: 0 }; // lookups skip the transaction (heldBack)
  const start = windowStart(ctx.now(), policy.windowSeconds);
  await trx.deleteFrom('queue_quotas').where('window_start', '<', start).execute();
  await trx
    .insertInto('queue_quotas')
    .values({ client: policy.client, window_start: start, jobs: 0, tracked: 0 })
    .onConflict((oc) => oc.columns(['client', 'window_start']).doNothing())
    .execute();
  const row = await trx
    .selectFrom('queue_quotas')
    .select(['jobs', 'tracked'])
    .where('client', '=', policy.client)
    .where('window_start', '=', start)
    .$if(ctx.dialect === 'postgres', (q) => q.forUpdate())
    .executeTakeFirstOrThrow();
  return {
    jobs: Math.max(0, policy.max - Number(row.jobs)),
    tracked: Math.max(0, policy.max - Number(row.tracked)),
    windowStart: start,
  };
}

/** Adds what the lookup created to its client's count (same transaction as queueAllowance). */
export async function chargeQueueQuota(
  trx: Transaction<Database>,
  policy: QueuePolicy,
  allowance: QueueAllowance,
  created: { jobs: number; tracked: number },
): Promise<void> {
  if (policy.kind !== 'quota' || allowance.windowStart === undefined) return;
  if (created.jobs === 0 && created.tracked === 0) return;
  await trx
    .updateTable('queue_quotas')
    .set((eb) => ({
      jobs: eb('jobs', '+', created.jobs),
      tracked: eb('tracked', '+', created.tracked),
    }))
    .where('client', '=', policy.client)
    .where('window_start', '=', allowance.windowStart)
    .execute();
}
