import type { Page, PageRequest } from '@sysattest/dashboard';
import { parsePlatform, versionSchemeForDistro } from '@sysattest/core';
import type { Kysely } from 'kysely';
import type { DialectName } from '../connection.js';
import type { StoreContext } from '../context.js';
import type { HostPolicy } from '../hosts.js';
import type { Database } from '../database.js';

/**
 * The tables the read model may query: every table but `tokens`, whose secret hashes stay behind
 * tokens.ts. Enforced by the compiler: a query on `tokens` through a ReadContext does not type.
 */
export type ReadTables = Omit<Database, 'tokens'>;

/** What the read model's queries need: the database without tokens, its dialect, the clock. */
export interface ReadContext {
  readonly db: Kysely<ReadTables>;
  readonly dialect: DialectName;
  readonly now: () => Date;
  /** When a host is stale. */
  readonly hosts: Pick<HostPolicy, 'staleAfterSeconds'>;
}

export function readContext(ctx: StoreContext): ReadContext {
  // The same connection, seen through a narrower table map (Kysely's types only; no SQL differs).
  return {
    db: ctx.db as unknown as Kysely<ReadTables>,
    dialect: ctx.dialect,
    now: ctx.now,
    hosts: { staleAfterSeconds: ctx.hosts.staleAfterSeconds },
  };
}

/** A page from the rows of a query that asked for `limit + 1` rows from `offset`. */
export function pageOf<T>(rows: T[], p: PageRequest, total?: number): Page<T> {
  return {
    items: rows.slice(0, p.limit),
    offset: p.offset,
    limit: p.limit,
    hasMore: rows.length > p.limit,
    ...(total === undefined ? {} : { total }),
  };
}

/** A count as the drivers return it (number, bigint-as-string or null) as a number. */
export const count = (v: unknown): number => Number(v ?? 0);

/** Code-unit order: the same on both databases, whatever PostgreSQL's collation. */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The distribution's version ordering, or plain text order for a distro without one. */
export function versionOrderFor(platform: string): (a: string, b: string) => number {
  let compare: (a: string, b: string) => number;
  try {
    compare = versionSchemeForDistro(parsePlatform(platform).distro).compare;
  } catch {
    compare = byText;
  }
  return (a, b) => {
    try {
      return compare(a, b);
    } catch {
      return byText(a, b);
    }
  };
}
