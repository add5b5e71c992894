import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startReportReceiver, type ReportReceiver } from '../testkit/report-receiver.js';
import { makeFakeWorld, type FakePackage, type FakeWorld } from '../testkit/relay.js';
import {
  SERVER_BIN,
  SERVER_NODE,
  startE2EServer,
  sysattestCliAsync,
  type CliRun,
  type E2EServer,
} from '../testkit/e2e.js';

/**
 * `sysattest verify --report` as a user runs it: the real CLI on a small fake root whose manifests
 * a real server holds, reporting to a stand-in for `POST /v1/reports` in front of that server
 * (report-receiver.ts passes every other request through), so each answer the contract allows
 * (stored, a resend, a refusal, no server at all) can be played. Asserted: what was printed and
 * the exit status are those of a run without --report, whatever the upload does; nothing is lost.
 */

const PACKAGES: FakePackage[] = [
  {
    name: 'dpkg',
    version: '1.21.22',
    arch: 'amd64',
    files: [{ path: '/usr/bin/dpkg', content: 'dpkg\n', mode: 0o755 }],
  },
  {
    name: 'tool',
    version: '2.0-1',
    arch: 'amd64',
    files: [{ path: '/usr/bin/tool', content: 'tool\n', mode: 0o755 }],
  },
];

describe('sysattest verify --report', { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let world: FakeWorld;
  let server: E2EServer;
  let receiver: ReportReceiver;
  let deadUrl: string;
  let homes = 0;

  before(async () => {
    ({ dir, world, server } = await servedWorld('sysattest-report-cli-'));
    receiver = await startReportReceiver({ upstream: server.url });
    const dead = await startReportReceiver();
    await dead.stop();
    deadUrl = dead.url;
  });

  after(async () => {
    await receiver?.stop();
    server?.stop();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A client home of its own, with a reporter token file (mode 0600). */
  function newHost(): { home: string; tokenFile: string; spool: string } {
    const home = path.join(dir, `host-${++homes}`);
    fs.mkdirSync(home);
    const tokenFile = path.join(home, 'reporter-token');
    fs.writeFileSync(tokenFile, `reporter-token-${homes}\n`, { mode: 0o600 });
    return { home, tokenFile, spool: path.join(home, 'report-spool') };
  }

  function verify(
    home: string,
    args: string[],
    url = receiver.url,
    env: Record<string, string> = {},
  ): Promise<CliRun> {
    return sysattestCliAsync(
      ['verify', '--root', world.root, '--server', url, '--keyring', world.keyFile, ...args],
      { SYSATTEST_CLIENT_HOME: home, SYSATTEST_CONFIG: '', SYSATTEST_REPORT: '', ...env },
    );
  }

  const spooled = (spool: string, sub = ''): string[] =>
    fs.existsSync(path.join(spool, sub))
      ? fs.readdirSync(path.join(spool, sub)).filter((n) => n.endsWith('.json'))
      : [];
  /** The text report without its timing line, which differs between two runs. */
  const untimed = (text: string): string => text.replace(/^files checked: .*$/m, '');

  it('prints the JSON report and uploads that same document with the reporter token; exit status as without --report', async () => {
    const host = newHost();
    const plain = await verify(host.home, ['--format', 'json']);
    const from = receiver.received.length;
    const r = await verify(host.home, ['--format', 'json', '--report']);
    assert.equal(r.status, plain.status, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.report);
    const sent = receiver.received.slice(from);
    assert.equal(sent.length, 1, r.stderr);
    assert.deepEqual(sent[0]?.report, r.report, 'the uploaded report is the printed one');
    assert.equal(sent[0]?.authorization, 'Bearer reporter-token-1');
    assert.equal(sent[0]?.hostname, os.hostname());
    assert.match(
      r.stderr,
      /^sysattest: report sent to http:\/\/127\.0\.0\.1:\d+ as host test-host \(verdict clean\)$/m,
    );
    assert.deepEqual(spooled(host.spool), [], 'removed from the spool once stored');
  });

  it('--format text still prints text; the uploaded document is the JSON report', async () => {
    const host = newHost();
    const from = receiver.received.length;
    const r = await verify(host.home, ['--report']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^sysattest verify: .* \(debian\/bookworm\/amd64\)\npackages: 2 — 2 verified/);
    const sent = receiver.received.slice(from);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.report.schema, 'sysattest.verify-report');
    assert.equal(sent[0]?.report.summary.packages, 2);
  });

  it('no server: the same output and exit status as without --report, one line, the report spooled; the next run sends it first', async () => {
    const host = newHost();
    await verify(host.home, []); // caches the manifests
    const plain = await verify(host.home, [], deadUrl);
    const r = await verify(host.home, ['--report'], deadUrl);
    assert.equal(r.status, plain.status);
    assert.equal(untimed(r.stdout), untimed(plain.stdout));
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('sysattest: '));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0] ?? '',
      /the report was not sent: cannot reach the server .*; 1 report waits in .* next run/,
    );
    const waiting = spooled(host.spool);
    assert.equal(waiting.length, 1);
    const waitingId = JSON.parse(fs.readFileSync(path.join(host.spool, waiting[0] ?? ''), 'utf8'))
      .reportId as string;

    const from = receiver.received.length;
    const next = await verify(host.home, ['--report']);
    assert.equal(next.status, 0, next.stderr);
    const sent = receiver.received.slice(from).map((u) => u.reportId);
    assert.equal(sent.length, 2);
    assert.equal(sent[0], waitingId, 'the spooled report first');
    assert.match(next.stderr, /report sent to .*, after 1 earlier report from the spool/);
    assert.deepEqual(spooled(host.spool), []);
  });

  it('401: exit status unchanged, one line saying what to fix, the report moved aside', async () => {
    const host = newHost();
    receiver.script = () => ({
      status: 401,
      body: { error: { code: 'UNAUTHORIZED', message: 'unknown token' } },
    });
    try {
      const r = await verify(host.home, ['--report']);
      assert.equal(r.status, 0, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('sysattest: '));
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0] ?? '',
        new RegExp(`does not know the token in ${host.tokenFile} .*--role reporter`),
      );
      assert.deepEqual(spooled(host.spool), []);
      assert.equal(spooled(host.spool, 'rejected').length, 1);
    } finally {
      receiver.script = undefined;
    }
  });

  it('a token file others may read is refused before the check runs (exit 64), nothing sent', async () => {
    const host = newHost();
    fs.chmodSync(host.tokenFile, 0o644);
    const from = receiver.received.length;
    const r = await verify(host.home, ['--report']);
    assert.equal(r.status, 64);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      new RegExp(`reporter token file ${host.tokenFile} may be read or written by others .*chmod 600`),
    );
    assert.equal(receiver.received.length, from);
  });

  it('"report": true in the config reports; --no-report wins over it; SYSATTEST_REPORT=1 turns it on', async () => {
    const host = newHost();
    const config = path.join(host.home, 'client.json');
    fs.writeFileSync(config, JSON.stringify({ report: true, reportTokenFile: host.tokenFile }));
    const from = receiver.received.length;
    assert.equal((await verify(host.home, ['--config', config])).status, 0);
    assert.equal(receiver.received.length, from + 1, 'the config turned it on');
    assert.equal((await verify(host.home, ['--config', config, '--no-report'])).status, 0);
    assert.equal(receiver.received.length, from + 1, '--no-report: nothing sent');
    assert.equal((await verify(host.home, [], receiver.url, { SYSATTEST_REPORT: '1' })).status, 0);
    assert.equal(receiver.received.length, from + 2, 'the environment turned it on');
  });

  it('--offline --report only spools the report', async () => {
    const host = newHost();
    await verify(host.home, []);
    const from = receiver.received.length;
    const r = await verify(host.home, ['--offline', '--report']);
    assert.equal(receiver.received.length, from);
    assert.match(
      r.stderr,
      /the report waits in .*report-spool: the next run that reaches the server sends it/,
    );
    assert.equal(spooled(host.spool).length, 1);
  });
});

/**
 * The same against the real server's `POST /v1/reports`: its answers are the ones the client
 * was written for (201, 200 for a resend, 401, 403), the host is the token's, not the body's,
 * and what the server stores is the report the host printed.
 */
describe('sysattest verify --report to a real server', { timeout: 5 * 60_000 }, () => {
  let dir: string;
  let world: FakeWorld;
  let server: E2EServer;
  let readerToken: string;

  const serverCli = (...args: string[]): string => {
    const r = spawnSync(SERVER_NODE, [SERVER_BIN, ...args, '--database', server.dbFile], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`sysattest-server ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim();
  };

  before(async () => {
    ({ dir, world, server } = await servedWorld('sysattest-report-server-'));
    readerToken = serverCli('token', 'create', '--role', 'reader', '--name', 'fleet reader');
  });

  after(() => {
    server?.stop();
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  function host(name: string, token: string): { home: string; tokenFile: string; spool: string } {
    const home = path.join(dir, name);
    fs.mkdirSync(home);
    const tokenFile = path.join(home, 'reporter-token');
    fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    return { home, tokenFile, spool: path.join(home, 'report-spool') };
  }

  function verify(home: string, args: string[]): Promise<CliRun> {
    return sysattestCliAsync(
      [
        'verify',
        '--root',
        world.root,
        '--server',
        server.url,
        '--keyring',
        world.keyFile,
        '--report',
        ...args,
      ],
      { SYSATTEST_CLIENT_HOME: home, SYSATTEST_CONFIG: '', SYSATTEST_REPORT: '' },
    );
  }

  async function fleet<T>(route: string): Promise<T> {
    const r = await fetch(`${server.url}${route}`, { headers: { authorization: `Bearer ${readerToken}` } });
    assert.equal(r.status, 200, `GET ${route}`);
    return (await r.json()) as T;
  }

  interface HostDetail {
    host: { name: string; verdict: string; exitCode: number; packages: number };
    history: { reportId: string; verdict: string }[];
  }

  it("stores the printed report as the token's host; a resend of a spooled copy is stored once", async () => {
    const web = host(
      'web-01',
      serverCli('token', 'create', '--role', 'reporter', '--host', 'web-01', '--name', 'web-01'),
    );
    const r = await verify(web.home, ['--format', 'json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^sysattest: report sent to .* as host web-01 \(verdict clean\)$/m);
    const first = await fleet<HostDetail>('/v1/hosts/web-01');
    assert.deepEqual([first.host.verdict, first.host.exitCode, first.host.packages], ['clean', 0, 2]);
    assert.equal(first.history.length, 1);
    const reportId = first.history[0]?.reportId ?? '';
    assert.deepEqual(
      await fleet(`/v1/hosts/web-01/reports/${reportId}`),
      r.report,
      'the stored report is the printed one',
    );

    // As if a run had stopped between the server's answer and the removal: the copy is sent again.
    fs.mkdirSync(web.spool, { recursive: true, mode: 0o700 });
    fs.writeFileSync(
      path.join(web.spool, `20260101T000000000Z-${reportId}.json`),
      JSON.stringify({ reportId, hostname: os.hostname(), report: r.report }),
      { mode: 0o600 },
    );
    const again = await verify(web.home, []);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /after 1 earlier report from the spool/);
    const second = await fleet<HostDetail>('/v1/hosts/web-01');
    assert.equal(second.history.length, 2, 'the resend is stored once: one old report, one new');
    assert.deepEqual(
      fs.readdirSync(web.spool).filter((n) => n.endsWith('.json')),
      [],
    );
  });

  it("a revoked token (401) and a reader's token (403): what to fix, the report moved aside, exit status kept", async () => {
    const revoked = host(
      'db-01',
      serverCli('token', 'create', '--role', 'reporter', '--host', 'db-01', '--name', 'db-01'),
    );
    const id = /^(\d+)\t.*\tdb-01\t/m.exec(serverCli('token', 'list'))?.[1];
    assert.ok(id);
    serverCli('token', 'revoke', id);
    const r401 = await verify(revoked.home, []);
    assert.equal(r401.status, 0);
    assert.match(
      r401.stderr,
      new RegExp(`does not know the token in ${revoked.tokenFile} \\(unknown or revoked\\)`),
    );
    assert.equal(fs.readdirSync(path.join(revoked.spool, 'rejected')).length, 1);

    const reader = host('reader-as-host', readerToken);
    const r403 = await verify(reader.home, []);
    assert.equal(r403.status, 0);
    assert.match(r403.stderr, new RegExp(`does not let the token in ${reader.tokenFile} send reports`));
    assert.equal(fs.readdirSync(path.join(reader.spool, 'rejected')).length, 1);
    const hosts = await fleet<{ hosts: { name: string }[] }>('/v1/hosts');
    assert.deepEqual(
      hosts.hosts.map((h) => h.name),
      ['web-01'],
      'no report of theirs was stored',
    );
  });
});

/** A fake world's catalog and manifests, signed and served by a real server in a new directory. */
async function servedWorld(prefix: string): Promise<{ dir: string; world: FakeWorld; server: E2EServer }> {
  if (!fs.existsSync(SERVER_BIN)) throw new Error(`build first: ${SERVER_BIN} is missing`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const world = await makeFakeWorld(dir, PACKAGES);
  const server = await startE2EServer(dir, world.keyFile);
  await server.uploadCatalog(await world.catalog(new Date(Date.now() - 3600_000)));
  for (const p of PACKAGES) {
    const signed = await world.signedManifest(p);
    await server.post('/v1/manifests', {
      manifest: Buffer.from(signed.bytes).toString('base64'),
      signature: signed.signature,
    });
  }
  return { dir, world, server };
}
