import { strict as assert } from 'node:assert';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { signCatalog, signManifest, verifyCatalog, type Catalog } from '@sysattest/core';
import { openStore } from '../store/index.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  apkChecksum,
  createTestDatabase,
  type TestDatabase,
  type TestPackage,
} from '../testkit/store.js';
import { startServer, type RunningServer } from '../testkit/server-process.js';

/**
 * Alpine catalogs through a real `sysattest-server serve` process, on SQLite and PostgreSQL: an
 * APKINDEX-based catalog (each entry with its `C:` checksum as apkChecksum, no archive SHA-256)
 * is stored, served back byte for byte, and drives lookups with apk's own version ordering.
 */

const ALPINE = 'alpine/3.20/x86_64';
const T1 = '2026-11-20T00:00:00Z';
const T2 = '2026-11-21T00:00:00Z';

/** Versions where code-unit order, dpkg order and apk order disagree about the newest. */
const PACKAGES: TestPackage[] = [
  { name: 'busybox', version: '1.36.1-r29' },
  { name: 'libcrypto3', version: '3.3.10-r0', source: 'openssl' },
  { name: 'musl', version: '1.2.5-r9' },
  { name: 'musl', version: '1.2.5-r10' },
  { name: 'openssl', version: '3.3.2-r0' },
  { name: 'openssl', version: '3.3.10_rc1-r0' },
  { name: 'openssl', version: '3.3.10-r0' },
];

interface LookupBody {
  platform: string;
  catalog?: { digest: string; platform: string };
  items: {
    name: string;
    version: string;
    status: string;
    newestVersion?: string;
    job?: { id: number; state: string };
    withdrawnAt?: string;
  }[];
}

for (const dialect of TEST_DIALECTS) {
  describe(`apk catalogs over HTTP, real server (${dialect})`, () => {
    let db: TestDatabase;
    let server: RunningServer;
    let gen: TestGenerator;
    let generatorToken: string;
    let adminToken: string;
    let secretDir: string | undefined;

    before(async () => {
      db = await createTestDatabase(dialect);
      gen = await TestGenerator.create('apk catalog generator');
      const store = await openStore(db.url);
      try {
        await store.addTrustedKey(gen.armoredPublicKey);
        generatorToken = (await store.createToken('generator', 'alpine worker')).secret;
        adminToken = (await store.createToken('admin', 'operator')).secret;
      } finally {
        await store.close();
      }
      // With PostgreSQL the default secret would be ./data/ in the working directory: keep it out of the tree.
      secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-apk-server-'));
      const secretFile = path.join(secretDir, 'dashboard-session.key');
      fs.writeFileSync(secretFile, randomBytes(32), { mode: 0o600 });
      server = await startServer(['--port', '0', '--database', db.url, '--rate-limit', 'off'], {
        SYSATTEST_SESSION_SECRET_FILE: secretFile,
      });
    });

    after(async () => {
      await server?.stop();
      await db?.drop();
      if (secretDir !== undefined) fs.rmSync(secretDir, { recursive: true, force: true });
    });

    const call = async (
      method: 'GET' | 'POST',
      path: string,
      body?: unknown,
      token?: string,
    ): Promise<{ status: number; json: unknown; text: string }> => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: text === '' ? undefined : (JSON.parse(text) as unknown), text };
    };

    const upload = async (generatedAt: string, packages: readonly TestPackage[]) => {
      const content: Catalog = (await gen.catalog(ALPINE, generatedAt, packages)).content;
      const signed = await signCatalog(content, gen.key);
      const payload = { catalog: Buffer.from(signed.bytes).toString('base64'), signature: signed.signature };
      return { signed, content, res: await call('POST', '/v1/catalogs', payload, generatorToken) };
    };

    const lookup = async (items: { name: string; version: string }[]): Promise<LookupBody> => {
      const res = await call('POST', '/v1/lookup', {
        platform: ALPINE,
        items: items.map((i) => ({ ...i, arch: 'x86_64' })),
      });
      assert.equal(res.status, 200, res.text);
      return res.json as LookupBody;
    };

    it('stores a signed apk catalog, serves it back byte for byte, and looks up with apk ordering', async () => {
      const { signed, content, res } = await upload(T1, PACKAGES);
      assert.equal(res.status, 201, res.text);
      const up = res.json as {
        snapshot: { digest: string; platform: string; packageCount: number };
        duplicate: boolean;
        latest: boolean;
        added: number;
        newestChanged: { name: string; to: string | null }[];
      };
      assert.equal(up.snapshot.platform, ALPINE);
      assert.deepEqual([up.duplicate, up.latest, up.added, up.snapshot.packageCount], [false, true, 7, 7]);
      assert.deepEqual(up.newestChanged.map((c) => `${c.name} ${c.to}`).sort(), [
        'busybox 1.36.1-r29',
        'libcrypto3 3.3.10-r0',
        'musl 1.2.5-r10',
        'openssl 3.3.10-r0',
      ]);
      // The entries really are APKINDEX-style: a C: checksum each, no archive SHA-256.
      assert.ok(content.packages.every((p) => p.sha256 === undefined && p.apkChecksum !== undefined));

      const again = await call(
        'POST',
        '/v1/catalogs',
        { catalog: Buffer.from(signed.bytes).toString('base64'), signature: signed.signature },
        generatorToken,
      );
      assert.equal(again.status, 200, again.text);
      assert.equal((again.json as { duplicate: boolean }).duplicate, true);

      // GET /v1/catalogs/{digest}: the exact signed bytes, which verify against the generator key.
      const served = await call('GET', `/v1/catalogs/${up.snapshot.digest}`);
      assert.equal(served.status, 200, served.text);
      const doc = served.json as { catalog: string; signature: string; platform: string; digest: string };
      assert.equal(doc.platform, ALPINE);
      assert.equal(doc.digest, up.snapshot.digest);
      const bytes = Buffer.from(doc.catalog, 'base64');
      assert.ok(bytes.equals(Buffer.from(signed.bytes)), 'the served snapshot is byte-identical');
      assert.equal(doc.signature, signed.signature);
      const verified = await verifyCatalog(bytes, doc.signature, gen.keyring);
      assert.equal(
        verified.content.packages.find((p) => p.name === 'musl' && p.version === '1.2.5-r9')?.apkChecksum,
        apkChecksum('musl', '1.2.5-r9', 'x86_64'),
      );

      const first = await lookup([
        { name: 'musl', version: '1.2.5-r9' },
        { name: 'openssl', version: '3.3.10_rc1-r0' },
        { name: 'busybox', version: '1.36.1-r30' },
        { name: 'nope', version: '1.0-r0' },
      ]);
      assert.equal(first.catalog?.digest, up.snapshot.digest);
      assert.deepEqual(
        first.items.map((i) => [i.name, i.status, i.newestVersion, i.job?.state]),
        [
          // apk: r10 > r9 (code units say r9), 3.3.10-r0 > 3.3.10_rc1-r0 (dpkg says the _rc1).
          ['musl', 'pending', '1.2.5-r10', 'pending'],
          ['openssl', 'pending', '3.3.10-r0', 'pending'],
          ['busybox', 'not-in-catalog', '1.36.1-r29', undefined],
          ['nope', 'not-in-catalog', undefined, undefined],
        ],
      );

      // Exactly the two catalog versions were queued, on the platform, for the client's request.
      const jobs = await call('GET', '/v1/jobs', undefined, adminToken);
      assert.equal(jobs.status, 200, jobs.text);
      const listed = (
        jobs.json as {
          jobs: { id: number; name: string; version: string; targetPlatform: string; reason: string }[];
        }
      ).jobs;
      assert.deepEqual(listed.map((j) => [j.name, j.version, j.targetPlatform, j.reason]).sort(), [
        ['musl', '1.2.5-r9', ALPINE, 'client-request'],
        ['openssl', '3.3.10_rc1-r0', ALPINE, 'client-request'],
      ]);
      // Asking again finds the same jobs: one per package version.
      const second = await lookup([
        { name: 'musl', version: '1.2.5-r9' },
        { name: 'openssl', version: '3.3.10_rc1-r0' },
      ]);
      assert.deepEqual(
        second.items.map((i) => i.job?.id),
        first.items.slice(0, 2).map((i) => i.job?.id),
      );

      // A manifest for one of them turns it ok.
      const manifest = await signManifest(
        gen.manifestContent(ALPINE, { name: 'musl', version: '1.2.5-r9', arch: 'x86_64' }),
        gen.key,
      );
      const stored = await call(
        'POST',
        '/v1/manifests',
        { manifest: Buffer.from(manifest.bytes).toString('base64'), signature: manifest.signature },
        generatorToken,
      );
      assert.equal(stored.status, 201, stored.text);
      const third = await lookup([{ name: 'musl', version: '1.2.5-r9' }]);
      assert.deepEqual(
        third.items.map((i) => [i.status, i.newestVersion]),
        [['ok', '1.2.5-r10']],
      );
    });

    it('a newer apk catalog withdraws what it no longer lists; lookups then say not-in-catalog', async () => {
      const { res } = await upload(
        T2,
        PACKAGES.filter((p) => !(p.name === 'openssl' && p.version === '3.3.2-r0')),
      );
      assert.equal(res.status, 201, res.text);
      assert.deepEqual(
        [(res.json as { withdrawn: number }).withdrawn, (res.json as { added: number }).added],
        [1, 0],
      );
      const answer = await lookup([
        { name: 'openssl', version: '3.3.2-r0' },
        { name: 'openssl', version: '3.3.10-r0' },
      ]);
      assert.deepEqual(
        answer.items.map((i) => [i.status, i.newestVersion, i.withdrawnAt]),
        [
          ['not-in-catalog', '3.3.10-r0', new Date(T2).toISOString()],
          ['pending', '3.3.10-r0', undefined],
        ],
      );
    });
  });
}
