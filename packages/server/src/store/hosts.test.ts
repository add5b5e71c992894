import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { createDatabase, parseStoreLocation } from './connection.js';
import { migrateUpTo } from './migrations.js';
import { isStoreError } from './store-error.js';
import { openStore } from './store.js';
import { TEST_DIALECTS, countRows, createTestDatabase, injectFailure, withStore } from '../testkit/store.js';
import { fleetPackages, makeReport, reportWithVerdict, seedFleet } from '../testkit/hosts.js';

const DAY = 86_400;

for (const dialect of TEST_DIALECTS) {
  describe(`hosts (${dialect})`, () => {
    it('a report is stored under the token’s host; a resend is stored once and answered the same', () =>
      withStore(dialect, async ({ store, raw }) => {
        const token = await store.createToken('reporter', 'web-01 timer', 'web-01');
        const reportId = randomUUID();
        const report = reportWithVerdict('findings', fleetPackages(5, 2));
        const first = await store.recordReport({ tokenId: token.id, host: 'web-01', reportId, report });
        assert.ok(first.kind === 'stored');
        assert.deepEqual(first.receipt, {
          host: 'web-01',
          reportId,
          verdict: 'findings',
          receivedAt: '2026-11-25T12:00:00.000Z',
        });
        const again = await store.recordReport({ tokenId: token.id, host: 'web-01', reportId, report });
        assert.deepEqual(again, { kind: 'resent', receipt: first.receipt });
        const db = raw();
        assert.equal(await countRows(db, 'host_reports'), 1);
        assert.equal(await countRows(db, 'host_packages'), 5);

        const detail = await store.hostDetail('web-01');
        assert.ok(detail);
        assert.deepEqual(
          { ...detail.host, findingsByClass: detail.host.findingsByClass.modified },
          {
            name: 'web-01',
            platform: 'debian/bookworm/amd64',
            lastReportAt: '2026-11-25T12:00:00.000Z',
            verdict: 'findings',
            exitCode: 1,
            packages: 5,
            verified: 5,
            unverified: 0,
            outdated: 3,
            failures: 1,
            findingsByClass: 1,
          },
        );
        assert.deepEqual(detail.history, [
          { reportId, receivedAt: '2026-11-25T12:00:00.000Z', verdict: 'findings', exitCode: 1, failures: 1 },
        ]);
        // What comes back is what was sent.
        assert.deepEqual(await store.hostReport('web-01', reportId), report);
        assert.deepEqual(await store.latestHostReport('web-01'), report);
        assert.equal(await store.hostReport('web-02', reportId), undefined);
      }));

    it('the latest report replaces the host’s packages and verdict; the history keeps both', () =>
      withStore(dialect, async ({ store, clock, raw }) => {
        const token = await store.createToken('reporter', 'db', 'db-01');
        const send = (report: ReturnType<typeof makeReport>) =>
          store.recordReport({ tokenId: token.id, host: 'db-01', reportId: randomUUID(), report });
        await send(reportWithVerdict('trust-failure', fleetPackages(10)));
        clock.advance(3600);
        await send(reportWithVerdict('clean', fleetPackages(4)));
        const detail = await store.hostDetail('db-01');
        assert.deepEqual(
          detail?.history.map((h) => h.verdict),
          ['clean', 'trust-failure'],
        );
        assert.equal(detail?.host.verdict, 'clean');
        assert.equal(detail?.host.packages, 4);
        assert.equal(await countRows(raw(), 'host_packages'), 4);
      }));

    it('a token writes only for its own host, and not once revoked: nothing is written', () =>
      withStore(dialect, async ({ store, raw }) => {
        const a = await store.createToken('reporter', 'a', 'host-a');
        const reader = await store.createToken('reader', 'r');
        const report = reportWithVerdict('clean', fleetPackages(3));
        for (const [tokenId, host] of [
          [a.id, 'host-b'],
          [reader.id, 'host-a'],
        ] as const) {
          const outcome = await store.recordReport({ tokenId, host, reportId: randomUUID(), report });
          assert.deepEqual(outcome, { kind: 'token-revoked' });
        }
        await store.revokeToken(a.id);
        assert.deepEqual(
          await store.recordReport({ tokenId: a.id, host: 'host-a', reportId: randomUUID(), report }),
          { kind: 'token-revoked' },
        );
        assert.equal(await countRows(raw(), 'hosts'), 0);
        assert.equal(await countRows(raw(), 'host_reports'), 0);
      }));

    it('a report that fails half-way leaves nothing behind', () =>
      withStore(dialect, async ({ store, raw }) => {
        const token = await store.createToken('reporter', 'x', 'x-01');
        const db = raw();
        const restore = await injectFailure(db, dialect, 'host_packages');
        const report = reportWithVerdict('clean', fleetPackages(3));
        await assert.rejects(
          store.recordReport({ tokenId: token.id, host: 'x-01', reportId: randomUUID(), report }),
        );
        for (const table of ['hosts', 'host_reports', 'host_packages'] as const) {
          assert.equal(await countRows(db, table), 0, table);
        }
        await restore();
        assert.equal(
          (await store.recordReport({ tokenId: token.id, host: 'x-01', reportId: randomUUID(), report }))
            .kind,
          'stored',
        );
      }));

    it('retention: at most `keep` per host, none older than maxAgeDays, the latest always', () =>
      withStore(
        dialect,
        async ({ store, clock }) => {
          const a = await store.createToken('reporter', 'a', 'a');
          const b = await store.createToken('reporter', 'b', 'b');
          const report = reportWithVerdict('clean', fleetPackages(2));
          const send = (tokenId: number, host: string) =>
            store.recordReport({ tokenId, host, reportId: randomUUID(), report });
          const ids: string[] = [];
          for (let i = 0; i < 5; i++) {
            const outcome = await send(a.id, 'a');
            if (outcome.kind !== 'token-revoked') ids.push(outcome.receipt.reportId);
            clock.advance(60);
          }
          const history = async (host: string) =>
            (await store.hostDetail(host))?.history.map((h) => h.reportId) ?? [];
          assert.deepEqual(await history('a'), ids.slice(2).reverse());
          // b's one report, 40 days later: old, but its latest, so kept; a's are not touched by b's write.
          await send(b.id, 'b');
          clock.advance(40 * DAY);
          await send(a.id, 'a');
          assert.equal((await history('a')).length, 1);
          assert.equal((await history('b')).length, 1);
          assert.equal((await store.hostDetail('b'))?.host.verdict, 'stale');
        },
        { hosts: { keep: 3, maxAgeDays: 30 } },
      ));

    it('forgetting a host deletes its reports and revokes its tokens; its token writes no more', () =>
      withStore(dialect, async ({ store, raw }) => {
        const t1 = await store.createToken('reporter', 'one', 'gone-01');
        const t2 = await store.createToken('reporter', 'two', 'gone-01');
        const other = await store.createToken('reporter', 'other', 'stays-01');
        const report = reportWithVerdict('clean', fleetPackages(3));
        await store.recordReport({ tokenId: t1.id, host: 'gone-01', reportId: randomUUID(), report });
        await store.recordReport({ tokenId: other.id, host: 'stays-01', reportId: randomUUID(), report });
        assert.deepEqual(await store.forgetHost('gone-01'), { reports: 1, tokensRevoked: 2 });
        assert.equal(await store.hostDetail('gone-01'), undefined);
        assert.equal(await store.authenticate(t2.secret), undefined);
        assert.deepEqual(
          await store.recordReport({ tokenId: t1.id, host: 'gone-01', reportId: randomUUID(), report }),
          { kind: 'token-revoked' },
        );
        assert.equal(await countRows(raw(), 'host_packages'), 3, "the other host's packages stay");
        await assert.rejects(store.forgetHost('gone-01'), (e: unknown) => isStoreError(e, 'NOT_FOUND'));
        // A host enrolled (a token) that never reported: forgetting it revokes the token.
        const fresh = await store.createToken('reporter', 'new', 'new-01');
        assert.deepEqual(await store.forgetHost('new-01'), { reports: 0, tokensRevoked: 1 });
        assert.equal(await store.authenticate(fresh.secret), undefined);
      }));

    it('a reporter token needs a host, no other token takes one; the database holds that too', () =>
      withStore(dialect, async ({ store, raw }) => {
        await assert.rejects(store.createToken('reporter', 'no host'), (e: unknown) =>
          isStoreError(e, 'INVALID'),
        );
        await assert.rejects(store.createToken('reader', 'with host', 'web-01'), (e: unknown) =>
          isStoreError(e, 'INVALID'),
        );
        for (const bad of ['', '../etc', 'a b', 'x'.repeat(254), '-lead']) {
          await assert.rejects(store.createToken('reporter', 'bad', bad), (e: unknown) =>
            isStoreError(e, 'INVALID'),
          );
        }
        const t = await store.createToken('reporter', 'ok', 'web-01');
        assert.deepEqual(await store.authenticate(t.secret), {
          id: t.id,
          role: 'reporter',
          name: 'ok',
          host: 'web-01',
        });
        assert.equal((await store.listTokens()).find((x) => x.id === t.id)?.host, 'web-01');
        const db = raw();
        const insert = (role: string, host: string | null) =>
          db
            .insertInto('tokens')
            .values({ name: 'raw', role, host, secret_hash: randomUUID(), created_at: 'now' })
            .execute();
        await assert.rejects(insert('reporter', null));
        await assert.rejects(insert('admin', 'web-01'));
        await assert.rejects(insert('superuser', null));
      }));

    it('lists hosts by verdict and platform, page by page, each once; counts every verdict', () =>
      withStore(dialect, async ({ store, clock }) => {
        const seeded = await seedFleet(store, {
          hosts: 25,
          packagesPerHost: 6,
          advance: (s) => clock.advance(s),
        });
        const arm = await store.createToken('reporter', 'arm', 'arm-01');
        await store.recordReport({
          tokenId: arm.id,
          host: 'arm-01',
          reportId: randomUUID(),
          report: makeReport(fleetPackages(2), [], { platform: 'debian/bookworm/arm64' }),
        });
        const names: string[] = [];
        let after: string | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await store.hostsPage({ limit: 7, ...(after === undefined ? {} : { after }) });
          names.push(...page.hosts.map((h) => h.name));
          after = page.next;
          if (after === undefined) break;
        }
        assert.deepEqual(names, ['arm-01', ...seeded.map((h) => h.name)]);
        const counts = await store.hostCountsByVerdict();
        assert.deepEqual(counts, {
          clean: 6,
          findings: 5,
          incomplete: 5,
          'trust-failure': 5,
          stale: 5,
        });
        for (const verdict of ['stale', 'trust-failure'] as const) {
          const page = await store.hostsPage({ verdict });
          assert.deepEqual(
            page.hosts.map((h) => h.name),
            seeded.filter((h) => h.verdict === verdict).map((h) => h.name),
          );
          assert.ok(page.hosts.every((h) => h.verdict === verdict));
        }
        assert.deepEqual(
          (await store.hostsPage({ platform: 'debian/bookworm/arm64' })).hosts.map((h) => h.name),
          ['arm-01'],
        );
        assert.deepEqual((await store.hostsPage({ verdict: 'clean', platform: 'x/y/z' })).hosts, []);
      }));

    it('which hosts run a package, a version, or an outdated one', () =>
      withStore(dialect, async ({ store }) => {
        await seedFleet(store, { hosts: 4, packagesPerHost: 4 });
        const old = await store.createToken('reporter', 'old', 'old-01');
        await store.recordReport({
          tokenId: old.id,
          host: 'old-01',
          reportId: randomUUID(),
          report: makeReport([{ name: 'pkg-0001', version: '0.9-1', arch: 'amd64', status: 'verified' }]),
        });
        assert.deepEqual(
          (await store.hostsRunning({ name: 'pkg-0001', version: '0.9-1' })).map((h) => h.host),
          ['old-01'],
        );
        assert.equal((await store.hostsRunning({ name: 'pkg-0001' })).length, 5);
        // pkg-0000 and pkg-0003 are outdated on the seeded hosts (every third package); pkg-0001 is not.
        const outdated = await store.hostsRunning({ name: 'pkg-0003', outdated: true });
        assert.deepEqual(
          outdated.map((h) => [h.host, h.version, h.newestVersion]),
          ['host-0000', 'host-0001', 'host-0002', 'host-0003'].map((h) => [h, '1.0-1', '1.0-2']),
        );
        assert.deepEqual(await store.hostsRunning({ name: 'pkg-0001', outdated: true }), []);
      }));

    it('migration 0006 keeps the tokens of an older database, each bound to no host', async () => {
      const db = await createTestDatabase(dialect);
      const k = createDatabase(parseStoreLocation(db.url));
      try {
        await migrateUpTo(k, dialect, '0005_job_priority');
        await sql`insert into tokens (name, role, secret_hash, created_at) values ('old', 'reader', 'h1', 't'), ('gone', 'admin', 'h2', 't')`.execute(
          k,
        );
        await sql`update tokens set revoked_at = 't2' where name = 'gone'`.execute(k);
        await k.destroy();
        const store = await openStore(db.url);
        try {
          const tokens = await store.listTokens();
          assert.deepEqual(
            tokens.map((t) => [t.name, t.role, t.host, t.revokedAt]),
            [
              ['old', 'reader', undefined, undefined],
              ['gone', 'admin', undefined, 't2'],
            ],
          );
          assert.ok((await store.createToken('reporter', 'new', 'web-01')).id > 2);
        } finally {
          await store.close();
        }
      } finally {
        await k.destroy().catch(() => undefined);
        await db.drop();
      }
    });

    it('a fleet of 1,000 hosts × 800 packages: every host listed once, counted, and findable', () =>
      withStore(dialect, async ({ store, clock, raw }) => {
        const seeded = await seedFleet(store, {
          hosts: 1000,
          packagesPerHost: 800,
          advance: (s) => clock.advance(s),
        });
        assert.equal(await countRows(raw(), 'host_packages'), 800_000);
        const counts = await store.hostCountsByVerdict();
        assert.deepEqual(counts, {
          clean: 200,
          findings: 200,
          incomplete: 200,
          'trust-failure': 200,
          stale: 200,
        });
        let listed = 0;
        let after: string | undefined;
        do {
          const page = await store.hostsPage({ limit: 1000, ...(after === undefined ? {} : { after }) });
          listed += page.hosts.length;
          assert.ok(page.hosts.every((h) => h.packages === 800 && h.outdated === 267));
          after = page.next;
        } while (after !== undefined);
        assert.equal(listed, seeded.length);
        assert.equal(
          (await store.hostsRunning({ name: 'pkg-0798', outdated: true, limit: 5000 })).length,
          1000,
        );
        const trust = await store.hostsPage({ verdict: 'trust-failure', limit: 1000 });
        assert.equal(trust.hosts.length, 200);
      }));
  });
}
