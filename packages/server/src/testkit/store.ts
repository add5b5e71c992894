/**
 * Test support for the store (not part of its API): the dialects to run on, fresh databases that
 * are dropped afterwards, a clock tests can move, and a generator that makes real signed
 * manifests and catalogs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  generateSigningKey,
  signCatalog,
  signManifest,
  SigningKey,
  sortCatalogPackages,
  TrustedKeyring,
  verifyCatalog,
  verifyManifest,
  type Catalog,
  type CatalogPackage,
  type Manifest,
  type ManifestEntry,
  type VerifiedCatalog,
  type VerifiedManifest,
} from '@sysattest/core';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { createDatabase, parseStoreLocation, type DialectName } from '../store/connection.js';
import type { Database } from '../store/database.js';
import { openStore, type Store, type StoreOptions } from '../store/store.js';

/** SYSATTEST_TEST_DIALECTS=sqlite (or postgres, or both comma-separated) restricts the runs. */
export const TEST_DIALECTS: readonly DialectName[] = (() => {
  const raw = process.env.SYSATTEST_TEST_DIALECTS?.trim();
  if (!raw) return ['sqlite', 'postgres'];
  const names = raw.split(',').map((s) => s.trim());
  for (const n of names) {
    if (n !== 'sqlite' && n !== 'postgres') throw new Error(`SYSATTEST_TEST_DIALECTS: unknown dialect ${n}`);
  }
  return names as DialectName[];
})();

/** Where tests create (and drop) their PostgreSQL databases. */
export const POSTGRES_ADMIN_URL =
  process.env.SYSATTEST_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  dialect: DialectName;
  /** What to give openStore. */
  url: string;
  drop(): Promise<void>;
}

/** A new, empty database: an SQLite file in a temporary directory, or a PostgreSQL database. */
export async function createTestDatabase(dialect: DialectName): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-store-'));
    return {
      dialect,
      url: `sqlite:${path.join(dir, 'store.db')}`,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const name = `sysattest_test_${process.pid}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    dialect,
    url: url.toString(),
    drop: () => adminQuery(`drop database if exists ${name} with (force)`),
  };
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} (${(e as Error).message}). The store's tests run on ` +
        'SQLite and PostgreSQL: start PostgreSQL (pg_ctlcluster --skip-systemctl-redirect <version> main start), ' +
        'point SYSATTEST_TEST_POSTGRES_URL at one, or set SYSATTEST_TEST_DIALECTS=sqlite to test SQLite alone.',
      { cause: e },
    );
  }
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A clock that only moves when told. */
export class TestClock {
  #now: number;

  constructor(start = '2026-11-25T12:00:00.000Z') {
    this.#now = Date.parse(start);
  }

  now = (): Date => new Date(this.#now);

  advance(seconds: number): void {
    this.#now += seconds * 1000;
  }
}

export interface TestStore {
  store: Store;
  db: TestDatabase;
  clock: TestClock;
  /** A second, raw connection to the same database, for checking what is at rest. */
  raw(): Kysely<Database>;
  close(): Promise<void>;
}

/** A store over a fresh database, with a test clock; close() closes it and drops the database. */
export async function openTestStore(dialect: DialectName, options: StoreOptions = {}): Promise<TestStore> {
  const db = await createTestDatabase(dialect);
  const clock = new TestClock();
  const store = await openStore(db.url, { now: clock.now, ...options });
  const raws: Kysely<Database>[] = [];
  return {
    store,
    db,
    clock,
    raw: () => {
      const k = createDatabase(parseStoreLocation(db.url));
      raws.push(k);
      return k;
    },
    close: async () => {
      await store.close();
      for (const k of raws) await k.destroy();
      await db.drop();
    },
  };
}

/** Runs `test` against a store over a fresh database, closed and dropped afterwards. */
export async function withStore(
  dialect: DialectName,
  test: (t: TestStore) => Promise<void>,
  options: StoreOptions = {},
): Promise<void> {
  const t = await openTestStore(dialect, options);
  try {
    await test(t);
  } finally {
    await t.close();
  }
}

export async function countRows(db: Kysely<Database>, table: keyof Database): Promise<number> {
  const r = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The APKINDEX `C:` value a test apk entry gets: `Q1` + base64 SHA-1 (of a stand-in control segment). */
export function apkChecksum(name: string, version: string, arch: string): string {
  return `Q1${createHash('sha1').update(`${name}-${version}.${arch} control`).digest('base64')}`;
}

export interface TestPackage {
  name: string;
  version: string;
  arch?: string;
  source?: string;
}

export interface TestFile {
  path: string;
  /** The file's content, hashed for the manifest (default: derived from path and package). */
  content?: string;
  mode?: string;
}

/** A generator key that signs real manifests and catalogs, and the keyring that verifies them. */
export class TestGenerator {
  private constructor(
    readonly key: SigningKey,
    readonly keyring: TrustedKeyring,
    readonly armoredPublicKey: string,
    readonly armoredSecretKey: string,
  ) {}

  /** The same generator in another process (see store-worker.ts). */
  static async fromArmored(secretKey: string, publicKey: string): Promise<TestGenerator> {
    return new TestGenerator(
      await SigningKey.fromArmored(secretKey),
      await TrustedKeyring.fromArmored(publicKey),
      publicKey,
      secretKey,
    );
  }

  static async create(name = 'sysattest store tests'): Promise<TestGenerator> {
    const generated = await generateSigningKey({ name });
    return new TestGenerator(
      await SigningKey.fromArmored(generated.armoredSecretKey),
      await TrustedKeyring.fromArmored(generated.armoredPublicKey),
      generated.armoredPublicKey,
      generated.armoredSecretKey,
    );
  }

  /**
   * A Debian-like manifest: /usr, /usr/bin, the package's doc directory, its files (default: a
   * binary, a copyright file and a changelog), and a symlink. `files` replaces the default files.
   */
  manifestContent(
    platform: string,
    pkg: TestPackage,
    files?: readonly TestFile[],
    generatedAt?: string,
  ): Manifest {
    const arch = pkg.arch ?? platform.split('/')[2] ?? 'amd64';
    const doc = `/usr/share/doc/${pkg.name}`;
    const given = files ?? [
      {
        path: `/usr/bin/${pkg.name}`,
        content: `${pkg.name} ${pkg.version} ${arch} executable`,
        mode: '0755',
      },
      { path: `${doc}/changelog.Debian.gz`, content: `${pkg.name} ${pkg.version} changelog` },
      { path: `${doc}/copyright`, content: `${pkg.name} copyright (unchanged between versions)` },
    ];
    const entries: ManifestEntry[] = [
      { type: 'dir', path: '/usr', mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      { type: 'dir', path: '/usr/bin', mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      { type: 'dir', path: '/usr/share', mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      { type: 'dir', path: '/usr/share/doc', mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      { type: 'dir', path: doc, mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      {
        type: 'symlink',
        path: `/usr/bin/${pkg.name}.alias`,
        mode: '0777',
        uid: 0,
        gid: 0,
        target: pkg.name,
      },
    ];
    for (const f of given) {
      const content = f.content ?? `${f.path} of ${pkg.name} ${pkg.version}`;
      entries.push({
        type: 'file',
        path: f.path,
        mode: f.mode ?? '0644',
        uid: 0,
        gid: 0,
        user: 'root',
        group: 'root',
        size: Buffer.byteLength(content),
        sha256: sha256(content),
        distroDigest: { algorithm: 'md5', hex: createHash('md5').update(content).digest('hex') },
      });
    }
    const sorted = [...new Map(entries.map((e) => [e.path, e])).values()].sort((a, b) =>
      a.path < b.path ? -1 : a.path > b.path ? 1 : 0,
    );
    return {
      schema: 'sysattest.manifest',
      schemaVersion: 1,
      platform,
      package: {
        name: pkg.name,
        version: pkg.version,
        architecture: arch,
        source: { name: pkg.source ?? pkg.name, version: pkg.version },
      },
      provenance: {
        generatedAt: generatedAt ?? '2026-11-25T12:00:00Z',
        generator: { name: 'sysattest-generator', version: '0.1.0' },
        keyFingerprint: this.key.fingerprint,
        image: { id: `sha256:${sha256(platform)}` },
        installer: 'apt 2.6.1',
        archiveSha256: sha256(`${pkg.name}_${pkg.version}_${arch}.deb`),
      },
      entries: sorted,
    };
  }

  /** Signs, then verifies against the generator's keyring: what the server would ingest. */
  async manifest(
    platform: string,
    pkg: TestPackage,
    files?: readonly TestFile[],
    generatedAt?: string,
  ): Promise<VerifiedManifest> {
    return this.verifyManifest(this.manifestContent(platform, pkg, files, generatedAt));
  }

  async verifyManifest(content: Manifest): Promise<VerifiedManifest> {
    const signed = await signManifest(content, this.key);
    return verifyManifest(signed.bytes, signed.signature, this.keyring);
  }

  /**
   * A catalog snapshot listing `packages` (architecture default: the platform's). An `alpine/…`
   * platform's entries are as an APKINDEX gives them: `apkChecksum` (`Q1` + base64 SHA-1), no
   * archive SHA-256, no file name.
   */
  async catalog(
    platform: string,
    generatedAt: string,
    packages: readonly TestPackage[],
  ): Promise<VerifiedCatalog> {
    const arch = platform.split('/')[2] ?? 'amd64';
    const apk = platform.startsWith('alpine/');
    const list: CatalogPackage[] = packages.map((p) => {
      const a = p.arch ?? arch;
      if (apk) {
        return {
          name: p.name,
          version: p.version,
          architecture: a,
          source: { name: p.source ?? p.name, version: p.version },
          size: 1000 + p.name.length,
          apkChecksum: apkChecksum(p.name, p.version, a),
        };
      }
      return {
        name: p.name,
        version: p.version,
        architecture: a,
        source: { name: p.source ?? p.name, version: p.version },
        size: 1000 + p.name.length,
        sha256: sha256(`${p.name}_${p.version}_${a}.deb`),
        filename: `pool/main/${p.name[0]}/${p.name}/${p.name}_${p.version.replace(/^\d+:/, '')}_${a}.deb`,
      };
    });
    const content: Catalog = {
      schema: 'sysattest.catalog',
      schemaVersion: 1,
      platform,
      generatedAt,
      provenance: {
        generator: { name: 'sysattest-generator', version: '0.1.0' },
        keyFingerprint: this.key.fingerprint,
        image: { id: `sha256:${sha256(platform)}` },
        sources: [
          apk
            ? { name: `APKINDEX.tar.gz v${platform.split('/')[1]} main`, date: generatedAt }
            : { name: `Debian ${platform.split('/')[1]}/main ${arch}`, date: generatedAt },
        ],
      },
      packages: sortCatalogPackages(list),
    };
    const signed = await signCatalog(content, this.key);
    return verifyCatalog(signed.bytes, signed.signature, this.keyring);
  }
}

/**
 * Makes a statement on `table` fail inside the database (a trigger), to prove that a write that
 * fails half-way leaves nothing behind. Returns the function that removes the trigger.
 */
export async function injectFailure(
  raw: Kysely<Database>,
  dialect: DialectName,
  table: keyof Database,
): Promise<() => Promise<void>> {
  const name = `inject_failure_${table}`;
  if (dialect === 'sqlite') {
    await sql
      .raw(
        `create trigger ${name} before insert on ${table} begin select raise(abort, 'injected failure'); end`,
      )
      .execute(raw);
    return async () => {
      await sql.raw(`drop trigger ${name}`).execute(raw);
    };
  }
  await sql
    .raw(
      `create or replace function ${name}() returns trigger language plpgsql as $$ begin raise exception 'injected failure'; end $$`,
    )
    .execute(raw);
  await sql
    .raw(`create trigger ${name} before insert on ${table} for each statement execute function ${name}()`)
    .execute(raw);
  return async () => {
    await sql.raw(`drop trigger ${name} on ${table}`).execute(raw);
  };
}

/** Runs a compiled script of this folder in a child process (a second "server process"). */
export function runNode(
  script: string,
  args: readonly string[],
  env: Record<string, string> = {},
): {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}
