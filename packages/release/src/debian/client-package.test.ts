import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { configSchema } from '@sysattest/client/dist/config/config.js';
import { CACHE_DIR, DEFAULT_CLIENT_CONFIG, REPORTER_TOKEN_FILE, STATE_DIR, maintainerScripts } from './client-package.js';
import { serviceCommand } from '../testkit/systemd-unit.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const unit = serviceCommand(fs.readFileSync(path.join(repoRoot, 'deploy/sysattest-verify.service'), 'utf8'));

/**
 * The packaged configuration against the unit that runs it: under ProtectSystem=strict the only
 * places the check may write are the unit's StateDirectory= and CacheDirectory=, so everything the
 * client writes (pinned keys, the cache seal key, the report spool, the cache) must be there.
 */
describe('the packaged client configuration', () => {
  it('is a valid client configuration, with reporting off and the token at its documented path', () => {
    assert.deepEqual(configSchema.parse(DEFAULT_CLIENT_CONFIG), DEFAULT_CLIENT_CONFIG);
    assert.equal(DEFAULT_CLIENT_CONFIG.report, false);
    assert.equal(DEFAULT_CLIENT_CONFIG.reportTokenFile, '/etc/sysattest/reporter-token');
  });

  it('writes only where the sandboxed unit may: its state directory (keys, seal, spool) and cache directory', () => {
    const writable = unit.directories.map((d) => d.path);
    assert.deepEqual(writable.sort(), [CACHE_DIR, STATE_DIR].sort());
    assert.equal(DEFAULT_CLIENT_CONFIG.stateDir, STATE_DIR, 'the report spool is <stateDir>/report-spool');
    assert.ok(DEFAULT_CLIENT_CONFIG.trustDir.startsWith(`${STATE_DIR}/`));
    assert.equal(DEFAULT_CLIENT_CONFIG.cacheDir, CACHE_DIR);
    assert.deepEqual(
      unit.directories.map((d) => d.mode),
      [0o700, 0o700],
      'the spool and the keys are no one else’s to read',
    );
  });

  it('purge removes the state (spool included) and the reporter token', () => {
    const postrm = maintainerScripts().postrm;
    assert.match(postrm, new RegExp(`rm -rf ${STATE_DIR} ${CACHE_DIR}`));
    assert.match(postrm, new RegExp(`rm -f ${REPORTER_TOKEN_FILE}`));
  });
});
