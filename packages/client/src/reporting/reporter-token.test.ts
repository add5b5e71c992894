import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError } from '../config/index.js';
import { defaultReporterTokenFile, readReporterToken } from './reporter-token.js';

describe('the reporter token file', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-token-'));
  const tokenFile = (name: string, text: string, mode: number): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text, { mode });
    fs.chmodSync(file, mode);
    return file;
  };
  const refused = (file: string, message: RegExp): void => {
    assert.throws(
      () => readReporterToken(file),
      (e: unknown) =>
        e instanceof ConfigError && e.exitCode === 64 && e.message.includes(file) && message.test(e.message),
    );
  };

  it('is read when only its owner may read it (the trailing newline of `echo` is no part of it)', () => {
    assert.equal(readReporterToken(tokenFile('ok', 'sat_abc123\n', 0o600)), 'sat_abc123');
    assert.equal(readReporterToken(tokenFile('ro', 'sat_abc123', 0o400)), 'sat_abc123');
  });

  it('is refused when group or others may read or write it, saying chmod 600', () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      const file = tokenFile(`mode-${mode.toString(8)}`, 'sat_abc123\n', mode);
      refused(
        file,
        new RegExp(`may be read or written by others \\(mode 0${mode.toString(8)}\\): refused; chmod 600`),
      );
    }
  });

  it('is refused when missing (saying how to make it), a symbolic link, a directory, or not one token', () => {
    refused(path.join(dir, 'none'), /does not exist: put the token .*--role reporter --host NAME/);
    const link = path.join(dir, 'link');
    fs.symlinkSync(tokenFile('target', 'sat_abc123\n', 0o600), link);
    refused(link, /is a symbolic link/);
    const sub = path.join(dir, 'sub');
    fs.mkdirSync(sub, { mode: 0o700 });
    refused(sub, /is not a regular file/);
    refused(tokenFile('empty', '\n', 0o600), /does not hold one token/);
    refused(tokenFile('two', 'one two\n', 0o600), /does not hold one token/);
  });

  it('is refused when another user owns it (as root: a file another account could replace)', (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to give the file away');
    const file = tokenFile('theirs', 'sat_abc123\n', 0o600);
    fs.chownSync(file, 65534, 65534);
    refused(file, /belongs to uid 65534, not to the user running sysattest \(uid 0\)/);
  });

  it('lives in the client home by default', () => {
    assert.equal(defaultReporterTokenFile({ SYSATTEST_CLIENT_HOME: '/h' }), '/h/reporter-token');
    assert.equal(defaultReporterTokenFile({ XDG_CONFIG_HOME: '/cfg' }), '/cfg/sysattest/reporter-token');
  });
});
