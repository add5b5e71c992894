import { setTimeout as sleep } from 'node:timers/promises';
import type { Kysely, Transaction } from 'kysely';
import type { DialectName } from './connection.js';
import type { Database } from './database.js';
import type { HostPolicy } from './hosts.js';
import { StoreError } from './store-error.js';

/** What every store operation needs: the database, which dialect it is, and the clock. */
export interface StoreContext {
  readonly db: Kysely<Database>;
  readonly dialect: DialectName;
  /** The store's clock (injectable so tests move time instead of sleeping). */
  readonly now: () => Date;
  readonly jobs: JobPolicy;
  /** Platforms that track their whole catalog: each new catalog queues its backlog (backlog.ts). */
  readonly trackAll: ReadonlySet<string>;
  /** Reports' retention and when a host is stale (hosts.ts). */
  readonly hosts: HostPolicy;
}

/** Retry policy of the generation queue. */
export interface JobPolicy {
  /** Claims a job gets before it is dead (a lease that expires counts as a failed claim). */
  maxAttempts: number;
  /** Wait before retry n is `backoffBaseSeconds * 2^(n-1)`, at most `backoffMaxSeconds`. */
  backoffBaseSeconds: number;
  backoffMaxSeconds: number;
}

export type Db = Kysely<Database> | Transaction<Database>;

export function iso(date: Date): string {
  return date.toISOString();
}

/** A document's UTC timestamp (`2026-11-25T12:00:00Z`) in the store's fixed-width form. */
export function normaliseTime(timestamp: string): string {
  return new Date(timestamp).toISOString();
}

export function addSeconds(date: Date, seconds: number): Date {
  return new Date(date.getTime() + seconds * 1000);
}

/**
 * Rows per multi-row statement, so that rows × columns stays well under both databases' bound
 * on bound parameters (SQLite 32,766, PostgreSQL 65,535).
 */
export function rowsPerStatement(columns: number): number {
  return Math.max(1, Math.floor(8000 / columns));
}

export function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** PostgreSQL SQLSTATEs after which the whole transaction can simply run again. */
const RETRYABLE = new Set(['40001', '40P01']); // serialization_failure, deadlock_detected
const MAX_TRANSACTION_ATTEMPTS = 5;

/**
 * Runs `work` in one transaction: everything it writes is committed together or not at all.
 * On PostgreSQL a deadlock or serialization failure reruns it (so `work` must have no effect
 * outside the transaction). Database errors come out translated (see translateError).
 */
export async function inTransaction<T>(
  ctx: StoreContext,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.db.transaction().execute(work);
    } catch (e) {
      if (attempt < MAX_TRANSACTION_ATTEMPTS && RETRYABLE.has(sqlState(e) ?? '')) {
        await sleep(Math.random() * 20 * attempt);
        continue;
      }
      throw translateError(e);
    }
  }
}

/** Runs a read, translating database errors. */
export async function reading<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw translateError(e);
  }
}

function sqlState(e: unknown): string | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Node's socket errors that mean "the database server is not there". */
const CONNECTION_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
  'EPIPE',
]);

/**
 * StoreErrors pass through. "Cannot reach or lock the database" becomes UNAVAILABLE (the caller
 * may retry). Anything else is a bug or a broken database and passes unchanged.
 */
export function translateError(e: unknown): unknown {
  if (e instanceof StoreError) return e;
  const code = sqlState(e);
  const message = e instanceof Error ? e.message : String(e);
  if (code === undefined) {
    if (/Connection terminated|timeout exceeded when trying to connect|Client was closed/i.test(message)) {
      return new StoreError('UNAVAILABLE', `the database is unavailable: ${message}`, { cause: e });
    }
    return e;
  }
  if (
    CONNECTION_ERRNOS.has(code) ||
    code.startsWith('08') || // connection exception
    code.startsWith('57P') || // operator intervention: shutdown, cannot connect now
    code === '53300' || // too many connections
    code === 'SQLITE_BUSY' ||
    code.startsWith('SQLITE_BUSY_') ||
    code === 'SQLITE_LOCKED' ||
    code.startsWith('SQLITE_CANTOPEN') ||
    code === 'SQLITE_FULL' ||
    code === 'SQLITE_READONLY'
  ) {
    return new StoreError('UNAVAILABLE', `the database is unavailable: ${message}`, { cause: e });
  }
  return e;
}
