import { sql, type Kysely } from 'kysely';
import type { DialectName } from './connection.js';

/**
 * Migration 0003 (additive: no row changes). Alpine's APKINDEX records no SHA-256 of a package
 * file, only its `C:` checksum (`Q1` + base64 SHA-1 of the control segment, or `Q2` + SHA-256),
 * which core's catalog schema carries as `apkChecksum`. So:
 * - `catalog_entries.archive_sha256` becomes nullable;
 * - `catalog_entries.apk_checksum` (text, nullable) holds the `C:` value as the index wrote it;
 * - a check keeps every entry with at least one of the two, as the catalog schema requires.
 *
 * PostgreSQL alters the table in place (the migration runs in a transaction). SQLite cannot drop
 * a NOT NULL constraint, so the table is rebuilt the way SQLite documents: a new table, the rows
 * copied with their ids, the old table dropped, the new one renamed, and the old table's indexes
 * and triggers (0002's catalog_entries_first_seen_idx, anything else an operator added) and any
 * views created again from their stored SQL. It all happens inside the one transaction that
 * migrateUpTo holds on SQLite (`begin immediate`), so a failure half-way leaves the database as
 * it was (tested). No table refers to catalog_entries, so dropping and renaming it touches no
 * other foreign key.
 */
// Migrations run against past schemas: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function apkChecksums(db: Kysely<any>, dialect: DialectName): Promise<void> {
  if (dialect === 'postgres') {
    await sql`alter table catalog_entries alter column archive_sha256 drop not null`.execute(db);
    await db.schema.alterTable('catalog_entries').addColumn('apk_checksum', 'text').execute();
    await sql`alter table catalog_entries add constraint catalog_entries_digest_check check (archive_sha256 is not null or apk_checksum is not null)`.execute(
      db,
    );
    return;
  }

  const columns = (await sql<{ name: string }>`pragma table_info(catalog_entries)`.execute(db)).rows.map(
    (r) => r.name,
  );
  if (columns.includes('apk_checksum')) return; // already rebuilt (cannot happen: one transaction)

  // Indexes and triggers on the table, except the unique constraint's own (sql is null for it).
  const extras = (
    await sql<{ sql: string }>`select sql from sqlite_master
      where tbl_name = 'catalog_entries' and type in ('index', 'trigger') and sql is not null
      order by type, name`.execute(db)
  ).rows.map((r) => r.sql);
  // Views (the server makes none; an operator may have): renaming a table checks every view, and
  // one over the dropped table would fail it. Dropped first, made again at the end, in order.
  const views = (
    await sql<{
      name: string;
      sql: string;
    }>`select name, sql from sqlite_master where type = 'view' order by rowid`.execute(db)
  ).rows;
  for (const v of [...views].reverse()) await db.schema.dropView(v.name).execute();

  await db.schema
    .createTable('catalog_entries_0003')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('package_id', 'bigint', (c) => c.notNull().references('catalog_packages.id'))
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('source_name', 'text', (c) => c.notNull())
    .addColumn('source_version', 'text', (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('archive_sha256', 'text')
    .addColumn('filename', 'text')
    .addColumn('first_seen', 'text', (c) => c.notNull())
    .addColumn('last_seen', 'text', (c) => c.notNull())
    .addColumn('withdrawn_at', 'text')
    .addColumn('apk_checksum', 'text')
    .addUniqueConstraint('catalog_entries_key', ['package_id', 'version'])
    .addCheckConstraint(
      'catalog_entries_digest_check',
      sql`archive_sha256 is not null or apk_checksum is not null`,
    )
    .execute();
  const copied = [
    'id',
    'package_id',
    'version',
    'source_name',
    'source_version',
    'size',
    'archive_sha256',
    'filename',
    'first_seen',
    'last_seen',
    'withdrawn_at',
  ].map((c) => sql.ref(c));
  try {
    await sql`insert into catalog_entries_0003 (${sql.join(copied)}) select ${sql.join(copied)} from catalog_entries order by id`.execute(
      db,
    );
  } catch (e) {
    // The copy checks foreign keys (the store's connection has them on). A damaged file, with a
    // version whose package row is gone, cannot be migrated: say so rather than just
    // "FOREIGN KEY constraint failed". The transaction is rolled back, nothing changes.
    const orphans = (await sql`pragma foreign_key_check(catalog_entries)`.execute(db)).rows.length;
    if (orphans === 0) throw e;
    throw new Error(
      `catalog_entries has ${orphans} row(s) whose catalog_packages row is missing ` +
        '(see `pragma foreign_key_check(catalog_entries)` in sqlite3); nothing was changed',
      { cause: e },
    );
  }
  const count = async (table: string): Promise<number> =>
    Number(
      (await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]?.n ?? -1,
    );
  const before = await count('catalog_entries');
  const after = await count('catalog_entries_0003');
  if (before !== after) throw new Error(`catalog_entries rebuild copied ${after} of ${before} rows`);

  await db.schema.dropTable('catalog_entries').execute();
  await db.schema.alterTable('catalog_entries_0003').renameTo('catalog_entries').execute();
  for (const statement of [...extras, ...views.map((v) => v.sql)]) await sql.raw(statement).execute(db);
}
