import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ConfigError } from '../config/index.js';
import { startReportReceiver, type ReportReceiver } from '../testkit/report-receiver.js';
import { cleanReport } from '../testkit/verify-reports.js';
import { prepareReporting, submitReport } from './host-reporting.js';

describe('reporting a verify run', () => {
  let receiver: ReportReceiver;
  let dir: string;
  let tokenFile: string;

  before(async () => {
    receiver = await startReportReceiver();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-host-reporting-'));
    tokenFile = path.join(dir, 'reporter-token');
    fs.writeFileSync(tokenFile, 'reporter-secret\n', { mode: 0o600 });
  });
  after(async () => {
    await receiver.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is off unless asked for, and --no-report wins over the config', () => {
    const log = (): void => undefined;
    assert.equal(prepareReporting({}, { server: receiver.url }, log), undefined);
    assert.equal(prepareReporting({ report: true }, { server: receiver.url, report: false }, log), undefined);
    assert.ok(prepareReporting({ report: true, reportTokenFile: tokenFile }, { server: receiver.url }, log));
  });

  it('needs the token file only when it is going to send (--offline only spools)', () => {
    const log = (): void => undefined;
    const missing = path.join(dir, 'no-token');
    assert.throws(
      () => prepareReporting({ report: true, reportTokenFile: missing }, { server: receiver.url }, log),
      (e: unknown) => e instanceof ConfigError && e.message.includes(missing),
    );
    const offline = prepareReporting(
      { report: true, reportTokenFile: missing, stateDir: dir },
      { server: receiver.url, offline: true },
      log,
    );
    assert.equal(offline?.client, undefined);
    assert.equal(offline?.spool.dir, path.join(dir, 'report-spool'));
  });

  it('a spool that cannot be written: says so, and sends the report from memory', async () => {
    const stateDir = path.join(dir, 'state-is-a-file');
    fs.writeFileSync(stateDir, '');
    const lines: string[] = [];
    const reporting = prepareReporting(
      { report: true, reportTokenFile: tokenFile, stateDir },
      { server: receiver.url },
      (l) => lines.push(l),
    );
    assert.ok(reporting);
    const from = receiver.received.length;
    await submitReport(reporting, cleanReport());
    assert.equal(receiver.received.length, from + 1);
    assert.match(
      lines[0] ?? '',
      /^cannot keep the report in .*state-is-a-file\/report-spool \(ENOTDIR\): sending it without a copy$/,
    );
    assert.match(lines[1] ?? '', /^report sent to .* as host test-host \(verdict clean\)$/);
  });

  it('a report the server would refuse (its summary disagrees with its lists) is neither sent nor spooled: a bug', async () => {
    const lines: string[] = [];
    const stateDir = path.join(dir, 'state-bug');
    const reporting = prepareReporting(
      { report: true, reportTokenFile: tokenFile, stateDir },
      { server: receiver.url },
      (l) => lines.push(l),
    );
    assert.ok(reporting);
    const report = cleanReport(3);
    report.summary.packages = 4;
    const from = receiver.received.length;
    await submitReport(reporting, report);
    assert.equal(receiver.received.length, from);
    assert.deepEqual(lines, [
      'the report cannot be sent: summary.packages is 4 but the report lists 3 packages (the server would refuse it); it is not kept',
    ]);
    assert.equal(fs.existsSync(path.join(stateDir, 'report-spool')), false);
  });
});
