/**
 * The two ways core opens an SQLite file (rpm's `rpmdb.sqlite`), behind one small interface:
 *  - `node:sqlite`, built into the runtime from Node 22.13 and 24 on: nothing to compile or
 *    download on a checked host (the client's Debian package brings such a runtime);
 *  - better-sqlite3, a native module compiled at install, for Node 20, which has no `node:sqlite`.
 * The first one the runtime has is used. Both give blobs as Buffers and throw errors whose `code`
 * is SQLite's result code name (`SQLITE_CORRUPT`, `SQLITE_NOTADB`…).
 */

import { SysattestError } from '../../errors.js';

export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3';

export type SqliteRow = Record<string, unknown>;

export interface SqliteConnection {
  readonly driver: SqliteDriverName;
  /** Runs statements that return nothing (`CREATE TABLE …; PRAGMA …`). */
  exec(sql: string): void;
  /** Runs one statement with positional parameters. */
  run(sql: string, ...params: unknown[]): void;
  /** The first row, or undefined. */
  get(sql: string, ...params: unknown[]): SqliteRow | undefined;
  /** Every row, one at a time. */
  iterate(sql: string, ...params: unknown[]): Iterable<SqliteRow>;
  close(): void;
}

/** What of `node:sqlite` this module uses (its types are not in @types/node 20). */
interface NodeSqliteModule {
  DatabaseSync: new (
    file: string,
    options?: { open?: boolean; readOnly?: boolean },
  ) => {
    exec(sql: string): void;
    prepare(sql: string): {
      run(...params: unknown[]): unknown;
      get(...params: unknown[]): SqliteRow | undefined;
      iterate(...params: unknown[]): IterableIterator<SqliteRow>;
    };
    close(): void;
  };
}

/** `node:sqlite` when this runtime has it without a flag, else undefined. */
function nodeSqlite(): NodeSqliteModule | undefined {
  // getBuiltinModule (Node ≥ 20.16) answers undefined for a module this runtime lacks, and for
  // node:sqlite on Node 22 before 22.13, where it still needs --experimental-sqlite.
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  return get?.call(process, 'node:sqlite') as NodeSqliteModule | undefined;
}

/** The drivers this runtime can use, the preferred first (better-sqlite3 only if it loads). */
export async function sqliteDrivers(): Promise<SqliteDriverName[]> {
  const out: SqliteDriverName[] = [];
  if (nodeSqlite() !== undefined) out.push('node:sqlite');
  try {
    const { default: Database } = await import('better-sqlite3');
    new Database(':memory:').close();
    out.push('better-sqlite3');
  } catch {
    // not installed (the client's package ships none), or built for another runtime
  }
  return out;
}

/** This runtime can open no SQLite file: neither node:sqlite nor a loadable better-sqlite3. */
export class SqliteUnavailableError extends SysattestError<'NO_SQLITE_DRIVER'> {
  readonly exitCode = 69;
}

/**
 * Opens `file` (which must exist) read-write: rpm's database is opened on a private copy, and
 * reading a write-ahead log needs write access to its shared-memory index.
 * `driver`: force one (tests run both); by default node:sqlite when the runtime has it.
 */
export async function openSqlite(file: string, driver?: SqliteDriverName): Promise<SqliteConnection> {
  const builtin = nodeSqlite();
  if (driver === 'node:sqlite' || (driver === undefined && builtin !== undefined)) {
    if (builtin === undefined)
      throw new SqliteUnavailableError('NO_SQLITE_DRIVER', `node:sqlite is not in Node ${process.version}`);
    return openWithNodeSqlite(builtin, file);
  }
  let Database: typeof import('better-sqlite3');
  try {
    ({ default: Database } = await import('better-sqlite3'));
  } catch (e) {
    throw new SqliteUnavailableError(
      'NO_SQLITE_DRIVER',
      `reading an sqlite rpm database on Node ${process.version} needs node:sqlite (Node ≥ 22.13) or the better-sqlite3 module: ${(e as Error).message}`,
      { cause: e },
    );
  }
  const db = new Database(file, { fileMustExist: true });
  return {
    driver: 'better-sqlite3',
    exec: (sql) => void db.exec(sql),
    run: (sql, ...params) => void db.prepare(sql).run(...params),
    get: (sql, ...params) => db.prepare(sql).get(...params) as SqliteRow | undefined,
    iterate: (sql, ...params) => db.prepare(sql).iterate(...params) as Iterable<SqliteRow>,
    close: () => db.close(),
  };
}

function openWithNodeSqlite(sqlite: NodeSqliteModule, file: string): SqliteConnection {
  const db = translated(() => new sqlite.DatabaseSync(file));
  // node:sqlite gives blobs as Uint8Array; the readers take Buffers.
  const row = (r: SqliteRow | undefined): SqliteRow | undefined => {
    if (r === undefined) return undefined;
    const out: SqliteRow = {};
    for (const [k, v] of Object.entries(r))
      out[k] =
        v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.length) : v;
    return out;
  };
  return {
    driver: 'node:sqlite',
    exec: (sql) => translated(() => db.exec(sql)),
    run: (sql, ...params) => void translated(() => db.prepare(sql).run(...params)),
    get: (sql, ...params) => translated(() => row(db.prepare(sql).get(...params))),
    iterate: (sql, ...params) => ({
      *[Symbol.iterator]() {
        const it = translated(() => db.prepare(sql).iterate(...params));
        for (;;) {
          const next = translated(() => it.next());
          if (next.done === true) return;
          yield row(next.value) as SqliteRow;
        }
      },
    }),
    close: () => db.close(),
  };
}

/** SQLite's primary result codes (sqlite3.h) that a damaged or foreign file produces. */
const RESULT_CODES: Readonly<Record<number, string>> = {
  1: 'SQLITE_ERROR',
  5: 'SQLITE_BUSY',
  8: 'SQLITE_READONLY',
  10: 'SQLITE_IOERR',
  11: 'SQLITE_CORRUPT',
  14: 'SQLITE_CANTOPEN',
  26: 'SQLITE_NOTADB',
};

/** Runs `f`, giving a node:sqlite error (`ERR_SQLITE_ERROR`, `errcode`) better-sqlite3's code. */
function translated<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    const errcode = (e as { errcode?: unknown }).errcode;
    if ((e as { code?: unknown }).code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number') {
      const err = new Error((e as Error).message, { cause: e });
      (err as Error & { code: string }).code = RESULT_CODES[errcode & 0xff] ?? `SQLITE_${errcode}`;
      throw err;
    }
    throw e;
  }
}
