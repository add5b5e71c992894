import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  signCatalog,
  signManifest,
  sortCatalogPackages,
  type Catalog,
  type Manifest,
  type SignedDocument,
} from '@sysattest/core';
import {
  ServerProcess,
  postgresDatabase,
  serverCli,
  tempDir,
  testKey,
  waitUntil,
  type TestKey,
} from '../testkit/worker-service.js';

/**
 * A server killed with SIGKILL in the middle of an upload leaves no partial catalog or manifest:
 * each upload is one database transaction. The kill is timed from the database's side: on
 * PostgreSQL, when the server's session has an open transaction that has already written rows
 * (pg_stat_activity.backend_xid is set); on SQLite, when the write-ahead log has grown by
 * megabytes (pages of the uncommitted transaction spilling). The documents are large (100,000
 * catalog entries, 60,000 manifest entries) so that the transaction lasts long enough to be hit.
 */

const run = promisify(execFile);
const PLATFORM = 'debian/crashtest/amd64';
const CATALOG_PACKAGES = 100_000;
const MANIFEST_ENTRIES = 60_000;

function hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

async function bigCatalog(key: SigningKey): Promise<SignedDocument> {
  const packages = Array.from({ length: CATALOG_PACKAGES }, (_, i) => ({
    name: `pkg-${i.toString().padStart(6, '0')}`,
    version: '1.0-1',
    architecture: 'amd64',
    source: { name: `src-${i}`, version: '1.0-1' },
    size: 1000 + i,
    sha256: hex(`deb ${i}`),
  }));
  const catalog: Catalog = {
    schema: 'sysattest.catalog',
    schemaVersion: 1,
    platform: PLATFORM,
    generatedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    provenance: {
      generator: { name: 'crash test', version: '1' },
      keyFingerprint: key.fingerprint,
      image: { id: 'none' },
      sources: [{ name: 'synthetic' }],
    },
    packages: sortCatalogPackages(packages),
  };
  return signCatalog(catalog, key);
}

async function bigManifest(key: SigningKey): Promise<SignedDocument> {
  const entries: Manifest['entries'] = Array.from({ length: MANIFEST_ENTRIES }, (_, i) => ({
    type: 'file' as const,
    path: `/usr/share/crashtest/f${i.toString().padStart(6, '0')}`,
    mode: '0644',
    uid: 0,
    gid: 0,
    size: i,
    sha256: hex(`file ${i}`),
  }));
  const manifest: Manifest = {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: PLATFORM,
    package: {
      name: 'pkg-000001',
      version: '1.0-1',
      architecture: 'amd64',
      source: { name: 'src-1', version: '1.0-1' },
    },
    provenance: {
      generatedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      generator: { name: 'crash test', version: '1' },
      keyFingerprint: key.fingerprint,
      image: { id: 'none' },
      installer: 'none',
    },
    entries,
  };
  return signManifest(manifest, key);
}

function body(field: 'catalog' | 'manifest', doc: SignedDocument): string {
  return JSON.stringify({ [field]: Buffer.from(doc.bytes).toString('base64'), signature: doc.signature });
}

/** POSTs an upload with the generator token; resolves to the status, or to 'failed' when the connection dies. */
async function upload(
  server: string,
  token: string,
  route: string,
  payload: string,
): Promise<number | 'failed'> {
  try {
    const r = await fetch(`${server}${route}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: payload,
    });
    await r.text();
    return r.status;
  } catch {
    return 'failed';
  }
}

async function lookupStatus(server: string): Promise<{ status: string; packageCount?: number }> {
  const r = await fetch(`${server}/v1/lookup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      platform: PLATFORM,
      items: [{ name: 'pkg-000001', version: '1.0-1', arch: 'amd64' }],
    }),
  });
  const j = (await r.json()) as { catalog?: { packageCount: number }; items: { status: string }[] };
  return { status: j.items[0]?.status ?? 'none', packageCount: j.catalog?.packageCount };
}

async function reverseHits(server: string, sha256: string): Promise<number> {
  const r = await fetch(`${server}/v1/reverse-lookup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sha256: [sha256] }),
  });
  const j = (await r.json()) as { results: unknown };
  return JSON.stringify(j.results).split('pkg-000001').length - 1;
}

describe('a server killed mid-upload leaves nothing partial', { timeout: 15 * 60_000 }, () => {
  let dir: string;
  let key: TestKey;
  let signing: SigningKey;
  let catalog: SignedDocument;
  let manifest: SignedDocument;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    dir = tempDir('service-crash');
    key = await testKey(dir);
    signing = await SigningKey.fromArmored(fs.readFileSync(key.secretFile, 'utf8'));
    catalog = await bigCatalog(signing);
    manifest = await bigManifest(signing);
  });

  after(async () => {
    for (const c of cleanups.reverse()) await c();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('PostgreSQL: killed with the upload transaction open, nothing of it is stored', async () => {
    const db = postgresDatabase();
    cleanups.push(() => db.drop());
    const token = serverCli([
      'token',
      'create',
      '--role',
      'generator',
      '--name',
      'crash',
      '--database',
      db.url,
    ]);
    const server = await new ServerProcess(db.url, key.publicFile).start(0);
    cleanups.push(() => server.kill('SIGKILL'));
    const writing = async (): Promise<true | undefined> => {
      const { stdout } = await run('psql', [
        ...['-h', '127.0.0.1', '-U', 'postgres', '-d', db.name, '-At', '-c'],
        'select count(*) from pg_stat_activity where datname = current_database() and backend_xid is not null and pid <> pg_backend_pid()',
      ]);
      return stdout.trim() !== '0' ? true : undefined;
    };

    for (const [route, field, doc] of [
      ['/v1/catalogs', 'catalog', catalog],
      ['/v1/manifests', 'manifest', manifest],
    ] as const) {
      const pending = upload(server.url, token, route, body(field, doc));
      await waitUntil(`an open write transaction for ${route}`, writing, 120_000, 20);
      await server.kill('SIGKILL');
      assert.equal(await pending, 'failed', `${route}: the upload never got an answer`);
      // PostgreSQL rolled the transaction back when the connection died.
      await waitUntil(
        'the dead session to go',
        async () => ((await writing()) ? undefined : true),
        30_000,
        100,
      );
      await server.start(server.port);
      if (field === 'catalog') {
        assert.equal(db.psql('select count(*) from catalog_snapshots'), '0', 'no snapshot');
        assert.equal(db.psql('select count(*) from catalog_packages'), '0', 'no package row');
        assert.equal(db.psql('select count(*) from catalog_entries'), '0', 'no entry row');
        assert.deepEqual(await lookupStatus(server.url), {
          status: 'unknown-platform',
          packageCount: undefined,
        });
      } else {
        assert.equal(db.psql('select count(*) from manifests'), '0', 'no manifest row');
        assert.equal(db.psql('select count(*) from manifest_files'), '0', 'no file row');
        assert.equal(await reverseHits(server.url, hex('file 7')), 0);
      }
      // The same upload again is whole.
      assert.equal(await upload(server.url, token, route, body(field, doc)), 201);
    }
    assert.deepEqual(await lookupStatus(server.url), { status: 'ok', packageCount: CATALOG_PACKAGES });
    assert.equal(db.psql('select count(*) from catalog_entries'), String(CATALOG_PACKAGES));
    assert.equal(db.psql('select count(*) from manifest_files'), String(MANIFEST_ENTRIES));
    assert.equal(await reverseHits(server.url, hex('file 7')), 1);
  });

  it('SQLite: killed while the write-ahead log fills with the upload, nothing of it is stored', async () => {
    for (const [route, field, doc] of [
      ['/v1/catalogs', 'catalog', catalog],
      ['/v1/manifests', 'manifest', manifest],
    ] as const) {
      // A fresh database per upload, so that the write-ahead log starts empty.
      const database = path.join(dir, `crash-${field}.sqlite`);
      const token = serverCli([
        'token',
        'create',
        '--role',
        'generator',
        '--name',
        'crash',
        '--database',
        database,
      ]);
      const server = await new ServerProcess(database, key.publicFile).start(0);
      cleanups.push(() => server.kill('SIGKILL'));
      const wal = `${database}-wal`;
      const walSize = () => (fs.existsSync(wal) ? fs.statSync(wal).size : 0);
      const start = walSize();
      const pending = upload(server.url, token, route, body(field, doc));
      await waitUntil(
        `the WAL to grow during ${route}`,
        () => (walSize() > start + 2 * 1024 * 1024 ? true : undefined),
        120_000,
        5,
      );
      await server.kill('SIGKILL');
      assert.equal(await pending, 'failed', `${route}: the upload never got an answer`);
      await server.start(server.port);
      if (field === 'catalog') {
        assert.deepEqual(await lookupStatus(server.url), {
          status: 'unknown-platform',
          packageCount: undefined,
        });
      } else {
        assert.equal(await reverseHits(server.url, hex('file 7')), 0, 'no file of the manifest is indexed');
      }
      assert.equal(await upload(server.url, token, route, body(field, doc)), 201);
      if (field === 'catalog') {
        assert.deepEqual(await lookupStatus(server.url), {
          status: 'pending',
          packageCount: CATALOG_PACKAGES,
        });
      } else {
        assert.equal(await reverseHits(server.url, hex('file 7')), 1);
      }
      await server.kill('SIGTERM');
    }
  });
});
