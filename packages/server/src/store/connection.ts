import * as fs from 'node:fs';
import * as path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  SqliteDialect,
  SqliteDriver,
  type DatabaseConnection,
  type Driver,
  type SqliteDialectConfig,
} from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';
import { StoreError } from './store-error.js';

export type DialectName = 'sqlite' | 'postgres';

/** Where the store lives, as parsed from a `--database` value. */
export type StoreLocation = { dialect: 'sqlite'; path: string } | { dialect: 'postgres'; url: string };

/** The default database: an SQLite file under `./data/`, so a first run needs nothing installed. */
export const DEFAULT_SQLITE_PATH = './data/sysattest.db';

/**
 * `postgres://…` / `postgresql://…` → PostgreSQL; `sqlite:PATH` (`sqlite:///abs/path`,
 * `sqlite::memory:`) or a plain path → SQLite; nothing → DEFAULT_SQLITE_PATH. Any other
 * `scheme://` is refused (INVALID) rather than taken for a file name.
 */
export function parseStoreLocation(location?: string): StoreLocation {
  const value = location?.trim() ?? '';
  if (value === '') return { dialect: 'sqlite', path: DEFAULT_SQLITE_PATH };
  if (/^postgres(ql)?:\/\//i.test(value)) return { dialect: 'postgres', url: value };
  if (/^sqlite:/i.test(value)) {
    let rest = value.slice('sqlite:'.length);
    if (rest.startsWith('//')) rest = rest.slice(2);
    if (rest === '') throw new StoreError('INVALID', `no file name in database location ${value}`);
    return { dialect: 'sqlite', path: rest };
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    throw new StoreError(
      'INVALID',
      `unsupported database location ${redactLocation(value)}: use postgres://…, sqlite:PATH or a file path`,
    );
  }
  return { dialect: 'sqlite', path: value };
}

/** The location with any password replaced by `***`, for messages and logs. */
export function redactLocation(location: string): string {
  return location.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^@/?#]*@/i, '$1***@');
}

export interface ConnectionOptions {
  /** Most PostgreSQL connections this store opens (default 10). */
  poolSize?: number;
  /** How long an SQLite write waits for another process's lock before UNAVAILABLE (default 5 s). */
  busyTimeoutMs?: number;
  /** Called with errors of idle PostgreSQL connections (default: ignored; the next query reports). */
  onPoolError?: (error: Error) => void;
}

export function createDatabase(location: StoreLocation, options: ConnectionOptions = {}): Kysely<Database> {
  if (location.dialect === 'postgres') {
    const pool = new pg.Pool({
      connectionString: location.url,
      max: options.poolSize ?? 10,
      types: { getTypeParser: typeParser as typeof pg.types.getTypeParser },
    });
    // An idle connection dropped by the server emits 'error' on the pool; unhandled, it would
    // crash the process.
    pool.on('error', (e) => options.onPoolError?.(e));
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  const file = location.path;
  let sqlite: SqliteDatabase.Database;
  try {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true, mode: 0o750 });
    sqlite = new SqliteDatabase(file, { timeout: options.busyTimeoutMs ?? 5000 });
    // WAL: readers do not block the writer. synchronous=FULL: an acknowledged upload survives a
    // power cut (better-sqlite3 builds default to NORMAL in WAL mode, which may lose the last
    // transactions). foreign_keys is per connection and off by default in SQLite.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
  } catch (e) {
    throw new StoreError('UNAVAILABLE', `cannot open the SQLite database ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
}

/** PostgreSQL type oids whose default text parsing we replace. */
const INT8_OID = 20;

/**
 * bigint (ids, sizes, count(*)) as JavaScript numbers rather than strings: every value the store
 * keeps in a bigint is far below 2^53. Per pool, not pg's global parser table.
 */
function typeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === INT8_OID && format !== 'binary') return (value: string) => Number(value);
  return pg.types.getTypeParser(oid, format as 'text') as (value: string) => unknown;
}

/**
 * SQLite transactions that take the write lock at BEGIN. A deferred transaction that reads and
 * then writes fails with SQLITE_BUSY, without waiting, when another process wrote in between;
 * `begin immediate` waits for the lock (busy_timeout) instead. Every store transaction writes.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
