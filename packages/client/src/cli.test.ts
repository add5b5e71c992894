import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  SigningKey,
  generateSigningKey,
  manifestFileName,
  signManifest,
  type Manifest,
} from '@sysattest/core';

const bin = fileURLToPath(new URL('../bin/sysattest.js', import.meta.url));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('sysattest CLI', () => {
  it('prints help naming its commands', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: sysattest/);
    assert.match(r.stdout, /platform/);
    assert.match(r.stdout, /manifest/);
  });

  it('verify --help lists the reporting flags and settings', () => {
    const r = run(['verify', '--help']);
    assert.equal(r.code, 0);
    for (const flag of ['--report ', '--no-report ', '--report-token-file <file>'])
      assert.ok(r.stdout.includes(flag), flag);
    for (const setting of ['reportTokenFile', 'stateDir', 'SYSATTEST_REPORT ', 'SYSATTEST_REPORT_TOKEN_FILE'])
      assert.ok(r.stdout.includes(setting), setting);
  });

  it('detects this machine’s platform like dpkg and os-release do', () => {
    const r = run(['platform', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { primary: string };
    const osRelease = fs.readFileSync('/etc/os-release', 'utf8');
    const id = /^ID=(.*)$/m.exec(osRelease)?.[1]?.replace(/"/g, '');
    const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
    assert.match(out.primary, new RegExp(`^${id}/[a-z0-9.]+/${arch}$`));
  });

  it('fails with one clear line on a root that does not exist', () => {
    const r = run(['platform', '--root', '/nonexistent/sysattest-root']);
    assert.equal(r.code, 65);
    assert.match(r.stderr, /^sysattest: .*nonexistent/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  describe('manifest verify', () => {
    let dir: string;
    let file: string;
    let keyring: string;
    let otherKeyring: string;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-client-cli-'));
      const k = await generateSigningKey({ name: 'client cli test' });
      const key = await SigningKey.fromArmored(k.armoredSecretKey);
      const manifest: Manifest = {
        schema: 'sysattest.manifest',
        schemaVersion: 1,
        platform: 'debian/bookworm/all',
        package: {
          name: 'base-files',
          version: '12.4+deb12u5',
          architecture: 'all',
          source: { name: 'base-files', version: '12.4+deb12u5' },
        },
        provenance: {
          generatedAt: '2026-11-25T12:00:00Z',
          generator: { name: 'sysattest-generator', version: '0.1.0' },
          keyFingerprint: key.fingerprint,
          image: { id: 'test-image' },
          installer: 'apt 2.6.1',
        },
        entries: [
          {
            type: 'file',
            path: '/etc/debian_version',
            mode: '0644',
            uid: 0,
            gid: 0,
            size: 5,
            sha256: 'a'.repeat(64),
          },
        ],
      };
      const signed = await signManifest(manifest, key);
      file = path.join(dir, manifestFileName(manifest.package));
      fs.writeFileSync(file, signed.bytes);
      fs.writeFileSync(`${file}.asc`, signed.signature);
      keyring = path.join(dir, 'trusted.asc');
      fs.writeFileSync(keyring, k.armoredPublicKey);
      otherKeyring = path.join(dir, 'other.asc');
      fs.writeFileSync(otherKeyring, (await generateSigningKey({ name: 'other' })).armoredPublicKey);
      return () => fs.rmSync(dir, { recursive: true, force: true });
    });

    it('accepts a good manifest and names the signer', () => {
      const r = run(['manifest', 'verify', file, '--keyring', keyring, '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { entries: number; signer: string; package: { name: string } };
      assert.equal(out.entries, 1);
      assert.equal(out.package.name, 'base-files');
      assert.match(out.signer, /^[0-9A-F]{40}$/);
    });

    it('refuses a manifest signed by a key that is not pinned, with one line and exit 3', () => {
      const r = run(['manifest', 'verify', file, '--keyring', otherKeyring]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /^sysattest: .*base-files_[^ ]*\.json: .*not a pinned key/);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    });

    it('refuses a tampered manifest', () => {
      const tampered = path.join(dir, 'tampered.json');
      fs.writeFileSync(tampered, fs.readFileSync(file, 'utf8').replace('"size":5', '"size":6'));
      fs.copyFileSync(`${file}.asc`, `${tampered}.asc`);
      const r = run(['manifest', 'verify', tampered, '--keyring', keyring]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /^sysattest: .*tampered\.json: .*signature/i);
    });

    it('says which file is missing', () => {
      const r = run(['manifest', 'verify', path.join(dir, 'nope.json'), '--keyring', keyring]);
      assert.equal(r.code, 65);
      assert.match(r.stderr, /nope\.json/);
    });
  });
});
