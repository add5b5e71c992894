import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/sysattest-server.js', import.meta.url));

it('sysattest-server --help describes the server', () => {
  const r = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: sysattest-server/);
  assert.match(r.stdout, /manifests/);
});
