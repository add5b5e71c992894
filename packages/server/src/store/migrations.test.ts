import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import {
  DEFAULT_SQLITE_PATH,
  createDatabase,
  parseStoreLocation,
  redactLocation,
  type DialectName,
} from './connection.js';
import { MIGRATION_NAMES, SCHEMA_VERSION, migrateUpTo } from './migrations.js';
import { isStoreError } from './store-error.js';
import { openStore } from './store.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  apkChecksum,
  createTestDatabase,
  openTestStore,
  runNode,
  sha256,
  type TestDatabase,
} from '../testkit/store.js';

// Migrations and the rows written at a past schema: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

const AMD64 = 'debian/bookworm/amd64';
const ALPINE = 'alpine/3.20/x86_64';
/** Times in the stored form (milliseconds); catalogs are signed with T2_SIGNED. */
const T1 = '2026-11-01T06:00:00.000Z';
const T2 = '2026-11-02T06:00:00.000Z';
const T2_SIGNED = '2026-11-02T06:00:00Z';

/** The catalog_entries rows a schema-0002 database holds, as written by the server of that time. */
const OLD_ENTRIES = [
  { name: 'bash', version: '5.2.15-2', first_seen: T1, last_seen: T1, withdrawn_at: T2 },
  { name: 'bash', version: '5.2.15-2+b1', first_seen: T2, last_seen: T2, withdrawn_at: null },
  { name: 'jq', version: '1.6-2.1', first_seen: T1, last_seen: T2, withdrawn_at: null },
] as const;

/**
 * A database at schema 0002 (before apk checksums) with a platform, a real signed snapshot, two
 * packages, three versions (one withdrawn), a view over them, a manifest and a job, written with
 * plain inserts.
 */
async function databaseAtSchema0002(dialect: DialectName, gen: TestGenerator): Promise<TestDatabase> {
  const db = await createTestDatabase(dialect);
  const typed = createDatabase(parseStoreLocation(db.url));
  const k = typed as unknown as AnyDb;
  try {
    await migrateUpTo(typed, dialect, '0002_dashboard_indexes');
    const catalog = await gen.catalog(AMD64, T2_SIGNED, [
      { name: 'bash', version: '5.2.15-2+b1' },
      { name: 'jq', version: '1.6-2.1' },
    ]);
    const manifest = await gen.manifest(AMD64, { name: 'jq', version: '1.6-2.1' });
    const { id: platformId } = await k
      .insertInto('platforms')
      .values({ name: AMD64, distro: 'debian', release: 'bookworm', arch: 'amd64', created_at: T1 })
      .returning('id')
      .executeTakeFirstOrThrow();
    await k
      .insertInto('catalog_snapshots')
      .values({
        platform_id: platformId,
        digest: catalog.digest,
        generated_at: T2,
        signer_fingerprint: catalog.signerFingerprint,
        signed_at: T2,
        package_count: 2,
        ingested_at: T2,
        signature: catalog.signature,
        bytes: Buffer.from(catalog.bytes),
      })
      .execute();
    const packageIds = new Map<string, number>();
    for (const [name, newest] of [
      ['bash', '5.2.15-2+b1'],
      ['jq', '1.6-2.1'],
    ] as const) {
      const { id } = await k
        .insertInto('catalog_packages')
        .values({ platform_id: platformId, name, arch: 'amd64', newest_version: newest })
        .returning('id')
        .executeTakeFirstOrThrow();
      packageIds.set(name, Number(id));
    }
    for (const e of OLD_ENTRIES) {
      await k
        .insertInto('catalog_entries')
        .values({
          package_id: packageIds.get(e.name),
          version: e.version,
          source_name: e.name,
          source_version: e.version,
          size: 1234,
          archive_sha256: sha256(`${e.name}_${e.version}`),
          filename: e.name === 'jq' ? null : `pool/main/b/bash/bash_${e.version}_amd64.deb`,
          first_seen: e.first_seen,
          last_seen: e.last_seen,
          withdrawn_at: e.withdrawn_at,
        })
        .execute();
    }
    // A view an operator added over the table (SQLite's rebuild must keep it working).
    await sql`create view entry_versions as select package_id, version from catalog_entries`.execute(k);
    await k
      .insertInto('manifests')
      .values({
        platform_id: platformId,
        name: 'jq',
        version: '1.6-2.1',
        arch: 'amd64',
        source_name: 'jq',
        source_version: '1.6-2.1',
        digest: manifest.digest,
        signer_fingerprint: manifest.signerFingerprint,
        signed_at: T2,
        generated_at: T2,
        entry_count: manifest.content.entries.length,
        file_count: 3,
        ingested_at: T2,
        signature: manifest.signature,
        bytes: Buffer.from(manifest.bytes),
      })
      .execute();
    await k
      .insertInto('jobs')
      .values({
        platform_id: platformId,
        target_platform_id: platformId,
        name: 'bash',
        version: '5.2.15-2+b1',
        arch: 'amd64',
        reason: 'client-request',
        state: 'pending',
        next_run_at: T2,
        created_at: T2,
        updated_at: T2,
      })
      .execute();
  } catch (e) {
    await k.destroy();
    await db.drop();
    throw e;
  }
  await k.destroy();
  return db;
}

async function indexNames(k: AnyDb, dialect: DialectName): Promise<string[]> {
  const rows =
    dialect === 'sqlite'
      ? await sql<{
          name: string;
        }>`select name from sqlite_master where type = 'index' and tbl_name = 'catalog_entries' and sql is not null`.execute(
          k,
        )
      : await sql<{
          name: string;
        }>`select indexname as name from pg_indexes where tablename = 'catalog_entries'`.execute(k);
  return rows.rows.map((r) => r.name).sort();
}

describe('store locations', () => {
  it('parses postgres URLs, sqlite: locations, plain paths and the default', () => {
    assert.deepEqual(parseStoreLocation(), { dialect: 'sqlite', path: DEFAULT_SQLITE_PATH });
    assert.deepEqual(parseStoreLocation(''), { dialect: 'sqlite', path: DEFAULT_SQLITE_PATH });
    assert.deepEqual(parseStoreLocation('postgres://u@h/db'), {
      dialect: 'postgres',
      url: 'postgres://u@h/db',
    });
    assert.deepEqual(parseStoreLocation('postgresql://h/db'), {
      dialect: 'postgres',
      url: 'postgresql://h/db',
    });
    assert.deepEqual(parseStoreLocation('sqlite:data/x.db'), { dialect: 'sqlite', path: 'data/x.db' });
    assert.deepEqual(parseStoreLocation('sqlite:///var/lib/x.db'), {
      dialect: 'sqlite',
      path: '/var/lib/x.db',
    });
    assert.deepEqual(parseStoreLocation('sqlite::memory:'), { dialect: 'sqlite', path: ':memory:' });
    assert.deepEqual(parseStoreLocation('/srv/x.db'), { dialect: 'sqlite', path: '/srv/x.db' });
  });

  it('refuses other URL schemes instead of taking them for file names', () => {
    assert.throws(
      () => parseStoreLocation('mysql://root:hunter2@db/x'),
      (e: unknown) => isStoreError(e, 'INVALID') && !e.message.includes('hunter2'),
    );
  });

  it('redacts passwords', () => {
    assert.equal(redactLocation('postgres://sys:s3cret@db:5432/x'), 'postgres://sys:***@db:5432/x');
    assert.equal(redactLocation('postgres://db/x'), 'postgres://db/x');
  });
});

for (const dialect of TEST_DIALECTS) {
  describe(`migrations (${dialect})`, () => {
    it('bring an empty database to the current schema, and opening again changes nothing', async () => {
      const t = await openTestStore(dialect);
      try {
        assert.deepEqual(await t.store.schemaVersion(), { applied: SCHEMA_VERSION, known: SCHEMA_VERSION });
        const tables = (await t.raw().introspection.getTables()).map((x) => x.name).sort();
        for (const table of [
          'platforms',
          'catalog_snapshots',
          'manifests',
          'manifest_files',
          'jobs',
          'tokens',
        ]) {
          assert.ok(tables.includes(table), `${table} exists`);
        }
        const again = await openStore(t.db.url);
        assert.deepEqual(await again.schemaVersion(), { applied: SCHEMA_VERSION, known: SCHEMA_VERSION });
        await again.close();
      } finally {
        await t.close();
      }
    });

    it('two processes opening a fresh database at once both succeed (migrations are serialised)', async () => {
      const db = await createTestDatabase(dialect);
      try {
        const runs = await Promise.all([1, 2].map(() => runNode('./store-worker.js', ['open', db.url]).done));
        for (const run of runs) {
          assert.equal(run.code, 0, run.stderr);
          assert.deepEqual(JSON.parse(run.stdout), { applied: SCHEMA_VERSION, known: SCHEMA_VERSION });
        }
      } finally {
        await db.drop();
      }
    });

    it('refuse a database migrated by a newer server (SCHEMA_TOO_NEW)', async () => {
      const t = await openTestStore(dialect);
      try {
        const raw = t.raw();
        await sql`insert into schema_migrations (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')`.execute(
          raw,
        );
        await assert.rejects(openStore(t.db.url), (e: unknown) => {
          return isStoreError(e, 'SCHEMA_TOO_NEW') && /9999_from_the_future/.test(e.message);
        });
      } finally {
        await t.close();
      }
    });

    it('0003 keeps every row of a schema-0002 database, its indexes and constraints, and then stores apk catalogs', async () => {
      const gen = await TestGenerator.create();
      const db = await databaseAtSchema0002(dialect, gen);
      const k = createDatabase(parseStoreLocation(db.url)) as unknown as AnyDb;
      try {
        const columns = [
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
        ];
        const before = await k.selectFrom('catalog_entries').select(columns).orderBy('id').execute();
        assert.equal(before.length, OLD_ENTRIES.length);
        const indexesBefore = await indexNames(k, dialect);
        assert.ok(indexesBefore.includes('catalog_entries_first_seen_idx'), indexesBefore.join(', '));

        const store = await openStore(db.url);
        try {
          assert.deepEqual(await store.schemaVersion(), { applied: SCHEMA_VERSION, known: SCHEMA_VERSION });
          const after = await k
            .selectFrom('catalog_entries')
            .select([...columns, 'apk_checksum'])
            .orderBy('id')
            .execute();
          assert.deepEqual(
            after,
            before.map((r) => ({ ...r, apk_checksum: null })),
          );
          assert.deepEqual(await indexNames(k, dialect), indexesBefore);
          const viewed = await sql<{
            version: string;
          }>`select version from entry_versions order by version`.execute(k);
          assert.deepEqual(
            viewed.rows.map((r) => r.version),
            ['1.6-2.1', '5.2.15-2', '5.2.15-2+b1'],
          );
          for (const table of ['platforms', 'catalog_snapshots', 'catalog_packages', 'manifests', 'jobs']) {
            const n = await k
              .selectFrom(table)
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow();
            assert.equal(Number(n.n), table === 'catalog_packages' ? 2 : 1, table);
          }

          // The store reads the old rows as before.
          const [bash] = await store.catalogPackage(AMD64, 'bash');
          assert.equal(bash?.newestVersion, '5.2.15-2+b1');
          assert.deepEqual(
            bash?.versions.map((v) => [v.version, v.archiveSha256, v.apkChecksum, v.withdrawnAt]),
            [
              ['5.2.15-2', sha256('bash_5.2.15-2'), undefined, T2],
              ['5.2.15-2+b1', sha256('bash_5.2.15-2+b1'), undefined, undefined],
            ],
          );
          const looked = await store.lookup(AMD64, [
            { name: 'jq', version: '1.6-2.1', arch: 'amd64' },
            { name: 'bash', version: '5.2.15-2+b1', arch: 'amd64' },
            { name: 'bash', version: '5.2.15-2', arch: 'amd64' },
          ]);
          assert.deepEqual(
            looked.items.map((i) => i.status),
            ['ok', 'pending', 'not-in-catalog'],
          );

          // The unique key, the foreign key and the new check still hold.
          const entry = (over: Record<string, unknown>) =>
            k
              .insertInto('catalog_entries')
              .values({
                package_id: before[0]?.package_id,
                version: '9.9-1',
                source_name: 'bash',
                source_version: '9.9-1',
                size: 1,
                archive_sha256: null,
                apk_checksum: apkChecksum('bash', '9.9-1', 'amd64'),
                first_seen: T2,
                last_seen: T2,
                ...over,
              })
              .execute();
          await assert.rejects(entry({ version: '5.2.15-2' }), /unique|duplicate/i);
          await assert.rejects(entry({ package_id: 999_999 }), /foreign key/i);
          await assert.rejects(entry({ apk_checksum: null }), /check constraint|CHECK/i);

          // And an apk catalog is stored now.
          const r = await store.ingestCatalog(
            await gen.catalog(ALPINE, T2_SIGNED, [
              { name: 'musl', version: '1.2.5-r9' },
              { name: 'musl', version: '1.2.5-r10' },
            ]),
          );
          assert.equal(r.added, 2);
          const [musl] = await store.catalogPackage(ALPINE, 'musl');
          assert.equal(musl?.newestVersion, '1.2.5-r10');
          assert.deepEqual(
            musl?.versions.map((v) => [v.version, v.archiveSha256, v.apkChecksum]),
            [
              ['1.2.5-r10', undefined, apkChecksum('musl', '1.2.5-r10', 'x86_64')],
              ['1.2.5-r9', undefined, apkChecksum('musl', '1.2.5-r9', 'x86_64')],
            ],
          );
        } finally {
          await store.close();
        }
      } finally {
        await k.destroy();
        await db.drop();
      }
    });

    it('know their migrations in order', () => {
      assert.equal(SCHEMA_VERSION, MIGRATION_NAMES.length);
      assert.deepEqual([...MIGRATION_NAMES].sort(), MIGRATION_NAMES);
    });
  });
}

describe('migration 0003 on SQLite', { skip: !TEST_DIALECTS.includes('sqlite') }, () => {
  it('refuses a damaged file (a version whose package is gone) saying so, leaving schema 0002 and every row', async () => {
    const gen = await TestGenerator.create();
    const db = await databaseAtSchema0002('sqlite', gen);
    const file = db.url.slice('sqlite:'.length);
    try {
      // A row whose package is gone (written with foreign keys off, as a damaged file could hold).
      const raw = new SqliteDatabase(file);
      raw.pragma('foreign_keys = OFF');
      raw
        .prepare(
          `insert into catalog_entries (package_id, version, source_name, source_version, size, archive_sha256, first_seen, last_seen)
           values (999999, '1', 'gone', '1', 1, ?, ?, ?)`,
        )
        .run(sha256('gone'), T1, T1);
      raw.close();

      await assert.rejects(
        openStore(db.url),
        (e: unknown) =>
          isStoreError(e, 'UNAVAILABLE') &&
          /0003_apk_checksums failed: catalog_entries has 1 row\(s\) whose catalog_packages row is missing/.test(
            e.message,
          ),
      );
      const after = new SqliteDatabase(file, { readonly: true });
      try {
        const migrations = after.prepare('select name from schema_migrations order by name').all();
        assert.deepEqual(
          migrations.map((m) => (m as { name: string }).name),
          ['0001_initial', '0002_dashboard_indexes'],
        );
        const table = after.prepare("select sql from sqlite_master where name = 'catalog_entries'").get() as {
          sql: string;
        };
        assert.match(table.sql, /"archive_sha256" text not null/);
        assert.doesNotMatch(table.sql, /apk_checksum/);
        assert.equal(
          (after.prepare('select count(*) as n from catalog_entries').get() as { n: number }).n,
          OLD_ENTRIES.length + 1,
        );
        assert.deepEqual(
          after
            .prepare("select name from sqlite_master where name like 'catalog_entries%' order by name")
            .all()
            .map((r) => (r as { name: string }).name),
          ['catalog_entries', 'catalog_entries_first_seen_idx'],
          'no half-made table is left',
        );
      } finally {
        after.close();
      }
    } finally {
      await db.drop();
    }
  });
});

describe('opening an unreachable database', () => {
  it('fails with UNAVAILABLE and no password in the message', async () => {
    await assert.rejects(
      openStore('postgres://sysattest:hunter2@127.0.0.1:1/nothing'),
      (e: unknown) => isStoreError(e, 'UNAVAILABLE') && !e.message.includes('hunter2'),
    );
  });

  it('fails with UNAVAILABLE for an SQLite file that cannot be created', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-store-'));
    try {
      fs.writeFileSync(path.join(dir, 'a-file'), '');
      await assert.rejects(openStore(`sqlite:${dir}/a-file/x.db`), (e: unknown) =>
        isStoreError(e, 'UNAVAILABLE'),
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
