import { strict as assert } from 'node:assert';
import { before, describe, it } from 'node:test';
import { verifyManifest, type VerifiedManifest } from '@sysattest/core';
import type { LookupItem, LookupItemResult } from './lookup.js';
import { isStoreError } from './store-error.js';
import { TEST_DIALECTS, TestGenerator, countRows, withStore } from '../testkit/store.js';

const AMD64 = 'debian/bookworm/amd64';
const ARM64 = 'debian/bookworm/arm64';
const T1 = '2026-11-20T00:00:00Z';
const T2 = '2026-11-21T00:00:00Z';

const statusOf = (r: LookupItemResult): string => `${r.name} ${r.version} ${r.arch}: ${r.status}`;

for (const dialect of TEST_DIALECTS) {
  describe(`lookup (${dialect})`, () => {
    let gen: TestGenerator;
    before(async () => {
      gen = await TestGenerator.create();
    });

    it('answer ok, pending, not-in-catalog and unknown-platform in one call', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [
            { name: 'bash', version: '5.2.15-2' },
            { name: 'base-files', version: '12.4', arch: 'all' },
          ]),
        );
        await store.ingestCatalog(
          await gen.catalog(AMD64, T2, [
            { name: 'bash', version: '5.2.15-2+b2' },
            { name: 'base-files', version: '12.4+deb12u1', arch: 'all' },
            { name: 'jq', version: '1.6-2.1' },
          ]),
        );
        const jq = await gen.manifest(AMD64, { name: 'jq', version: '1.6-2.1' });
        await store.ingestManifest(jq);

        const items: LookupItem[] = [
          { name: 'jq', version: '1.6-2.1', arch: 'amd64' },
          { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
          { name: 'base-files', version: '12.4+deb12u1', arch: 'all' },
          { name: 'bash', version: '5.2.15-2', arch: 'amd64' },
          { name: 'not-a-debian-package', version: '1.0', arch: 'amd64' },
          { name: 'libc6', version: '2.36-9+deb12u4', arch: 'i386' },
        ];
        const result = await store.lookup(AMD64, items);
        assert.deepEqual(result.items.map(statusOf), [
          'jq 1.6-2.1 amd64: ok',
          'bash 5.2.15-2+b2 amd64: pending',
          'base-files 12.4+deb12u1 all: pending',
          'bash 5.2.15-2 amd64: not-in-catalog',
          'not-a-debian-package 1.0 amd64: not-in-catalog',
          'libc6 2.36-9+deb12u4 i386: unknown-platform',
        ]);
        const [ok, pending, all, withdrawn, unknown] = result.items;
        // The client gets the exact signed bytes and checks them itself.
        assert.ok(ok?.status === 'ok' && ok.manifest.bytes && ok.manifest.signature);
        const verified = await verifyManifest(ok.manifest.bytes, ok.manifest.signature, gen.keyring);
        assert.equal(verified.digest, jq.digest);
        assert.equal(ok.newestVersion, '1.6-2.1');
        assert.ok(pending?.status === 'pending' && 'job' in pending);
        assert.equal(pending.job.state, 'pending');
        assert.equal(pending.newestVersion, '5.2.15-2+b2');
        assert.equal(all?.newestVersion, '12.4+deb12u1');
        assert.ok(withdrawn?.status === 'not-in-catalog');
        assert.equal(withdrawn.withdrawnAt, new Date(T2).toISOString());
        assert.equal(withdrawn.newestVersion, '5.2.15-2+b2', 'an outdated version learns the newest');
        assert.equal(unknown?.newestVersion, undefined);
        assert.equal(result.catalog?.generatedAt, new Date(T2).toISOString());
        assert.equal(result.catalog?.digest, (await store.latestCatalog(AMD64))?.digest);

        // Jobs: one per pending item; none for what the catalog does not offer.
        const jobs = await store.listJobs();
        assert.deepEqual(
          jobs.map((j) => [j.platform, j.targetPlatform, j.name, j.version, j.reason]),
          [
            [AMD64, AMD64, 'bash', '5.2.15-2+b2', 'client-request'],
            [AMD64, 'debian/bookworm/all', 'base-files', '12.4+deb12u1', 'client-request'],
          ],
        );
        // Packages the catalog knows are now tracked; the unknown one is not.
        assert.deepEqual(
          (await store.listTrackedPackages(AMD64)).map((p) => [p.name, p.source]),
          [
            ['base-files', 'client-request'],
            ['bash', 'client-request'],
            ['jq', 'client-request'],
          ],
        );

        // Digests only, when asked.
        const light = await store.lookup(AMD64, items.slice(0, 1), { includeDocuments: false });
        assert.deepEqual(light.items[0], {
          name: 'jq',
          version: '1.6-2.1',
          arch: 'amd64',
          newestVersion: '1.6-2.1',
          status: 'ok',
          manifest: { digest: jq.digest },
        });
      }));

    it('queue a job once when 20 clients ask for the same missing package at the same time', () =>
      withStore(dialect, async ({ store, raw }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [{ name: 'openssh-server', version: '1:9.2p1-2+deb12u3' }]),
        );
        const item = { name: 'openssh-server', version: '1:9.2p1-2+deb12u3', arch: 'amd64' };
        const results = await Promise.all(Array.from({ length: 20 }, () => store.lookup(AMD64, [item])));
        const jobIds = new Set(
          results.map((r) => (r.items[0] !== undefined && 'job' in r.items[0] ? r.items[0].job.id : -1)),
        );
        assert.equal(jobIds.size, 1);
        assert.ok(!jobIds.has(-1));
        assert.equal(await countRows(raw(), 'jobs'), 1);
        assert.equal(await countRows(raw(), 'tracked_packages'), 1);
        // Once the manifest arrives, the answer is ok and the job is done.
        assert.equal(await store.ingestManifest(await gen.manifest(AMD64, item)), 'stored');
        assert.equal((await store.lookup(AMD64, [item])).items[0]?.status, 'ok');
        assert.equal((await store.listJobs())[0]?.state, 'done');
      }));

    it('share one job and one manifest for an architecture-independent package between architectures', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [{ name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' }]),
        );
        await store.ingestCatalog(
          await gen.catalog(ARM64, T1, [{ name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' }]),
        );
        const item = { name: 'tzdata', version: '2024a-0+deb12u1', arch: 'all' };
        const a = await store.lookup(AMD64, [item]);
        const b = await store.lookup(ARM64, [item]);
        const [jobA, jobB] = [a.items[0], b.items[0]];
        assert.ok(jobA !== undefined && 'job' in jobA && jobB !== undefined && 'job' in jobB);
        assert.equal(jobA.job.id, jobB.job.id);
        // An arm64 worker may take it (the job was queued by an amd64 client).
        const [job] = await store.claimJobs('arm-worker', [ARM64], 5, 60);
        assert.ok(job);
        assert.equal(job.targetPlatform, 'debian/bookworm/all');
        await store.ingestManifest(await gen.manifest('debian/bookworm/all', item));
        assert.equal((await store.completeJob(job.id, 'arm-worker')).state, 'done');
        for (const platform of [AMD64, ARM64]) {
          assert.equal((await store.lookup(platform, [item])).items[0]?.status, 'ok');
        }
      }));

    it('answer a machine of thousands of packages (statements are batched)', () =>
      withStore(dialect, async ({ store }) => {
        const packages = Array.from({ length: 6000 }, (_, i) => ({ name: `pkg${i}`, version: `1.${i}-1` }));
        await store.ingestCatalog(await gen.catalog(AMD64, T1, packages));
        for (const p of packages.slice(0, 30)) await store.ingestManifest(await gen.manifest(AMD64, p));
        const items = [
          ...packages.map((p) => ({ ...p, arch: 'amd64' })),
          ...packages.slice(0, 3000).map((p) => ({ name: p.name, version: '0.1-1', arch: 'amd64' })),
        ];
        const result = await store.lookup(AMD64, items, { track: false });
        const counts: Record<string, number> = {};
        for (const r of result.items) counts[r.status] = (counts[r.status] ?? 0) + 1;
        assert.deepEqual(counts, { ok: 30, pending: 5970, 'not-in-catalog': 3000 });
        assert.equal((await store.listJobs({ limit: 10_000 })).length, 5970);
        assert.equal(result.items[7000]?.newestVersion, packages[1000]?.version);
        assert.deepEqual(await store.listTrackedPackages(AMD64), [], 'track: false tracks nothing');
      }));

    it('refuse malformed requests (INVALID) without writing anything', () =>
      withStore(dialect, async ({ store, raw }) => {
        const bad: [string, unknown][] = [
          ['not/a platform', []],
          ['debian/bookworm', []],
          [AMD64, 'bash'],
          [AMD64, [{ name: 'bash', version: '1' }]],
          [AMD64, [{ name: '', version: '1', arch: 'amd64' }]],
          [AMD64, [{ name: 'x'.repeat(257), version: '1', arch: 'amd64' }]],
          [AMD64, [null]],
          [AMD64, Array.from({ length: 100_001 }, () => ({ name: 'a', version: '1', arch: 'amd64' }))],
        ];
        for (const [platform, items] of bad) {
          await assert.rejects(store.lookup(platform, items as LookupItem[]), (e: unknown) =>
            isStoreError(e, 'INVALID'),
          );
        }
        assert.equal(await countRows(raw(), 'platforms'), 0);
        // Hostile strings are just strings.
        const r = await store.lookup(AMD64, [
          { name: "x'); drop table manifests; --", version: '1', arch: "amd64' or '1'='1" },
        ]);
        assert.equal(r.items[0]?.status, 'unknown-platform');
        assert.equal(await countRows(raw(), 'manifests'), 0);
      }));

    it('refuse a package version asked twice, naming it, without writing anything', () =>
      withStore(dialect, async ({ store, raw }) => {
        await store.ingestCatalog(await gen.catalog(AMD64, T1, [{ name: 'bash', version: '5.2.15-2' }]));
        const bash = { name: 'bash', version: '5.2.15-2', arch: 'amd64' };
        const items = [bash, { ...bash, version: '5.2.15-1' }, ...Array.from({ length: 2500 }, () => bash)];
        await assert.rejects(
          store.lookup(AMD64, items),
          (e: unknown) =>
            isStoreError(e, 'INVALID') &&
            e.message.startsWith('lookup item 2 repeats item 0: bash 5.2.15-2 (amd64)'),
        );
        assert.equal(await countRows(raw(), 'jobs'), 0);
        assert.equal(await countRows(raw(), 'tracked_packages'), 0);
        // The same name and version on another architecture is another package.
        const r = await store.lookup(AMD64, [bash, { ...bash, arch: 'i386' }]);
        assert.deepEqual(r.items.map(statusOf), [
          'bash 5.2.15-2 amd64: pending',
          'bash 5.2.15-2 i386: unknown-platform',
        ]);
      }));

    it('carry documents in item order up to the budget, then digests only; the first always', () =>
      withStore(dialect, async ({ store }) => {
        const packages = Array.from({ length: 10 }, (_, i) => ({ name: `big${i}`, version: '1.0-1' }));
        await store.ingestCatalog(await gen.catalog(AMD64, T1, packages));
        const files = (p: { name: string }) =>
          Array.from({ length: 200 }, (_, i) => ({ path: `/usr/share/${p.name}/${'f'.repeat(200)}${i}` }));
        const stored: VerifiedManifest[] = [];
        for (const p of packages) {
          const m = await gen.manifest(AMD64, p, files(p));
          await store.ingestManifest(m);
          stored.push(m);
        }
        const items = packages.map((p) => ({ ...p, arch: 'amd64' }));
        const full = await store.lookup(AMD64, items);
        const costs = full.items.map((r) => {
          assert.ok(
            r.status === 'ok' && r.manifest.bytes !== undefined && r.manifest.signature !== undefined,
          );
          return Math.ceil(r.manifest.bytes.length / 3) * 4 + r.manifest.signature.length;
        });
        assert.equal(full.documentsOmitted, undefined, 'within the default budget: every document');

        const budget = (costs[0] as number) + (costs[1] as number) + (costs[2] as number) + 10;
        const bounded = await store.lookup(AMD64, items, { documentBudget: budget });
        assert.equal(bounded.documentsOmitted, 7);
        bounded.items.forEach((r, i) => {
          assert.ok(r.status === 'ok');
          assert.equal(r.manifest.digest, stored[i]?.digest);
          assert.equal(r.manifest.bytes !== undefined, i < 3, `item ${i}`);
          assert.equal(r.manifest.signature !== undefined, i < 3, `item ${i}`);
        });
        // Omitted documents are there to fetch by digest.
        const late = await store.getManifest({
          digest: bounded.items[9]?.status === 'ok' ? bounded.items[9].manifest.digest : '',
        });
        assert.ok(late !== undefined && Buffer.from(late.bytes).equals(Buffer.from(stored[9]?.bytes ?? [])));
        // A budget smaller than one document still carries the first, so asking one at a time always works.
        const tiny = await store.lookup(AMD64, items.slice(4, 6), { documentBudget: 0 });
        assert.deepEqual(
          tiny.items.map((r) => r.status === 'ok' && r.manifest.bytes !== undefined),
          [true, false],
        );
        const digestsOnly = await store.lookup(AMD64, items, { includeDocuments: false, documentBudget: 0 });
        assert.equal(
          digestsOnly.documentsOmitted,
          undefined,
          'documents: false omits nothing it was asked for',
        );
      }));

    it('queue jobs on operator request only for what the catalog offers', () =>
      withStore(dialect, async ({ store }) => {
        await store.ingestCatalog(
          await gen.catalog(AMD64, T1, [
            { name: 'vim', version: '2:9.0.1378-2' },
            { name: 'nano', version: '7.2-1' },
          ]),
        );
        await store.ingestManifest(await gen.manifest(AMD64, { name: 'nano', version: '7.2-1' }));
        const job = await store.enqueueJob(AMD64, { name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' });
        assert.deepEqual([job.name, job.reason, job.state], ['vim', 'operator', 'pending']);
        const same = await store.enqueueJob(AMD64, { name: 'vim', version: '2:9.0.1378-2', arch: 'amd64' });
        assert.equal(same.id, job.id);
        await assert.rejects(
          store.enqueueJob(AMD64, { name: 'vim', version: '9.9', arch: 'amd64' }),
          (e: unknown) => isStoreError(e, 'NOT_FOUND'),
        );
        await assert.rejects(
          store.enqueueJob(AMD64, { name: 'nano', version: '7.2-1', arch: 'amd64' }),
          (e: unknown) => isStoreError(e, 'INVALID'),
        );
        await assert.rejects(
          store.enqueueJob('fedora/41/x86_64', { name: 'vim', version: '9', arch: 'x86_64' }),
          (e: unknown) => isStoreError(e, 'NOT_FOUND'),
        );
      }));
  });
}
