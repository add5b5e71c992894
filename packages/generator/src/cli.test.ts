import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../bin/sysattest-generator.js', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sysattest-generator CLI', () => {
  it('prints help naming its commands', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: sysattest-generator/);
    assert.match(r.stdout, /key/);
    const k = run(['key', '--help']);
    assert.match(k.stdout, /generate/);
    assert.match(k.stdout, /export/);
  });

  it('exits 2 on an unknown option', () => {
    const r = run(['--frobnicate']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /unknown option/);
  });

  it('generates a key file with mode 0600, refuses to overwrite it, exports a public key gpg imports', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-gen-cli-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const keyFile = path.join(dir, 'keys', 'signing.asc');
    const gen = run(['key', 'generate', '--out', keyFile, '--name', 'CLI test']);
    assert.equal(gen.code, 0, gen.stderr);
    const fpr = gen.stdout.trim();
    assert.match(fpr, /^[0-9A-F]{40}$/);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);

    const again = run(['key', 'generate', '--out', keyFile]);
    assert.equal(again.code, 65);
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
    assert.doesNotMatch(again.stderr, /\n\s+at /, 'no stack trace');

    // The key is found through the environment as well as --key.
    const exported = run(['key', 'export'], { SYSATTEST_GENERATOR_KEY: keyFile });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /BEGIN PGP PUBLIC KEY BLOCK/);
    assert.doesNotMatch(exported.stdout, /PRIVATE/);

    const home = path.join(dir, 'gnupg');
    fs.mkdirSync(home, { mode: 0o700 });
    const imp = spawnSync(
      'gpg',
      ['--homedir', home, '--batch', '--import', '--import-options', 'show-only', '--with-colons'],
      {
        input: exported.stdout,
        encoding: 'utf8',
      },
    );
    assert.equal(imp.status, 0, imp.stderr);
    assert.match(imp.stdout, new RegExp(`^fpr:+${fpr}:`, 'm'));
  });

  it('protects a key with a passphrase from a file; the public key exports without it', (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-gen-cli-'));
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const keyFile = path.join(dir, 'signing.asc');
    const pass = path.join(dir, 'pass');
    fs.writeFileSync(pass, 'correct horse\n');
    assert.equal(run(['key', 'generate', '--out', keyFile, '--passphrase-file', pass]).code, 0);
    assert.match(fs.readFileSync(keyFile, 'utf8'), /BEGIN PGP PRIVATE KEY BLOCK/);
    // The secret key material is encrypted (an S2K specifier is present), as GnuPG sees it.
    const packets = spawnSync('gpg', ['--batch', '--list-packets', keyFile], { encoding: 'utf8' });
    assert.match(packets.stdout, /protected|S2K/i);
    const exported = run(['key', 'export', '--key', keyFile], { SYSATTEST_KEY_PASSPHRASE: '' });
    assert.equal(exported.code, 0, exported.stderr);
    assert.match(exported.stdout, /BEGIN PGP PUBLIC KEY BLOCK/);
  });
});
