/**
 * The dashboard's host figures on both databases: verdict counts per platform, hosts per platform,
 * and the hosts still behind an upgrade (by the distribution's version ordering, not text order).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { TEST_DIALECTS, openTestStore, type TestStore } from '../../testkit/store.js';
import { seedSimulatedFleet, type FleetPackage, type SimulatedHost } from '../../testkit/simulated-fleet.js';

const AMD64 = 'debian/bookworm/amd64';
const ARM64 = 'debian/bookworm/arm64';
const PAGE = { offset: 0, limit: 100 };

/** dpkg orders 1.9-1 < 1.10-1 and 2.0~rc1-1 < 2.0-1, which text order gets wrong. */
const PACKAGES: FleetPackage[] = [
  { name: 'openssl', arch: 'amd64', version: '1.10-1', newestVersion: '1.10-1', olderVersion: '1.9-1' },
  { name: 'curl', arch: 'amd64', version: '2.0-1', newestVersion: '2.0-1', olderVersion: '2.0~rc1-1' },
  { name: 'tzdata', arch: 'all', version: '2024b-1', newestVersion: '2024b-1', olderVersion: '2024a-1' },
];

for (const dialect of TEST_DIALECTS) {
  describe(`dashboard host figures (${dialect})`, () => {
    let t: TestStore;
    let skew = 0;
    let amd: SimulatedHost[];

    before(async () => {
      t = await openTestStore(dialect, { now: () => new Date(Date.now() + skew * 1000) });
      const setSkew = (s: number): void => {
        skew = s;
      };
      // 100 hosts on amd64 (verdicts as fleetVerdict deals them, 3 stale); 4 on arm64.
      amd = await seedSimulatedFleet(t.store, {
        platform: AMD64,
        hosts: 100,
        packages: PACKAGES,
        skew: setSkew,
        // Host i: openssl behind when i % 4 == 0, curl when i % 5 == 0, tzdata when i % 10 == 0
        // and on host 99 (stale).
        behind: (i) =>
          new Set([
            ...(i % 4 === 0 ? ['openssl'] : []),
            ...(i % 5 === 0 ? ['curl'] : []),
            ...(i % 10 === 0 || i === 99 ? ['tzdata'] : []),
          ]),
      });
      await seedSimulatedFleet(t.store, {
        platform: ARM64,
        hosts: 4,
        prefix: 'arm-',
        packages: PACKAGES.map((p) => ({ ...p, arch: p.arch === 'all' ? 'all' : 'arm64' })),
        behind: () => new Set(['openssl']),
      });
    });
    after(async () => {
      await t?.close();
    });

    it('counts hosts per verdict, on one platform or all, stale decided now', async () => {
      const expected = { clean: 0, findings: 0, incomplete: 0, 'trust-failure': 0, stale: 0 };
      for (const h of amd) expected[h.verdict]++;
      assert.deepEqual(expected, { clean: 85, findings: 6, incomplete: 5, 'trust-failure': 1, stale: 3 });
      assert.deepEqual(await t.store.hostVerdictCounts(AMD64), expected);
      assert.deepEqual(await t.store.hostVerdictCounts(ARM64), {
        clean: 4,
        findings: 0,
        incomplete: 0,
        'trust-failure': 0,
        stale: 0,
      });
      assert.equal((await t.store.hostVerdictCounts()).clean, 89);
      assert.equal((await t.store.hostVerdictCounts('no/such/platform')).clean, 0);
      assert.deepEqual(
        [...(await t.store.hostsPerPlatform())],
        [
          [AMD64, 100],
          [ARM64, 4],
        ],
      );
    });

    it('counts the hosts behind each upgrade by the distribution’s ordering, per platform and arch', async () => {
      const counts = await t.store.hostsBehindCounts([
        { platform: AMD64, name: 'openssl', arch: 'amd64', to: '1.10-1' },
        { platform: AMD64, name: 'curl', arch: 'amd64', to: '2.0-1' },
        { platform: AMD64, name: 'tzdata', arch: 'all', to: '2024b-1' },
        { platform: ARM64, name: 'openssl', arch: 'arm64', to: '1.10-1' },
        { platform: AMD64, name: 'openssl', arch: 'arm64', to: '1.10-1' },
        // An older upgrade: nobody runs anything before 1.9-1.
        { platform: AMD64, name: 'openssl', arch: 'amd64', to: '1.9-1' },
        { platform: AMD64, name: 'absent', arch: 'amd64', to: '1' },
      ]);
      assert.deepEqual(counts, [25, 20, 11, 4, 0, 0, 0]);
      assert.deepEqual(await t.store.hostsBehindCounts([]), []);
    });

    it('lists the hosts behind an upgrade by name, paged, with their version and verdict now', async () => {
      const ref = { platform: AMD64, name: 'curl', arch: 'amd64', version: '2.0-1' };
      const first = await t.store.hostsBehind(ref, { offset: 0, limit: 15 });
      assert.equal(first.total, 20);
      assert.equal(first.hasMore, true);
      assert.deepEqual(
        first.items.slice(0, 3).map((h) => [h.host, h.version]),
        [
          ['host-0000', '2.0~rc1-1'],
          ['host-0005', '2.0~rc1-1'],
          ['host-0010', '2.0~rc1-1'],
        ],
      );
      const rest = await t.store.hostsBehind(ref, { offset: 15, limit: 15 });
      assert.deepEqual(
        rest.items.map((h) => [h.host, h.verdict]),
        [
          ['host-0075', 'clean'],
          ['host-0080', 'clean'],
          ['host-0085', 'findings'],
          ['host-0090', 'findings'],
          ['host-0095', 'incomplete'],
        ],
      );
      assert.equal(rest.hasMore, false);
      const stale = await t.store.hostsBehind(
        { ...ref, name: 'tzdata', arch: 'all', version: '2024b-1' },
        PAGE,
      );
      assert.deepEqual(
        stale.items.map((h) => [h.host, h.verdict]),
        [
          ...Array.from({ length: 10 }, (_, i) => [`host-00${i}0`, i === 9 ? 'findings' : 'clean']),
          ['host-0099', 'stale'],
        ],
      );
      const none = await t.store.hostsBehind({ ...ref, version: '2.0~rc1-1' }, PAGE);
      assert.deepEqual(none.items, []);
    });
  });
}
