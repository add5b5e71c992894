import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '@sysattest/core';
import { SERVER_NODE } from '../testkit/e2e.js';

const bin = fileURLToPath(new URL('../../bin/sysattest.js', import.meta.url));
const serverBin = fileURLToPath(new URL('../../../server/bin/sysattest-server.js', import.meta.url));

/** `sysattest trust …` as a user runs it, with `--from-server` against a real server process. */
describe('sysattest trust', { skip: !fs.existsSync(serverBin) && 'the server is not built' }, () => {
  let dir: string;
  let home: string;
  let keyFile: string;
  let fingerprint: string;
  let otherFingerprint: string;
  let server: ChildProcess;
  let url: string;

  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], {
      encoding: 'utf8',
      env: { ...process.env, SYSATTEST_CLIENT_HOME: home, SYSATTEST_CONFIG: '' },
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-trust-cli-'));
    home = path.join(dir, 'home');
    const k = await generateSigningKey({ name: 'served generator' });
    fingerprint = k.fingerprint;
    keyFile = path.join(dir, 'generator.asc');
    fs.writeFileSync(keyFile, k.armoredPublicKey);
    otherFingerprint = (await generateSigningKey({ name: 'other' })).fingerprint;
    server = spawn(
      SERVER_NODE,
      [serverBin, 'serve', '--port', '0', '--database', path.join(dir, 'db.sqlite'), '--trust-key', keyFile],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1] as string);
      });
      server.once('exit', (code) => reject(new Error(`server exited ${code}`)));
    });
  });
  after(() => {
    server?.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('--from-server with a fingerprint the server does not have pins nothing', () => {
    const r = run(['trust', 'add', '--from-server', url, '--fingerprint', otherFingerprint]);
    assert.equal(r.code, 65);
    assert.match(r.stderr, new RegExp(`offers no key ${otherFingerprint}.*nothing pinned`));
    assert.equal(run(['trust', 'list', '--json']).stdout.trim(), '{"keys":[]}');
  });

  it('--from-server without a fingerprint is a usage error: a key is never taken on the server’s say-so', () => {
    const r = run(['trust', 'add', '--from-server', url]);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /needs --fingerprint/);
  });

  it('--from-server with the right fingerprint (any case, spaces) pins that key; list and remove', () => {
    const spaced = fingerprint.toLowerCase().replace(/(.{4})/g, '$1 ');
    const r = run(['trust', 'add', '--from-server', url, '--fingerprint', spaced]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`pinned ${fingerprint}`));
    const list = run(['trust', 'list']);
    assert.match(list.stdout, new RegExp(`^${fingerprint}\\t`));
    assert.equal(run(['trust', 'remove', fingerprint]).code, 0);
    assert.equal(run(['trust', 'list', '--json']).stdout.trim(), '{"keys":[]}');
    const again = run(['trust', 'remove', fingerprint]);
    assert.equal(again.code, 65);
    assert.match(again.stderr, /not pinned/);
  });

  it('a key file with --fingerprint is pinned only if it is that key', () => {
    const wrong = run(['trust', 'add', keyFile, '--fingerprint', otherFingerprint]);
    assert.equal(wrong.code, 65);
    assert.match(wrong.stderr, /nothing pinned/);
    const ok = run(['trust', 'add', keyFile]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(run(['trust', 'list']).stdout, new RegExp(fingerprint));
  });
});
