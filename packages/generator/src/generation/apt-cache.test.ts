import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { evictions, listCachedDebs, pruneAptCache, type CachedDeb } from './apt-cache.js';
import { CACHE_LOCKS } from './apt-install.js';

const deb = (name: string, bytes: number, lastUsedMs: number): CachedDeb => ({ name, bytes, lastUsedMs });

describe('apt cache eviction rule', () => {
  it('deletes nothing while the cache is within its limit', () => {
    assert.deepEqual(evictions([deb('a.deb', 50, 1), deb('b.deb', 50, 2)], 100), []);
  });

  it('deletes the least recently used first, down to 80 % of the limit', () => {
    const files = [
      deb('new.deb', 40, 30),
      deb('old.deb', 40, 10),
      deb('mid.deb', 40, 20),
      deb('tiny.deb', 1, 5),
    ];
    // 121 bytes over a limit of 100: down to 80 or less, oldest first (tiny, then old).
    assert.deepEqual(
      evictions(files, 100).map((f) => f.name),
      ['tiny.deb', 'old.deb'],
    );
  });
});

describe('apt cache pruning on disk', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-apt-cache-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, bytes: number, ageDays: number) => {
    const p = path.join(dir, name);
    fs.writeFileSync(p, Buffer.alloc(bytes));
    const t = new Date(Date.now() - ageDays * 86_400_000);
    fs.utimesSync(p, t, t);
  };
  file('libold_1_amd64.deb', 4000, 30);
  file('libmid_1_amd64.deb', 4000, 10);
  file('libnew_1_amd64.deb', 4000, 1);
  fs.mkdirSync(path.join(dir, 'partial'));
  fs.writeFileSync(path.join(dir, 'partial', 'half_1_amd64.deb'), Buffer.alloc(9000));
  fs.writeFileSync(path.join(dir, CACHE_LOCKS.download), '');
  fs.writeFileSync(path.join(dir, 'notes.txt'), Buffer.alloc(9000));
  // A link named like a .deb is not a cached file: never followed, never counted, never deleted.
  const outside = path.join(os.tmpdir(), `sysattest-apt-cache-outside-${process.pid}.deb`);
  fs.writeFileSync(outside, Buffer.alloc(9000));
  after(() => fs.rmSync(outside, { force: true }));
  fs.symlinkSync(outside, path.join(dir, 'link_1_amd64.deb'));

  it('counts only the complete .debs directly in the cache', async () => {
    const listed = (await listCachedDebs(dir)).map((f) => f.name).sort();
    assert.deepEqual(listed, ['libmid_1_amd64.deb', 'libnew_1_amd64.deb', 'libold_1_amd64.deb']);
  });

  it('skips the prune while a container holds the cache, and deletes nothing', async () => {
    const holder = spawn('flock', ['--shared', '--close', path.join(dir, CACHE_LOCKS.inUse), 'sleep', '30'], {
      stdio: 'ignore',
    });
    try {
      await waitFor(() => fs.existsSync(path.join(dir, CACHE_LOCKS.inUse)));
      await new Promise((r) => setTimeout(r, 200));
      const r = await pruneAptCache(dir, 10_000);
      assert.deepEqual(r, { totalBytes: 12_000, deleted: 0, freedBytes: 0, busy: true });
      assert.equal(fs.existsSync(path.join(dir, 'libold_1_amd64.deb')), true);
    } finally {
      holder.kill();
      await new Promise((r) => holder.once('exit', r));
    }
  });

  it('deletes the least recently used .debs once the cache is free, and nothing else', async () => {
    // 12,000 bytes over a limit of 9,000: down to 7,200 or less, so two of the three go.
    const r = await pruneAptCache(dir, 9000);
    assert.deepEqual(r, { totalBytes: 12_000, deleted: 2, freedBytes: 8000, busy: false });
    const left = fs.readdirSync(dir).sort();
    assert.deepEqual(
      left,
      [
        'libnew_1_amd64.deb',
        'link_1_amd64.deb',
        'notes.txt',
        'partial',
        CACHE_LOCKS.download,
        CACHE_LOCKS.inUse,
      ].sort(),
    );
    assert.equal(fs.statSync(outside).size, 9000);
    assert.equal(fs.existsSync(path.join(dir, 'partial', 'half_1_amd64.deb')), true);
  });

  it('does nothing to a cache within its limit, or one that does not exist', async () => {
    assert.deepEqual(await pruneAptCache(dir, 10_000), {
      totalBytes: 4000,
      deleted: 0,
      freedBytes: 0,
      busy: false,
    });
    assert.deepEqual(await pruneAptCache(path.join(dir, 'none'), 1), {
      totalBytes: 0,
      deleted: 0,
      freedBytes: 0,
      busy: false,
    });
  });
});

async function waitFor(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
}
