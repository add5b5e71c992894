import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { verifyManifest } from '@sysattest/core';
import { isStoreError } from './store-error.js';
import {
  TEST_DIALECTS,
  TestGenerator,
  countRows,
  injectFailure,
  sha256,
  withStore,
} from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';

for (const dialect of TEST_DIALECTS) {
  describe(`manifests (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });

    it('store the exact signed bytes; the same bytes again are a duplicate', () =>
      withStore(dialect, async ({ store }) => {
        const m = await gen.manifest(AMD64, { name: 'jq', version: '1.6-2.1' });
        assert.equal(await store.ingestManifest(m), 'stored');
        assert.equal(await store.ingestManifest(m), 'duplicate');
        const stored = await store.getManifest({
          platform: AMD64,
          name: 'jq',
          version: '1.6-2.1',
          arch: 'amd64',
        });
        assert.ok(stored);
        assert.deepEqual(stored.bytes, Buffer.from(m.bytes));
        assert.equal(stored.signature, m.signature);
        assert.equal(stored.digest, m.digest);
        assert.equal(stored.signerFingerprint, gen.key.fingerprint);
        assert.deepEqual([stored.entryCount, stored.fileCount], [m.content.entries.length, 3]);
        // What comes out verifies as it went in: the store is only a relay for signatures.
        const again = await verifyManifest(stored.bytes, stored.signature, gen.keyring);
        assert.deepEqual(again.content, m.content);
        assert.equal((await store.getManifest({ digest: m.digest }))?.id, stored.id);
        assert.deepEqual(
          (await store.listManifests(AMD64, 'jq')).map((x) => x.version),
          ['1.6-2.1'],
        );
      }));

    it('refuse different bytes for a stored version (CONFLICT), record them, and keep the original', () =>
      withStore(dialect, async ({ store, raw }) => {
        const original = await gen.manifest(AMD64, { name: 'bash', version: '5.2.15-2+b2' });
        const other = await gen.manifest(
          AMD64,
          { name: 'bash', version: '5.2.15-2+b2' },
          [{ path: '/usr/bin/bash', content: 'a different build' }],
          '2026-11-26T08:00:00Z',
        );
        assert.equal(await store.ingestManifest(original), 'stored');
        for (let i = 0; i < 2; i++) {
          await assert.rejects(store.ingestManifest(other), (e: unknown) => {
            return (
              isStoreError(e, 'CONFLICT') &&
              e.message.includes(other.digest) &&
              e.message.includes(original.digest)
            );
          });
        }
        const kept = await store.getManifest({
          platform: AMD64,
          name: 'bash',
          version: '5.2.15-2+b2',
          arch: 'amd64',
        });
        assert.deepEqual(kept?.bytes, Buffer.from(original.bytes), 'the stored manifest is untouched');
        const conflicts = await store.listConflicts();
        assert.equal(conflicts.length, 1);
        assert.deepEqual(
          [conflicts[0]?.name, conflicts[0]?.digest, conflicts[0]?.storedDigest, conflicts[0]?.attempts],
          ['bash', other.digest, original.digest, 2],
        );
        const refused = await store.getConflictDocument(conflicts[0]?.id as number);
        assert.deepEqual(
          refused?.bytes,
          Buffer.from(other.bytes),
          'the refused bytes are kept for the operator',
        );
        assert.equal(await countRows(raw(), 'manifests'), 1);
        assert.equal((await store.stats()).conflicts, 1);
      }));

    it('store one of many concurrent uploads of the same manifest', () =>
      withStore(dialect, async ({ store, raw }) => {
        const m = await gen.manifest(AMD64, { name: 'coreutils', version: '9.1-1' });
        const outcomes = await Promise.all(Array.from({ length: 10 }, () => store.ingestManifest(m)));
        assert.deepEqual(outcomes.sort(), [
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'duplicate',
          'stored',
        ]);
        assert.equal(await countRows(raw(), 'manifest_files'), 3);
      }));

    it('find a sha256 in every package version that ships it, storing each content and path once', () =>
      withStore(dialect, async ({ store, raw }) => {
        const copyright = 'zlib copyright (unchanged between versions)';
        const files = (version: string) => [
          { path: '/usr/lib/x86_64-linux-gnu/libz.so.1.2.13', content: `libz ${version}` },
          { path: '/usr/share/doc/zlib1g/changelog.Debian.gz', content: `changelog ${version}` },
          { path: '/usr/share/doc/zlib1g/copyright', content: copyright },
        ];
        await store.ingestManifest(
          await gen.manifest(AMD64, { name: 'zlib1g', version: '1:1.2.13.dfsg-1' }, files('1')),
        );
        await store.ingestManifest(
          await gen.manifest(AMD64, { name: 'zlib1g', version: '1:1.2.13.dfsg-1+b1' }, files('2')),
        );
        // Another package ships the same content under another path.
        await store.ingestManifest(
          await gen.manifest('debian/bookworm/arm64', { name: 'zlib1g', version: '1:1.2.13.dfsg-1' }, [
            { path: '/usr/share/doc/zlib1g/copyright', content: copyright },
            { path: '/usr/share/doc/zlib1g/COPYING', content: copyright },
          ]),
        );
        const [hit, miss] = await store.reverseLookup([sha256(copyright), sha256('nothing ships this')]);
        assert.deepEqual(
          hit?.hits.map((h) => [h.platform, h.version, h.path]).sort(),
          [
            ['debian/bookworm/amd64', '1:1.2.13.dfsg-1', '/usr/share/doc/zlib1g/copyright'],
            ['debian/bookworm/amd64', '1:1.2.13.dfsg-1+b1', '/usr/share/doc/zlib1g/copyright'],
            ['debian/bookworm/arm64', '1:1.2.13.dfsg-1', '/usr/share/doc/zlib1g/COPYING'],
            ['debian/bookworm/arm64', '1:1.2.13.dfsg-1', '/usr/share/doc/zlib1g/copyright'],
          ].sort(),
        );
        assert.deepEqual(miss, { sha256: sha256('nothing ships this'), hits: [] });

        const db = raw();
        // 3 + 3 + 2 files; distinct contents: 2 libs, 2 changelogs, 1 copyright; distinct paths: 4.
        assert.equal(await countRows(db, 'manifest_files'), 8);
        assert.equal(await countRows(db, 'contents'), 5);
        assert.equal(await countRows(db, 'paths'), 4);

        const capped = await store.reverseLookup([sha256(copyright)], { maxHitsPerHash: 2 });
        assert.deepEqual([capped[0]?.hits.length, capped[0]?.truncated], [2, true]);
        // Results follow the input order, duplicates included.
        const twice = await store.reverseLookup([sha256(copyright), sha256('x'), sha256(copyright)]);
        assert.deepEqual(
          twice.map((r) => r.hits.length),
          [4, 0, 4],
        );
      }));

    it('refuse malformed hashes for a reverse lookup', () =>
      withStore(dialect, async ({ store }) => {
        for (const bad of ['abc', 'A'.repeat(64), `${'a'.repeat(63)}g`, 42]) {
          await assert.rejects(store.reverseLookup([bad as string]), (e: unknown) =>
            isStoreError(e, 'INVALID'),
          );
        }
        await assert.rejects(store.reverseLookup('a' as unknown as string[]), (e: unknown) =>
          isStoreError(e, 'INVALID'),
        );
      }));

    it('leave nothing behind when an ingest fails half-way', () =>
      withStore(dialect, async ({ store, raw, db }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, '2026-11-20T00:00:00Z', [{ name: 'sed', version: '4.9-1' }]),
        );
        await store.lookup(AMD64, [{ name: 'sed', version: '4.9-1', arch: 'amd64' }]);
        const restore = await injectFailure(raw(), db.dialect, 'manifest_files');
        const m = await gen.manifest(AMD64, { name: 'sed', version: '4.9-1' });
        await assert.rejects(store.ingestManifest(m), /injected failure/);
        await restore();
        const r = raw();
        for (const table of ['manifests', 'paths', 'contents', 'manifest_files'] as const) {
          assert.equal(await countRows(r, table), 0, `${table} is empty`);
        }
        assert.equal((await store.listJobs())[0]?.state, 'pending', 'the job was not completed');
        // And the same upload succeeds afterwards.
        assert.equal(await store.ingestManifest(m), 'stored');
        assert.equal((await store.listJobs())[0]?.state, 'done');
      }));

    it('index hard links and files, not directories or symlinks', () =>
      withStore(dialect, async ({ store, raw }) => {
        const content = gen.manifestContent(AMD64, { name: 'iputils-ping', version: '3:20221126-1' }, [
          { path: '/bin/ping', content: 'ping binary', mode: '0755' },
        ]);
        const ping = content.entries.find((e) => e.path === '/bin/ping');
        assert.ok(ping?.type === 'file');
        content.entries.push({ ...ping, type: 'hardlink', path: '/usr/bin/tracepath', linkTo: '/bin/ping' });
        content.entries.sort((a, b) => (a.path < b.path ? -1 : 1));
        const m = await gen.verifyManifest(content);
        await store.ingestManifest(m);
        assert.equal(await countRows(raw(), 'manifest_files'), 2);
        assert.equal(await countRows(raw(), 'contents'), 1);
        const [hit] = await store.reverseLookup([sha256('ping binary')]);
        assert.deepEqual(hit?.hits.map((h) => h.path).sort(), ['/bin/ping', '/usr/bin/tracepath']);
      }));
  });
}
