import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ServerClient } from '../transport/index.js';
import { startReportReceiver, type ReportReceiver } from '../testkit/report-receiver.js';
import { uploadOf } from '../testkit/verify-reports.js';
import { deliverSpool, type DeliveryResult } from './report-delivery.js';
import { ReportSpool } from './report-spool.js';

const TOKEN_FILE = '/etc/sysattest/reporter-token';
const T0 = Date.parse('2026-12-06T17:00:00Z');

/**
 * The spool sent to a stand-in for the server's `POST /v1/reports` (201 stored, 200 a resend,
 * or what a test scripts), as `sysattest verify --report` sends it after its verdict.
 */
describe('sending the spooled reports', () => {
  let receiver: ReportReceiver;
  let home: string;
  let spools = 0;

  before(async () => {
    receiver = await startReportReceiver();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-delivery-'));
  });
  after(async () => {
    await receiver.stop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  /** A fresh spool holding `n` reports, oldest first; their ids. */
  async function spoolWith(n: number): Promise<{ spool: ReportSpool; ids: string[] }> {
    const spool = new ReportSpool(path.join(home, `spool-${++spools}`));
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const u = uploadOf();
      ids.push(u.reportId);
      await spool.add(u, new Date(T0 + i * 1000));
    }
    return { spool, ids };
  }

  async function deliver(
    spool: ReportSpool,
    url = receiver.url,
    deadline = Date.now() + 60_000,
  ): Promise<DeliveryResult & { lines: string[] }> {
    const lines: string[] = [];
    const client = new ServerClient({ url, token: 'reporter-secret', timeoutMs: 5000 });
    const result = await deliverSpool(spool, {
      client,
      tokenFile: TOKEN_FILE,
      deadline,
      log: (l) => lines.push(l),
    });
    return { ...result, lines };
  }

  const sentIds = (from: number): string[] => receiver.received.slice(from).map((u) => u.reportId);

  it('sends every spooled report, oldest first, with the reporter token, and empties the spool', async () => {
    receiver.script = undefined;
    const { spool, ids } = await spoolWith(3);
    const from = receiver.received.length;
    const r = await deliver(spool);
    assert.deepEqual(sentIds(from), ids);
    assert.ok(receiver.received.slice(from).every((u) => u.authorization === 'Bearer reporter-secret'));
    assert.deepEqual(
      r.sent.map((s) => s.reportId),
      ids,
    );
    assert.deepEqual([r.rejected, r.waiting, r.lines], [0, 0, []]);
    assert.deepEqual(await spool.pending(), []);
  });

  it('a server that cannot be reached: one line, nothing lost, and the next run sends it all', async () => {
    receiver.script = undefined;
    const down = await startReportReceiver();
    await down.stop();
    const { spool, ids } = await spoolWith(2);
    const r = await deliver(spool, down.url);
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.match(
      r.lines[0] ?? '',
      /^the report was not sent: cannot reach the server .*; 2 reports wait in .* next run$/,
    );
    assert.deepEqual(
      (await spool.pending()).map((e) => e.reportId),
      ids,
    );
    const from = receiver.received.length;
    const again = await deliver(spool);
    assert.deepEqual(sentIds(from), ids);
    assert.equal(again.sent.length, 2);
    assert.deepEqual(await spool.pending(), []);
  });

  it('a server that fails (503, 429, 404: an older server) keeps the reports and stops', async () => {
    for (const status of [503, 429, 404]) {
      receiver.script = () => ({ status, body: { error: { code: 'UNAVAILABLE', message: 'try later' } } });
      const { spool, ids } = await spoolWith(2);
      const from = receiver.received.length;
      const r = await deliver(spool);
      assert.deepEqual(sentIds(from), ids.slice(0, 1), `${status}: stops at the first`);
      assert.equal(r.waiting, 2);
      assert.match(r.lines.join('\n'), new RegExp(`HTTP ${status}: try later; 2 reports wait`));
      assert.equal((await spool.pending()).length, 2);
    }
  });

  it('401: the report is moved aside with what to fix; the others wait (they would get the same answer)', async () => {
    receiver.script = () => ({
      status: 401,
      body: { error: { code: 'UNAUTHORIZED', message: 'unknown token' } },
    });
    const { spool, ids } = await spoolWith(3);
    const from = receiver.received.length;
    const r = await deliver(spool);
    assert.deepEqual(sentIds(from), ids.slice(0, 1));
    assert.deepEqual([r.rejected, r.waiting], [1, 2]);
    assert.equal(r.lines.length, 1, r.lines.join('\n'));
    assert.match(
      r.lines[0] ?? '',
      new RegExp(
        `does not know the token in ${TOKEN_FILE} \\(unknown or revoked\\) \\(HTTP 401: unknown token\\): ` +
          'put a valid reporter token there \\(sysattest-server token create --role reporter --host NAME --name NAME\\); ' +
          `the report is kept in ${spool.rejectedDir}/.*; 2 reports wait`,
      ),
    );
    assert.deepEqual(
      (await spool.rejected()).map((e) => e.reportId),
      ids.slice(0, 1),
    );
    assert.deepEqual(
      (await spool.pending()).map((e) => e.reportId),
      ids.slice(1),
    );
  });

  it('413 refuses only that report: it is moved aside and the next ones are sent', async () => {
    const { spool, ids } = await spoolWith(3);
    const tooBig = ids[1];
    receiver.script = (u) =>
      u.reportId === tooBig
        ? { status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE', message: 'over 32 MiB' } } }
        : undefined;
    const r = await deliver(spool);
    assert.deepEqual(
      r.sent.map((s) => s.reportId),
      [ids[0], ids[2]],
    );
    assert.equal(r.rejected, 1);
    assert.match(r.lines.join('\n'), /larger than the server .* accepts \(HTTP 413: over 32 MiB\)/);
    assert.deepEqual(
      (await spool.rejected()).map((e) => e.reportId),
      [tooBig],
    );
    assert.deepEqual(await spool.pending(), []);
  });

  it('a resend is harmless: 200 (already stored) removes it, and the server stored it once', async () => {
    receiver.script = undefined;
    const upload = uploadOf();
    const spool = new ReportSpool(path.join(home, `spool-${++spools}`));
    await spool.add(upload);
    assert.equal((await deliver(spool)).sent.length, 1);
    // As if the run had stopped between the server's answer and the removal.
    await spool.add(upload);
    const from = receiver.received.length;
    const r = await deliver(spool);
    assert.deepEqual(
      receiver.received.slice(from).map((u) => [u.reportId, u.status]),
      [[upload.reportId, 200]],
    );
    assert.equal(r.sent.length, 1);
    assert.deepEqual(await spool.pending(), []);
    assert.equal(receiver.stored.filter((id) => id === upload.reportId).length, 1);
  });

  it('a receipt for another report, or no receipt at all, keeps the report', async () => {
    for (const body of [
      { host: 'h', reportId: uploadOf().reportId, verdict: 'clean', receivedAt: '2026-12-06T17:00:00Z' },
      { ok: true },
    ]) {
      receiver.script = () => ({ status: 201, body });
      const { spool } = await spoolWith(1);
      const r = await deliver(spool);
      assert.equal(r.sent.length, 0);
      assert.equal(r.waiting, 1);
      assert.equal((await spool.pending()).length, 1);
    }
  });

  it('a damaged spooled file is moved aside; the others are still sent', async () => {
    receiver.script = undefined;
    const { spool, ids } = await spoolWith(2);
    const [first] = await spool.pending();
    fs.writeFileSync(first?.file ?? '', '{"reportId": "not a report"');
    const r = await deliver(spool);
    assert.deepEqual(
      r.sent.map((s) => s.reportId),
      ids.slice(1),
    );
    assert.match(r.lines.join('\n'), /cannot be read.*: not sent; the report is kept in .*rejected/);
    assert.deepEqual(
      (await spool.rejected()).map((e) => e.reportId),
      ids.slice(0, 1),
    );
  });

  it('starts no request past its deadline', async () => {
    receiver.script = undefined;
    const { spool } = await spoolWith(2);
    const from = receiver.received.length;
    const r = await deliver(spool, receiver.url, Date.now() - 1);
    assert.equal(receiver.received.length, from);
    assert.equal(r.waiting, 2);
    assert.match(r.lines.join('\n'), /time limit; 2 reports wait/);
  });
});
