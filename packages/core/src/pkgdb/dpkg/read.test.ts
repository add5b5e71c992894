import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { PackageDatabaseError } from '../../errors.js';
import { readDatabaseText } from './read.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-dpkg-read-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Buffer): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
}

describe('readDatabaseText', () => {
  it('reads files of every size around the scratch buffer’s, and again after a big one', () => {
    for (const size of [0, 1, 256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1, 5 * 1024 * 1024 + 3, 100]) {
      const content = 'x'.repeat(Math.max(0, size - 1)) + (size > 0 ? '\n' : '');
      assert.equal(
        readDatabaseText(file(`size-${size}`, content), 64 * 1024 * 1024),
        content,
        `size ${size}`,
      );
    }
  });

  it('decodes UTF-8', () => {
    assert.equal(readDatabaseText(file('utf8', 'Débian ✓\n'), 100), 'Débian ✓\n');
  });

  it('a missing file is undefined', () => {
    assert.equal(readDatabaseText(path.join(dir, 'missing'), 100), undefined);
  });

  it('a file over the cap is DATABASE_TOO_LARGE, with its size when known', () => {
    const small = file('big-small-cap', 'x'.repeat(1000));
    assert.throws(
      () => readDatabaseText(small, 999),
      (e: unknown) =>
        e instanceof PackageDatabaseError &&
        e.code === 'DATABASE_TOO_LARGE' &&
        e.file === small &&
        /1000 bytes, more than the 999 bytes/.test(e.message),
    );
    const big = file('big-big-cap', 'x'.repeat(600 * 1024));
    assert.throws(() => readDatabaseText(big, 300 * 1024), { code: 'DATABASE_TOO_LARGE' });
    assert.equal(readDatabaseText(big, 600 * 1024)?.length, 600 * 1024);
  });

  it('a directory or a symlink is refused', () => {
    const sub = path.join(dir, 'a-directory');
    fs.mkdirSync(sub);
    assert.throws(() => readDatabaseText(sub, 100), {
      code: 'DATABASE_CORRUPT',
      message: /not a regular file/,
    });
    const link = path.join(dir, 'a-link');
    fs.symlinkSync(file('target', 'x\n'), link);
    assert.throws(() => readDatabaseText(link, 100), { code: 'DATABASE_CORRUPT', message: /symbolic link/ });
  });
});
