import { sql, type CreateTableBuilder, type Kysely } from 'kysely';
import type { DialectName } from './connection.js';

/**
 * Migration 0006: the hosts that report their verify verdicts (issue 19).
 * - `tokens`: the role check gains `reporter`, and a nullable `host` column binds a reporter token
 *   to the one host it may write for; a check keeps `host` set exactly on reporter tokens.
 *   PostgreSQL alters the table in place; SQLite cannot change a check, so the table is rebuilt
 *   the way SQLite documents (as 0003 rebuilt catalog_entries), inside the one transaction that
 *   migrateUpTo holds. No table refers to tokens.
 * - `hosts`: one row per host name, made by its first report; its latest report's verdict, exit
 *   status and counts (`summary`, JSON), so a list of hosts reads this table alone.
 * - `host_reports`: each stored report (unique per host and client report id: a resend is stored
 *   once), its verdict, exit status and summary, and the report itself, gzipped JSON (`report`;
 *   `bytes` is the JSON's size). Pruned on write (retention).
 * - `host_packages`: the latest report's packages of each host, replaced with each report; what
 *   answers "which hosts run version X" and "which run a version that has a newer one".
 */
// Migrations run against past schemas: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Table = CreateTableBuilder<string, any>;

const ROLE_CHECK = sql`role in ('admin', 'generator', 'reader', 'reporter')`;
const HOST_CHECK = sql`(role = 'reporter') = (host is not null)`;
const VERDICT_CHECK = sql`in ('clean', 'findings', 'incomplete', 'trust-failure')`;

export async function hosts(db: AnyDb, dialect: DialectName): Promise<void> {
  await (dialect === 'postgres' ? reporterTokensPostgres(db) : reporterTokensSqlite(db));
  await hostTables(db, dialect);
}

async function reporterTokensPostgres(db: AnyDb): Promise<void> {
  // 0001's column check, named by PostgreSQL's rule (table_column_check).
  await sql`alter table tokens drop constraint tokens_role_check`.execute(db);
  await sql`alter table tokens add constraint tokens_role_check check (${ROLE_CHECK})`.execute(db);
  await db.schema.alterTable('tokens').addColumn('host', 'text').execute();
  await sql`alter table tokens add constraint tokens_host_check check (${HOST_CHECK})`.execute(db);
}

async function reporterTokensSqlite(db: AnyDb): Promise<void> {
  const extras = (
    await sql<{ sql: string }>`select sql from sqlite_master
      where tbl_name = 'tokens' and type in ('index', 'trigger') and sql is not null
      order by type, name`.execute(db)
  ).rows.map((r) => r.sql);
  const views = (
    await sql<{ name: string; sql: string }>`select name, sql from sqlite_master
      where type = 'view' order by rowid`.execute(db)
  ).rows;
  for (const v of [...views].reverse()) await db.schema.dropView(v.name).execute();

  await db.schema
    .createTable('tokens_0006')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull().check(ROLE_CHECK))
    .addColumn('revoked_at', 'text')
    .addColumn('host', 'text')
    .addUniqueConstraint('tokens_secret_hash_key', ['secret_hash'])
    .addCheckConstraint('tokens_host_check', HOST_CHECK)
    .execute();
  const copied = ['id', 'name', 'secret_hash', 'created_at', 'role', 'revoked_at'].map((c) => sql.ref(c));
  await sql`insert into tokens_0006 (${sql.join(copied)}) select ${sql.join(copied)} from tokens order by id`.execute(
    db,
  );
  const count = async (table: string): Promise<number> =>
    Number(
      (await sql<{ n: number }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]?.n ?? -1,
    );
  const before = await count('tokens');
  const after = await count('tokens_0006');
  if (before !== after) throw new Error(`tokens rebuild copied ${after} of ${before} rows`);
  await db.schema.dropTable('tokens').execute();
  await db.schema.alterTable('tokens_0006').renameTo('tokens').execute();
  for (const statement of [...extras, ...views.map((v) => v.sql)]) await sql.raw(statement).execute(db);
}

async function hostTables(db: AnyDb, dialect: DialectName): Promise<void> {
  const pg = dialect === 'postgres';
  const withId = (t: Table): Table =>
    pg
      ? t.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : t.addColumn('id', 'integer', (c) => c.primaryKey());
  const hostRef = (t: Table): Table =>
    t.addColumn('host_id', 'bigint', (c) => c.notNull().references('hosts.id'));

  await withId(db.schema.createTable('hosts').ifNotExists())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('platform', 'text', (c) => c.notNull())
    .addColumn('first_report_at', 'text', (c) => c.notNull())
    .addColumn('last_report_at', 'text', (c) => c.notNull())
    .addColumn('last_verdict', 'text', (c) => c.notNull().check(sql`last_verdict ${VERDICT_CHECK}`))
    .addColumn('last_exit_code', 'integer', (c) => c.notNull())
    // host_reports.id of the latest report (no foreign key: the two tables would refer to each other).
    .addColumn('latest_report_id', 'bigint', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addUniqueConstraint('hosts_name_key', ['name'])
    .execute();
  await db.schema
    .createIndex('hosts_platform_idx')
    .ifNotExists()
    .on('hosts')
    .columns(['platform', 'name'])
    .execute();
  await db.schema
    .createIndex('hosts_verdict_idx')
    .ifNotExists()
    .on('hosts')
    .columns(['last_verdict', 'name'])
    .execute();

  await hostRef(withId(db.schema.createTable('host_reports').ifNotExists()))
    .addColumn('report_id', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('verdict', 'text', (c) => c.notNull().check(sql`verdict ${VERDICT_CHECK}`))
    .addColumn('exit_code', 'integer', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('summary', 'text', (c) => c.notNull())
    .addColumn('report', pg ? 'bytea' : 'blob', (c) => c.notNull())
    .addColumn('bytes', 'integer', (c) => c.notNull())
    .addUniqueConstraint('host_reports_key', ['host_id', 'report_id'])
    .execute();
  await db.schema
    .createIndex('host_reports_time_idx')
    .ifNotExists()
    .on('host_reports')
    .columns(['host_id', 'received_at'])
    .execute();

  let packages = hostRef(db.schema.createTable('host_packages').ifNotExists())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('arch', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('newest_version', 'text')
    // rpm installs several versions of one kernel package side by side: the version is in the key.
    .addPrimaryKeyConstraint('host_packages_pkey', ['host_id', 'name', 'arch', 'version']);
  if (!pg) packages = packages.modifyEnd(sql`without rowid`);
  await packages.execute();
  await db.schema
    .createIndex('host_packages_version_idx')
    .ifNotExists()
    .on('host_packages')
    .columns(['name', 'version', 'host_id'])
    .execute();
}
