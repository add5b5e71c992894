import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256Hex, type SignedDocument } from '@sysattest/core';
import {
  answerStatus,
  claimKnown,
  makeFakeWorld,
  nameSnapshot,
  offerDigest,
  serveManifest,
  startRelay,
  type FakePackage,
  type FakeWorld,
  type Relay,
  type SnapshotInfo,
} from '../testkit/relay.js';
import type { VerifyReport } from './report.js';
import {
  SERVER_BIN,
  startE2EServer,
  sysattestCliAsync,
  tampered,
  type CliRun,
  type E2EServer,
} from '../testkit/e2e.js';

/**
 * Trust model rule 1 against a compromised server: a relay in front of a real server rewrites its
 * (unsigned) answers, and the real `sysattest verify` runs against the relay on a small fake root
 * whose manifests and catalog snapshots are really signed. Whatever the relay says, the user must
 * never see exit 0, nor only the coverage bit where signed data says otherwise, and must see a
 * finding that names what happened. A relay that passes everything through is the control.
 */

const TOOL: FakePackage = {
  name: 'tool',
  version: '1:2.0-1',
  arch: 'amd64',
  files: [
    { path: '/usr/bin/tool', content: 'tool binary\n', mode: 0o755 },
    { path: '/usr/bin/tool-helper', content: 'tool helper binary\n', mode: 0o755 },
    { path: '/usr/share/tool/readme', content: 'read me\n', mode: 0o644 },
  ],
};
const PACKAGES: FakePackage[] = [
  {
    name: 'dpkg',
    version: '1.21.22',
    arch: 'amd64',
    files: [{ path: '/usr/bin/dpkg', content: 'dpkg\n', mode: 0o755 }],
  },
  TOOL,
  {
    name: 'libdata',
    version: '3.1',
    arch: 'all',
    files: [{ path: '/usr/share/libdata/a.txt', content: 'data a\n', mode: 0o644 }],
  },
  {
    name: 'extra',
    version: '0.9',
    arch: 'amd64',
    files: [{ path: '/usr/bin/extra', content: 'extra\n', mode: 0o755 }],
  },
];
/** In the current catalog only: tool is outdated there. */
const TOOL_UPDATE: [string, string, string] = ['tool', '1:2.0-1+deb12u1', 'amd64'];
const HOUR = 3600_000;
const DAY = 24 * HOUR;

type Finding = VerifyReport['findings'][number];

describe(
  'sysattest verify against a compromised server (a relay rewriting a real server)',
  { timeout: 5 * 60_000 },
  () => {
    let dir: string;
    let world: FakeWorld;
    let server: E2EServer;
    let relay: Relay;
    /** Catalog snapshots on the server: the current one (tool outdated), an older one, a stale one. */
    const snapshots = {} as Record<'current' | 'older' | 'stale', SnapshotInfo>;
    let clients = 0;

    before(async () => {
      if (!fs.existsSync(SERVER_BIN)) throw new Error(`build first: ${SERVER_BIN} is missing`);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-relay-'));
      world = await makeFakeWorld(dir, PACKAGES);
      server = await startE2EServer(dir, world.keyFile);
      const now = Date.now();
      const made: [keyof typeof snapshots, SignedDocument][] = [
        ['stale', await world.catalog(new Date(now - 30 * DAY), [TOOL_UPDATE])],
        ['older', await world.catalog(new Date(now - 3 * HOUR))],
        ['current', await world.catalog(new Date(now - HOUR), [TOOL_UPDATE])],
      ];
      for (const [name, signed] of made) {
        await server.uploadCatalog(signed);
        const generatedAt = JSON.parse(Buffer.from(signed.bytes).toString('utf8')) as { generatedAt: string };
        snapshots[name] = {
          platform: 'debian/bookworm/amd64',
          digest: signed.digest,
          generatedAt: generatedAt.generatedAt,
        };
      }
      for (const p of PACKAGES) {
        const signed = await world.signedManifest(p);
        await server.post('/v1/manifests', {
          manifest: Buffer.from(signed.bytes).toString('base64'),
          signature: signed.signature,
        });
      }
      relay = await startRelay(server.url);
    });

    after(async () => {
      await relay?.stop();
      server?.stop();
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A client home of its own: its own cache, seal secret and remembered snapshots. */
    function newClient(): string {
      const home = path.join(dir, `client-${++clients}`);
      fs.mkdirSync(home);
      return home;
    }

    /** `sysattest verify --format json` on the fake root, through the relay. */
    function verify(home: string, extra: string[] = []): Promise<CliRun> {
      return sysattestCliAsync(
        [
          'verify',
          '--root',
          world.root,
          '--server',
          relay.url,
          '--keyring',
          world.keyFile,
          '--format',
          'json',
          ...extra,
        ],
        { SYSATTEST_CLIENT_HOME: home, SYSATTEST_CONFIG: '' },
      );
    }

    /** A client whose cache holds every manifest and the current snapshot (a clean run through an honest relay). */
    async function warmClient(): Promise<string> {
      const home = newClient();
      relay.rules = {};
      const r = await verify(home);
      assert.equal(r.status, 0, `warming the cache: ${r.stderr}`);
      return home;
    }

    /** The report, after checking the exit status is the bit set it claims and has `bits` set. */
    function flagged(r: CliRun, bits: number): VerifyReport {
      assert.ok(r.report, `no JSON report: exit ${r.status}, stderr ${r.stderr}`);
      assert.ok(
        r.status > 0 && r.status < 8,
        `exit ${r.status} is not a non-zero verify bit set: ${summary(r.report)} ${r.stderr}`,
      );
      assert.equal(r.status & bits, bits, `exit ${r.status} lacks bits ${bits}: ${summary(r.report)}`);
      return r.report;
    }

    const findingsOf = (report: VerifyReport, cls: string): Finding[] =>
      report.findings.filter((f) => (f.class as string) === cls);

    const summary = (report: VerifyReport): string =>
      JSON.stringify(report.findings.map((f) => [f.class, f.package, f.path, f.failure]));

    /** Runs `check` with the relay playing `rules`, then passes everything through again. */
    async function compromised(
      playing: Relay['rules'],
      check: () => Promise<void>,
      files: { path: string; content: string }[] = [],
    ): Promise<void> {
      await tampered(
        world.root,
        files.map((f) => f.path),
        () => {
          for (const f of files) fs.writeFileSync(path.join(world.root, f.path), f.content);
        },
        async () => {
          relay.rules = playing;
          try {
            await check();
          } finally {
            relay.rules = {};
          }
        },
        dir,
      );
    }

    /** tool's main binary with something appended, its mode kept. */
    const TROJAN = { path: '/usr/bin/tool', content: 'tool binary\ntrojan\n' };

    it('control: the relay passing everything through gives exit 0 on the clean root', async () => {
      const r = await verify(newClient());
      assert.equal(r.status, 0, r.stderr);
      const report = r.report as VerifyReport;
      assert.deepEqual(
        report.findings.map((f) => [f.class, f.package, f.failure]),
        [['outdated', 'tool', false]],
      );
      assert.equal(report.summary.verified, PACKAGES.length);
      assert.deepEqual(
        report.catalogs.map((c) => [c.digest, c.status]),
        [[snapshots.current.digest, 'verified']],
      );
      const lookups = relay.requests.filter((q) => q.path === '/v1/lookup');
      assert.ok(lookups.length > 0, 'the client asked through the relay');
    });

    it("another version's manifest, validly signed, served for tool: bad-signature (trust bit), none of tool's files checked", async () => {
      const other = await world.signedManifest({ ...TOOL, version: '1:1.9-1' });
      await compromised(
        serveManifest('tool', other),
        async () => {
          const report = flagged(await verify(newClient()), 4);
          assertRefused(report, 'tool', /MANIFEST_MISMATCH/);
        },
        [TROJAN],
      );
    });

    it("another package's manifest, validly signed, served for tool: bad-signature (trust bit)", async () => {
      const extra = await world.signedManifest(PACKAGES[3] as FakePackage);
      await compromised(
        serveManifest('tool', extra),
        async () => {
          const report = flagged(await verify(newClient()), 4);
          assertRefused(report, 'tool', /MANIFEST_MISMATCH/);
        },
        [TROJAN],
      );
    });

    it('a validly signed manifest whose signed bytes start with a UTF-8 BOM: bad-signature (trust bit), nothing of it reported clean', async () => {
      const honest = await world.signedManifest(TOOL);
      const bytes = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), honest.bytes]);
      const bom = { bytes, signature: await world.key.sign(bytes) };
      await compromised(
        serveManifest('tool', bom),
        async () => {
          const report = flagged(await verify(newClient()), 4);
          assertRefused(report, 'tool');
        },
        [TROJAN],
      );
    });

    it('not-in-catalog for a version the verified catalog snapshot lists: server-conflict (trust bit), not just coverage', async () => {
      await compromised(
        answerStatus('tool', 'not-in-catalog'),
        async () => {
          const report = flagged(await verify(newClient()), 4);
          assertConflict(report, 'tool', /not-in-catalog/);
        },
        [TROJAN],
      );
    });

    it('unknown-platform for a catalogued version, against a warm cache: server-conflict, and the cached manifest still finds the trojan', async () => {
      const home = await warmClient();
      await compromised(
        answerStatus('tool', 'unknown-platform'),
        async () => {
          const report = flagged(await verify(home), 1 | 4);
          assertConflict(report, 'tool', /unknown-platform/);
          assertTrojanFound(report);
        },
        [TROJAN],
      );
    });

    it('pending for a version whose verified manifest is cached: the cached manifest is used, the trojan found', async () => {
      const home = await warmClient();
      await compromised(
        answerStatus('tool', 'pending'),
        async () => {
          const report = flagged(await verify(home), 1);
          assertTrojanFound(report);
          assert.equal(report.packages.find((p) => p.name === 'tool')?.status, 'verified');
          // Without the cached manifest nothing signed contradicts "pending": coverage, honestly.
          const cold = await verify(newClient());
          assert.equal(cold.status, 2, cold.stderr);
          const tool = cold.report?.packages.find((p) => p.name === 'tool');
          assert.deepEqual([tool?.status, tool?.reason], ['unverified', 'pending']);
        },
        [TROJAN],
      );
    });

    it('a different digest against a warm cache, then nothing delivered: server-conflict, and the cached manifest still finds the trojan', async () => {
      const home = await warmClient();
      await compromised(
        offerDigest('tool', 'e'.repeat(64), undefined),
        async () => {
          const report = flagged(await verify(home), 1 | 4);
          assertConflict(report, 'tool');
          assertTrojanFound(report);
        },
        [TROJAN],
      );
    });

    it('a different digest against a warm cache, then bytes that do not verify: server-conflict, and the cached manifest still finds the trojan', async () => {
      const home = await warmClient();
      const honest = await world.signedManifest(TOOL);
      // The manifest edited to match the trojan, under the honest signature.
      const text = Buffer.from(honest.bytes).toString('utf8');
      const good = sha256Hex(Buffer.from('tool binary\n'));
      const forged = Buffer.from(
        text.replace(
          `"sha256":"${good}","size":12`,
          `"sha256":"${sha256Hex(Buffer.from(TROJAN.content))}","size":${Buffer.byteLength(TROJAN.content)}`,
        ),
      );
      assert.notEqual(forged.toString('utf8'), text, 'the forged manifest differs');
      await compromised(
        offerDigest('tool', sha256Hex(forged), { bytes: forged, signature: honest.signature }),
        async () => {
          const report = flagged(await verify(home), 1 | 4);
          assertConflict(report, 'tool');
          assertTrojanFound(report);
        },
        [TROJAN],
      );
    });

    it('an older catalog snapshot than the client verified before (rollback): refused (trust bit), outdated still reported from the remembered one', async () => {
      const home = await warmClient();
      await compromised(nameSnapshot(snapshots.older), async () => {
        const report = flagged(await verify(home), 4);
        const refused = report.catalogs.filter((c) => c.status === 'refused');
        assert.deepEqual(
          refused.map((c) => c.digest),
          [snapshots.older.digest],
          JSON.stringify(report.catalogs),
        );
        assertStillOutdated(report);
      });
    });

    it('no catalog snapshot named at all: stale-catalog (coverage bit) with a note, outdated still reported from the remembered one', async () => {
      const home = await warmClient();
      await compromised(nameSnapshot(undefined), async () => {
        const report = flagged(await verify(home), 2);
        assert.equal(findingsOf(report, 'stale-catalog').length, 1, summary(report));
        assert.ok(report.notes.length > 0, 'a note says no snapshot was named');
        assertStillOutdated(report);
      });
    });

    it('a catalog snapshot older than --catalog-max-age (default 7 days): stale-catalog (coverage bit)', async () => {
      await compromised(nameSnapshot(snapshots.stale), async () => {
        const report = flagged(await verify(newClient()), 2);
        const stale = findingsOf(report, 'stale-catalog');
        assert.equal(stale.length, 1, summary(report));
      });
    });

    it('a reverse lookup that lies: an implant stays unknown and a failure, the claim only a hint', async () => {
      const implant = '/usr/bin/implant';
      const ghost = '/usr/bin/.ghost';
      const implantHash = sha256Hex(Buffer.from('implant\n'));
      const ghostHash = sha256Hex(Buffer.from('ghost\n'));
      const lies = new Map([
        // a real package and path, whose signed manifest lists other content there
        [
          implantHash,
          [
            {
              platform: 'debian/bookworm/all',
              name: 'libdata',
              version: '3.1',
              arch: 'all',
              path: '/usr/share/libdata/a.txt',
            },
          ],
        ],
        // a package version no manifest exists for
        [
          ghostHash,
          [
            {
              platform: 'debian/bookworm/amd64',
              name: 'ghost',
              version: '1.0',
              arch: 'amd64',
              path: '/usr/bin/ghost',
            },
          ],
        ],
      ]);
      await compromised(
        claimKnown(lies),
        async () => {
          const report = flagged(await verify(newClient(), ['--scan-unowned']), 1);
          const unowned = new Map(findingsOf(report, 'unowned').map((f) => [f.path, f]));
          for (const p of [implant, ghost]) {
            const f = unowned.get(p);
            assert.ok(f, `${p} reported unowned: ${summary(report)}`);
            assert.equal(f.known, false, `${p}: an unbacked claim does not make it known`);
            assert.equal(f.failure, true);
          }
          assert.ok(
            relay.requests.some((q) => q.path === '/v1/reverse-lookup'),
            'the client asked the reverse lookup',
          );
        },
        [
          { path: implant, content: 'implant\n' },
          { path: ghost, content: 'ghost\n' },
        ],
      );
    });

    it('an honest reverse lookup: a plain copy of a packaged file is known and no failure; a setuid copy is a failure', async () => {
      const copy = '/usr/bin/helper-copy';
      const suid = '/usr/bin/.helper-suid';
      const helper = 'tool helper binary\n';
      await tampered(
        world.root,
        [copy, suid],
        () => {
          fs.writeFileSync(path.join(world.root, copy), helper, { mode: 0o755 });
          fs.writeFileSync(path.join(world.root, suid), helper);
          fs.chmodSync(path.join(world.root, suid), 0o4755);
        },
        async () => {
          relay.rules = {};
          const report = flagged(await verify(newClient(), ['--scan-unowned']), 1);
          const unowned = new Map(findingsOf(report, 'unowned').map((f) => [f.path, f]));
          assert.deepEqual(
            [unowned.get(copy)?.known, unowned.get(copy)?.failure],
            [true, false],
            summary(report),
          );
          assert.equal(unowned.get(suid)?.failure, true, 'setuid: a failure whatever the content');
        },
        dir,
      );
    });

    function assertRefused(report: VerifyReport, name: string, reason?: RegExp): void {
      const pkg = report.packages.find((p) => p.name === name);
      assert.equal(pkg?.status, 'bad-signature', JSON.stringify(pkg));
      if (reason !== undefined) assert.match(pkg?.reason ?? '', reason);
      assert.deepEqual(
        findingsOf(report, 'bad-signature').map((f) => f.package),
        [name],
      );
      // Nothing of that package is called clean: every other package verified, none of its files listed.
      assert.equal(report.summary.verified, PACKAGES.length - 1);
      assert.deepEqual(
        report.findings.filter((f) => f.package === name && f.path !== undefined).map((f) => f.path),
        [],
      );
    }

    function assertConflict(report: VerifyReport, name: string, says?: RegExp): void {
      const conflicts = findingsOf(report, 'server-conflict').filter((f) => f.package === name);
      assert.equal(conflicts.length, 1, summary(report));
      assert.equal(conflicts[0]?.failure, true);
      if (says !== undefined) assert.match(conflicts[0]?.detail ?? '', says);
    }

    function assertTrojanFound(report: VerifyReport): void {
      assert.deepEqual(
        findingsOf(report, 'modified').map((f) => [f.package, f.path]),
        [['tool', TROJAN.path]],
        summary(report),
      );
    }

    function assertStillOutdated(report: VerifyReport): void {
      const outdated = findingsOf(report, 'outdated');
      assert.deepEqual(
        outdated.map((f) => [f.package, f.expected]),
        [['tool', TOOL_UPDATE[1]]],
        summary(report),
      );
    }
  },
);
