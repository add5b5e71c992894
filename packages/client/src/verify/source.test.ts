import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { DirectoryManifestSource } from './source.js';

describe('DirectoryManifestSource', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-source-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const platform = { distro: 'debian', release: 'bookworm', arch: 'amd64' };
  const amd64 = path.join(dir, 'debian/bookworm/amd64');
  fs.mkdirSync(amd64, { recursive: true });
  fs.writeFileSync(path.join(amd64, 'bash_5.2.15-2+b2_amd64.json'), '{}');
  fs.writeFileSync(path.join(amd64, 'bash_5.2.15-2+b2_amd64.json.asc'), 'SIG');
  fs.writeFileSync(path.join(amd64, 'nosig_1_amd64.json'), '{}');
  fs.writeFileSync(path.join(amd64, 'epoch_1%3a2.0_amd64.json'), '{"e":1}');
  fs.writeFileSync(path.join(amd64, 'epoch_1%3a2.0_amd64.json.asc'), 'SIG2');

  it('reads the generator layout, one result per item in order', async () => {
    const source = new DirectoryManifestSource(dir);
    const results = await source.fetch(platform, [
      { name: 'bash', version: '5.2.15-2+b2', arch: 'amd64' },
      { name: 'nosig', version: '1', arch: 'amd64' },
      { name: 'absent', version: '1', arch: 'amd64' },
      { name: 'epoch', version: '1:2.0', arch: 'amd64' },
      { name: 'base-files', version: '12.4', arch: 'all' },
      { name: 'x', version: '1/../../../../etc/passwd', arch: 'amd64' },
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['ok', 'not-in-catalog', 'not-in-catalog', 'ok', 'unknown-platform', 'not-in-catalog'],
    );
    const first = results[0];
    assert.ok(first?.status === 'ok');
    assert.equal(Buffer.from(first.bytes).toString(), '{}');
    assert.equal(first.signature, 'SIG');
    const epoch = results[3];
    assert.ok(epoch?.status === 'ok');
    assert.equal(epoch.signature, 'SIG2');
  });
});
