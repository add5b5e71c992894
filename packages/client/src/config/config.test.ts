import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from './config.js';

describe('client configuration', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-config-'));
  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it('reads a file, and the environment overrides it', () => {
    const file = write(
      'ok.json',
      JSON.stringify({ server: 'https://a.example', jobs: 2, scanDirs: ['/opt/bin'] }),
    );
    assert.deepEqual(loadConfig({ file, env: {} }), {
      server: 'https://a.example',
      jobs: 2,
      scanDirs: ['/opt/bin'],
    });
    const c = loadConfig({ file, env: { SYSATTEST_SERVER: 'http://b.example:8080', SYSATTEST_JOBS: '4' } });
    assert.equal(c.server, 'http://b.example:8080');
    assert.equal(c.jobs, 4);
  });

  it('refuses unknown keys, bad values and non-JSON, naming the file and the key (exit 64)', () => {
    const cases: [string, RegExp][] = [
      [JSON.stringify({ sever: 'https://a.example' }), /Unrecognized key.*sever/i],
      [JSON.stringify({ server: 'ftp://a.example' }), /server: must be an http/],
      [JSON.stringify({ server: 'https://user:pw@a.example' }), /without credentials/],
      [JSON.stringify({ jobs: 0 }), /jobs/],
      [JSON.stringify({ keyring: 'relative.asc' }), /keyring: must be an absolute path/],
      ['{ not json', /is not JSON/],
    ];
    for (const [i, [text, message]] of cases.entries()) {
      const file = write(`bad-${i}.json`, text);
      assert.throws(
        () => loadConfig({ file, env: {} }),
        (e: unknown) =>
          e instanceof ConfigError &&
          e.exitCode === 64 &&
          message.test(e.message) &&
          e.message.includes(file),
        text,
      );
    }
  });

  it('an explicit file must exist; the default one may not', () => {
    assert.throws(
      () => loadConfig({ file: path.join(dir, 'nope.json'), env: {} }),
      /cannot read config file .*ENOENT/,
    );
    assert.deepEqual(loadConfig({ env: { SYSATTEST_CONFIG: '' } }).server, undefined);
  });

  it('reads the reporting settings from the file and the environment (SYSATTEST_REPORT=1/0)', () => {
    const file = write(
      'report.json',
      JSON.stringify({
        report: true,
        reportTokenFile: '/etc/sysattest/reporter-token',
        stateDir: '/var/lib/x',
      }),
    );
    assert.deepEqual(loadConfig({ file, env: {} }), {
      report: true,
      reportTokenFile: '/etc/sysattest/reporter-token',
      stateDir: '/var/lib/x',
    });
    const c = loadConfig({
      file,
      env: { SYSATTEST_REPORT: '0', SYSATTEST_REPORT_TOKEN_FILE: '/t', SYSATTEST_STATE_DIR: '/s' },
    });
    assert.deepEqual([c.report, c.reportTokenFile, c.stateDir], [false, '/t', '/s']);
    for (const [text, value] of [
      ['1', true],
      ['yes', true],
      ['TRUE', true],
      ['no', false],
    ] as const) {
      assert.equal(loadConfig({ file, env: { SYSATTEST_REPORT: text } }).report, value, text);
    }
    assert.throws(() => loadConfig({ file, env: { SYSATTEST_REPORT: 'maybe' } }), /SYSATTEST_REPORT/);
    assert.throws(
      () => loadConfig({ file: write('rel.json', JSON.stringify({ reportTokenFile: 'token' })), env: {} }),
      /reportTokenFile: must be an absolute path/,
    );
  });

  it('refuses bad environment values naming the variable', () => {
    assert.throws(
      () => loadConfig({ file: write('empty.json', '{}'), env: { SYSATTEST_TIMEOUT: 'soon' } }),
      /SYSATTEST_TIMEOUT/,
    );
  });
});
