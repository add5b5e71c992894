import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { cleanReport, uploadOf } from '../testkit/verify-reports.js';
import { ReportSpool, SpoolError } from './report-spool.js';

const T0 = Date.parse('2026-12-06T17:00:00Z');
const at = (seconds: number): Date => new Date(T0 + seconds * 1000);

function newSpool(limits: ConstructorParameters<typeof ReportSpool>[1] = {}): ReportSpool {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-spool-'));
  return new ReportSpool(path.join(home, 'state/report-spool'), limits);
}

describe('the report spool', () => {
  it('keeps each report in a file of its own, 0600 in a 0700 directory, read back as it was', async () => {
    const spool = newSpool();
    const upload = uploadOf();
    const { spooled, dropped } = await spool.add(upload, at(0));
    assert.deepEqual(dropped, []);
    assert.equal(fs.statSync(spooled.file).mode & 0o777, 0o600);
    assert.equal(fs.statSync(spool.dir).mode & 0o777, 0o700);
    assert.deepEqual(fs.readdirSync(spool.dir), [spooled.name], 'no temporary file left');
    assert.deepEqual(await spool.read(spooled), upload);
  });

  it('lists the reports oldest first, whatever order they were written in', async () => {
    const spool = newSpool();
    const [a, b, c] = [uploadOf(), uploadOf(), uploadOf()];
    await spool.add(b, at(20));
    await spool.add(c, at(30));
    await spool.add(a, at(10));
    assert.deepEqual(
      (await spool.pending()).map((e) => e.reportId),
      [a.reportId, b.reportId, c.reportId],
    );
  });

  it('past 20 reports, drops the oldest and says which', async () => {
    const spool = newSpool();
    const ids: string[] = [];
    const dropped: string[] = [];
    for (let i = 0; i < 23; i++) {
      const u = uploadOf();
      ids.push(u.reportId);
      dropped.push(...(await spool.add(u, at(i))).dropped.map((d) => d.reportId));
    }
    assert.deepEqual(dropped, ids.slice(0, 3));
    assert.deepEqual(
      (await spool.pending()).map((e) => e.reportId),
      ids.slice(3),
    );
  });

  it('past its bytes, drops the oldest, never the report just written', async () => {
    const spool = newSpool({ maxBytes: 100_000 });
    const small = uploadOf();
    await spool.add(small, at(0));
    const big = uploadOf(cleanReport(3, 40_000));
    const first = await spool.add(big, at(1));
    assert.deepEqual(first.dropped, [], '~40 kB + a small one fit');
    const bigger = uploadOf(cleanReport(3, 120_000));
    const second = await spool.add(bigger, at(2));
    assert.deepEqual(
      second.dropped.map((d) => d.reportId),
      [small.reportId, big.reportId],
    );
    assert.deepEqual(
      (await spool.pending()).map((e) => e.reportId),
      [bigger.reportId],
      'alone over the bound, and kept',
    );
  });

  it('reads a spooled file as untrusted: damaged, another id, not a report or a symbolic link are refused', async () => {
    const spool = newSpool();
    const { spooled } = await spool.add(uploadOf(), at(0));
    const text = fs.readFileSync(spooled.file, 'utf8');
    const cases: [string, (file: string) => void, RegExp][] = [
      ['truncated', (f) => fs.writeFileSync(f, text.slice(0, 100)), /cannot be read/],
      [
        'another id',
        (f) => fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(text), reportId: uploadOf().reportId })),
        /holds another report/,
      ],
      [
        'not a report',
        (f) => fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(text), report: { schema: 'x' } })),
        /is not a report upload \(report\./,
      ],
      [
        'an extra key',
        (f) => fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(text), host: 'other' })),
        /is not a report upload/,
      ],
    ];
    for (const [what, damage, message] of cases) {
      damage(spooled.file);
      await assert.rejects(
        spool.read(spooled),
        (e: unknown) => e instanceof SpoolError && message.test(e.message),
        what,
      );
    }
    fs.rmSync(spooled.file);
    fs.symlinkSync('/etc/hostname', spooled.file);
    assert.deepEqual(await spool.pending(), [], 'a symbolic link is not a spooled report');
  });

  it('a report another run sent meanwhile is gone, not damaged; what an interrupted write left is swept after an hour', async () => {
    const spool = newSpool();
    const { spooled } = await spool.add(uploadOf(), at(0));
    await spool.remove(spooled);
    assert.equal(await spool.read(spooled), undefined);
    const old = path.join(spool.dir, '.x.json.1.aaaa.tmp');
    const fresh = path.join(spool.dir, '.y.json.1.bbbb.tmp');
    fs.writeFileSync(old, '{');
    fs.writeFileSync(fresh, '{');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    fs.utimesSync(old, twoHoursAgo, twoHoursAgo);
    await spool.add(uploadOf(), at(1));
    assert.equal(fs.existsSync(old), false);
    assert.equal(fs.existsSync(fresh), true, 'maybe another run still writing it');
  });

  it('moves a report aside to rejected/, bounded, and forgets a removed one', async () => {
    const spool = newSpool({ maxRejected: 2 });
    const entries = [];
    for (let i = 0; i < 3; i++) entries.push((await spool.add(uploadOf(), at(i))).spooled);
    const [e0, e1, e2] = entries as [(typeof entries)[0], (typeof entries)[0], (typeof entries)[0]];
    assert.deepEqual((await spool.reject(e0)).dropped, []);
    assert.deepEqual((await spool.reject(e1)).dropped, []);
    const third = await spool.reject(e2);
    assert.deepEqual(
      third.dropped.map((d) => d.reportId),
      [e0.reportId],
    );
    assert.equal(third.file, path.join(spool.dir, 'rejected', e2.name));
    assert.deepEqual(
      (await spool.rejected()).map((e) => e.reportId),
      [e1.reportId, e2.reportId],
    );
    assert.deepEqual(await spool.pending(), []);
    await spool.remove(e0); // already gone: no error
  });
});
