import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { KeyError, generateSigningKey } from '@sysattest/core';
import { loadSigningKey } from './signing-key.js';

describe('loadSigningKey', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-signing-key-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const keyError = (pattern: RegExp) => (e: unknown) =>
    e instanceof KeyError && e.code === 'KEY_FILE_ERROR' && pattern.test(e.message);

  it('loads a key, unlocking it with the passphrase file', async () => {
    const k = await generateSigningKey({ name: 'load test', passphrase: 'open sesame' });
    const file = path.join(dir, 'key.asc');
    fs.writeFileSync(file, k.armoredSecretKey, { mode: 0o600 });
    const passphraseFile = path.join(dir, 'passphrase');
    fs.writeFileSync(passphraseFile, 'open sesame\n');
    assert.equal((await loadSigningKey(file, passphraseFile)).fingerprint, k.fingerprint);
  });

  it('says how to make a key when there is none (also behind a dangling symlink)', async () => {
    const missing = path.join(dir, 'none.asc');
    await assert.rejects(loadSigningKey(missing, undefined), keyError(/^no signing key at .*key generate/));
    const link = path.join(dir, 'dangling.asc');
    fs.symlinkSync(missing, link);
    await assert.rejects(loadSigningKey(link, undefined), keyError(/^no signing key at /));
  });

  it('does not call a file that exists but is no key file "missing"', async () => {
    await assert.rejects(loadSigningKey(dir, undefined), keyError(/is not a regular file/));
  });
});
