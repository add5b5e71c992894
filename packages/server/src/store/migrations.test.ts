import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { DEFAULT_SQLITE_PATH, parseStoreLocation, redactLocation } from './connection.js';
import { MIGRATION_NAMES, SCHEMA_VERSION } from './migrations.js';
import { isStoreError } from './store-error.js';
import { openStore } from './store.js';
import { TEST_DIALECTS, createTestDatabase, openTestStore, runNode } from './store-testkit.js';

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
        const runs = await Promise.all(
          [1, 2].map(() => runNode('./store-testkit-worker.js', ['open', db.url]).done),
        );
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

    it('know their migrations in order', () => {
      assert.equal(SCHEMA_VERSION, MIGRATION_NAMES.length);
      assert.deepEqual([...MIGRATION_NAMES].sort(), MIGRATION_NAMES);
    });
  });
}

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
