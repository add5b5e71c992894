import { Migrator, sql, type CreateTableBuilder, type Kysely, type Migration } from 'kysely';
import type { Database } from './database.js';
import type { DialectName } from './connection.js';
import { apkChecksums } from './migration-apk-checksums.js';
import { dashboardIndexes } from './migration-dashboard-indexes.js';
import { hosts } from './migration-hosts.js';
import { jobPriority } from './migration-job-priority.js';
import { queueQuotas } from './migration-queue-quotas.js';
import { StoreError } from './store-error.js';

/**
 * The schema, as an ordered list of migrations kept in code (no migration files to ship or find).
 * A migration is never edited once released: a change is a new migration appended to the list.
 *
 * Design, table by table:
 * - `platforms`: one row per `distro/release/arch`, created on first use (catalog, manifest or
 *   lookup). Everything else refers to a platform by id, so a platform string is stored once.
 * - `catalog_snapshots`: every signed catalog ever received, exact bytes + signature + digest,
 *   never deleted: the evidence behind every "newest version" and "not in catalog" answer (trust
 *   model rule 4). The latest snapshot of a platform is the one with the greatest `generated_at`.
 * - `catalog_packages`: one row per platform + package name + architecture, holding
 *   `newest_version`, the newest version in the platform's latest snapshot by the distribution's
 *   own ordering (dpkg for Debian). Computed once per snapshot in JavaScript (core's ordering is
 *   the single implementation of dpkg's algorithm) and stored, so a lookup reads it by key instead
 *   of ordering versions in SQL.
 * - `catalog_entries`: one row per package version ever seen in a catalog, with when it was first
 *   and last seen (snapshot times) and `withdrawn_at`, the time of the first newer snapshot that no
 *   longer listed it. Withdrawn versions are kept: repositories drop them, machines still run them.
 *   Each has the repository index's `archive_sha256` of the package file, or (Alpine, since 0003)
 *   only `apk_checksum`, the APKINDEX `C:` value; at least one of the two.
 * - `manifests`: every manifest ever stored, exact bytes + signature + digest, unique per
 *   platform + name + version + architecture, never deleted. An `all` package's manifest is on the
 *   release's `…/all` platform, as the manifest itself says.
 * - `paths`, `contents`, `manifest_files`: the reverse index "which package versions contain this
 *   sha256". A file's sha256 is stored once in `contents` and a path once in `paths`, however many
 *   manifests share them (most files do not change between two versions of a package); each
 *   manifest adds only a row of three integers per file. Only entries with content (file,
 *   hardlink) are indexed; everything else stays in the manifest bytes.
 * - `conflicts`: uploads refused because other bytes are already stored for the same platform +
 *   package + version, kept whole (bytes + signature) for the operator: a trusted generator
 *   producing two different manifests for one package version is either non-deterministic or
 *   compromised, and someone must look. The same refused bytes again only count `attempts`.
 * - `tokens`: API credentials, stored as the sha256 of the secret (the secret itself is shown once
 *   and never stored); revocation keeps the row for the audit trail.
 * - `trusted_keys`: generator public keys the server verifies uploads against; removal keeps the
 *   row (removed_at) so the history of what was trusted when stays readable.
 * - `tracked_packages`: packages whose newest version should always have a manifest, because a
 *   client asked for them or the configuration names them.
 * - `jobs`: the generation queue, one row per package version to make (unique, so however many
 *   clients ask, one job exists), with its lease and retry state.
 * - `queue_quotas` (0004): how many jobs and tracked packages anonymous lookups of one client
 *   address created in the current quota window; past windows are deleted as new ones start.
 * - `jobs.priority` (0005): claims take higher first; a platform's whole-catalog backlog is below
 *   every job a client or an operator asked for.
 * - `hosts`, `host_reports`, `host_packages` (0006): the machines that report their verify
 *   verdicts, their bounded history and their latest packages; `tokens.host` binds a `reporter`
 *   token to its host (migration-hosts.ts).
 *
 * Times are ISO-8601 text and ids 64-bit integers on both databases (see database.ts).
 */

const MIGRATION_TABLE = 'schema_migrations';
const MIGRATION_LOCK_TABLE = 'schema_migrations_lock';

function migrations(dialect: DialectName): Record<string, Migration> {
  return {
    '0001_initial': { up: (db) => initialSchema(db, dialect) },
    '0002_dashboard_indexes': { up: (db) => dashboardIndexes(db) },
    '0003_apk_checksums': { up: (db) => apkChecksums(db, dialect) },
    '0004_queue_quotas': { up: (db) => queueQuotas(db) },
    '0005_job_priority': { up: (db) => jobPriority(db) },
    '0006_hosts': { up: (db) => hosts(db, dialect) },
  };
}

/** The names of the migrations this code knows, in order. */
export const MIGRATION_NAMES: readonly string[] = Object.keys(migrations('sqlite'));

/** The schema version this code writes: the number of migrations it knows. */
export const SCHEMA_VERSION = MIGRATION_NAMES.length;

// Kysely's own advice: migrations use `Kysely<any>`, since they run against past schemas.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Table = CreateTableBuilder<string, any>;

async function initialSchema(db: AnyDb, dialect: DialectName): Promise<void> {
  const pg = dialect === 'postgres';
  // SQLite: an `integer primary key` column is the rowid. PostgreSQL: a bigint identity.
  const withId = (t: Table): Table =>
    pg
      ? t.addColumn('id', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity())
      : t.addColumn('id', 'integer', (c) => c.primaryKey());
  const blob = pg ? 'bytea' : 'blob';
  const ref = (t: Table, column: string, table: string, nullable = false): Table =>
    t.addColumn(column, 'bigint', (c) => {
      const r = c.references(`${table}.id`);
      return nullable ? r : r.notNull();
    });
  const text = (t: Table, column: string): Table => t.addColumn(column, 'text', (c) => c.notNull());
  const texts = (t: Table, ...columns: string[]): Table => columns.reduce(text, t);

  // `if not exists` everywhere, so that a migration interrupted before it was recorded can run again.
  await texts(
    withId(db.schema.createTable('platforms').ifNotExists()),
    'name',
    'distro',
    'release',
    'arch',
    'created_at',
  )
    .addUniqueConstraint('platforms_name_key', ['name'])
    .execute();

  await texts(
    ref(withId(db.schema.createTable('catalog_snapshots').ifNotExists()), 'platform_id', 'platforms'),
    'digest',
    'generated_at',
    'signer_fingerprint',
    'signed_at',
  )
    .addColumn('package_count', 'integer', (c) => c.notNull())
    .addColumn('ingested_at', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('bytes', blob, (c) => c.notNull())
    .addUniqueConstraint('catalog_snapshots_digest_key', ['digest'])
    .execute();
  await db.schema
    .createIndex('catalog_snapshots_platform_time_idx')
    .ifNotExists()
    .on('catalog_snapshots')
    .columns(['platform_id', 'generated_at'])
    .execute();

  await texts(
    ref(withId(db.schema.createTable('catalog_packages').ifNotExists()), 'platform_id', 'platforms'),
    'name',
    'arch',
  )
    .addColumn('newest_version', 'text')
    .addUniqueConstraint('catalog_packages_key', ['platform_id', 'name', 'arch'])
    .execute();

  await texts(
    ref(withId(db.schema.createTable('catalog_entries').ifNotExists()), 'package_id', 'catalog_packages'),
    'version',
    'source_name',
    'source_version',
  )
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addColumn('archive_sha256', 'text', (c) => c.notNull())
    .addColumn('filename', 'text')
    .addColumn('first_seen', 'text', (c) => c.notNull())
    .addColumn('last_seen', 'text', (c) => c.notNull())
    .addColumn('withdrawn_at', 'text')
    .addUniqueConstraint('catalog_entries_key', ['package_id', 'version'])
    .execute();

  await texts(
    ref(withId(db.schema.createTable('manifests').ifNotExists()), 'platform_id', 'platforms'),
    'name',
    'version',
    'arch',
    'source_name',
    'source_version',
    'digest',
    'signer_fingerprint',
    'signed_at',
    'generated_at',
  )
    .addColumn('entry_count', 'integer', (c) => c.notNull())
    .addColumn('file_count', 'integer', (c) => c.notNull())
    .addColumn('ingested_at', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('bytes', blob, (c) => c.notNull())
    .addUniqueConstraint('manifests_key', ['platform_id', 'name', 'version', 'arch'])
    .addUniqueConstraint('manifests_digest_key', ['digest'])
    .execute();

  // PostgreSQL's btree refuses index rows over ~2.7 kB, and a path may be 4 kB: the unique key is
  // the path's sha256 instead of the path.
  await withId(db.schema.createTable('paths').ifNotExists())
    .addColumn('key', blob, (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addUniqueConstraint('paths_key_key', ['key'])
    .execute();

  await withId(db.schema.createTable('contents').ifNotExists())
    .addColumn('sha256', blob, (c) => c.notNull())
    .addColumn('size', 'bigint', (c) => c.notNull())
    .addUniqueConstraint('contents_sha256_key', ['sha256'])
    .execute();

  let manifestFiles = ref(
    ref(
      ref(db.schema.createTable('manifest_files').ifNotExists(), 'manifest_id', 'manifests'),
      'path_id',
      'paths',
    ),
    'content_id',
    'contents',
  ).addPrimaryKeyConstraint('manifest_files_pkey', ['manifest_id', 'path_id']);
  // SQLite: the table is its primary-key b-tree, no separate rowid table (half the size).
  if (!pg) manifestFiles = manifestFiles.modifyEnd(sql`without rowid`);
  await manifestFiles.execute();
  // The reverse lookup reads this index alone: content → (manifest, path).
  await db.schema
    .createIndex('manifest_files_content_idx')
    .ifNotExists()
    .on('manifest_files')
    .columns(['content_id', 'manifest_id', 'path_id'])
    .execute();

  await texts(
    ref(
      ref(withId(db.schema.createTable('conflicts').ifNotExists()), 'platform_id', 'platforms'),
      'manifest_id',
      'manifests',
    ),
    'name',
    'version',
    'arch',
    'digest',
    'signer_fingerprint',
    'first_received_at',
    'last_received_at',
  )
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('bytes', blob, (c) => c.notNull())
    .addUniqueConstraint('conflicts_digest_key', ['digest'])
    .execute();

  await texts(withId(db.schema.createTable('tokens').ifNotExists()), 'name', 'secret_hash', 'created_at')
    .addColumn('role', 'text', (c) => c.notNull().check(sql`role in ('admin', 'generator', 'reader')`))
    .addColumn('revoked_at', 'text')
    .addUniqueConstraint('tokens_secret_hash_key', ['secret_hash'])
    .execute();

  await db.schema
    .createTable('trusted_keys')
    .ifNotExists()
    .addColumn('fingerprint', 'text', (c) => c.primaryKey())
    .addColumn('armored', 'text', (c) => c.notNull())
    .addColumn('added_at', 'text', (c) => c.notNull())
    .addColumn('removed_at', 'text')
    .execute();

  await texts(
    ref(db.schema.createTable('tracked_packages').ifNotExists(), 'platform_id', 'platforms'),
    'name',
    'created_at',
  )
    .addColumn('source', 'text', (c) => c.notNull().check(sql`source in ('client-request', 'config')`))
    .addPrimaryKeyConstraint('tracked_packages_pkey', ['platform_id', 'name', 'source'])
    .execute();

  await texts(
    ref(
      ref(withId(db.schema.createTable('jobs').ifNotExists()), 'platform_id', 'platforms'),
      'target_platform_id',
      'platforms',
    ),
    'name',
    'version',
    'arch',
    'next_run_at',
    'created_at',
    'updated_at',
  )
    .addColumn('reason', 'text', (c) =>
      c.notNull().check(sql`reason in ('client-request', 'tracked', 'operator')`),
    )
    .addColumn('state', 'text', (c) =>
      c.notNull().check(sql`state in ('pending', 'running', 'done', 'dead')`),
    )
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_seconds', 'integer')
    .addColumn('lease_expires_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('manifest_id', 'bigint', (c) => c.references('manifests.id'))
    .addColumn('completed_at', 'text')
    // One job per package version to make, whoever asked and from which architecture's catalog.
    .addUniqueConstraint('jobs_target_key', ['target_platform_id', 'name', 'version', 'arch'])
    .execute();
  // Claiming: the due jobs of a worker's platforms.
  await db.schema
    .createIndex('jobs_claim_idx')
    .ifNotExists()
    .on('jobs')
    .columns(['platform_id', 'state', 'next_run_at'])
    .execute();
  await db.schema
    .createIndex('jobs_target_state_idx')
    .ifNotExists()
    .on('jobs')
    .columns(['target_platform_id', 'state'])
    .execute();
}

/**
 * Brings the database to SCHEMA_VERSION. Refuses (SCHEMA_TOO_NEW) a database that a newer
 * server has migrated further than this code knows: running old code over a newer schema could
 * write rows the newer code does not expect.
 *
 * Concurrent openers are serialised. PostgreSQL: the migrator's advisory lock, and each migration
 * runs in a transaction. SQLite: Kysely's migrator assumes one process and takes no lock, so the
 * whole check-and-migrate runs inside one `begin immediate` transaction on the store's single
 * connection: a second process waits for it (busy_timeout), then finds the schema current; and
 * a migration that fails half-way leaves nothing behind.
 */
export async function migrateToLatest(db: Kysely<Database>, dialect: DialectName): Promise<void> {
  return migrateUpTo(db, dialect, MIGRATION_NAMES.at(-1) as string);
}

/**
 * Like migrateToLatest, but stops after migration `last` (one of MIGRATION_NAMES): how tests
 * make a database at an earlier schema version, to check that a later migration keeps its rows.
 */
export async function migrateUpTo(db: Kysely<Database>, dialect: DialectName, last: string): Promise<void> {
  if (!MIGRATION_NAMES.includes(last)) throw new StoreError('INVALID', `no migration named ${last}`);
  if (dialect === 'postgres') return checkAndMigrate(db, dialect, last);
  await sql`begin immediate`.execute(db);
  try {
    await checkAndMigrate(db, dialect, last);
  } catch (e) {
    await sql`rollback`.execute(db).catch(() => undefined);
    throw e;
  }
  await sql`commit`.execute(db);
}

async function checkAndMigrate(db: Kysely<Database>, dialect: DialectName, last: string): Promise<void> {
  const executed = await executedMigrations(db);
  const unknown = executed.filter((name) => !MIGRATION_NAMES.includes(name));
  if (unknown.length > 0) {
    throw new StoreError(
      'SCHEMA_TOO_NEW',
      `the database schema is newer than this sysattest-server (it has migration ${unknown.join(', ')}, ` +
        `this version knows up to ${MIGRATION_NAMES.at(-1)}): upgrade sysattest-server`,
    );
  }
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations(dialect) },
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: MIGRATION_LOCK_TABLE,
  });
  // migrateTo(last) would also migrate *down* a database that is further along; never do that.
  const { error, results } = executed.includes(last)
    ? { error: undefined, results: [] }
    : await migrator.migrateTo(last);
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new StoreError(
      'UNAVAILABLE',
      `database migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }
}

/** The names of the migrations applied to this database (none for an empty database). */
export async function executedMigrations(db: Kysely<Database>): Promise<string[]> {
  const tables = await db.introspection.getTables();
  if (!tables.some((t) => t.name === MIGRATION_TABLE)) return [];
  const rows = await (db as unknown as AnyDb)
    .selectFrom(MIGRATION_TABLE)
    .select('name')
    .orderBy('name')
    .execute();
  return rows.map((r: { name: string }) => r.name);
}
