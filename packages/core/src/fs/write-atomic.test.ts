import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { it } from 'node:test';
import { writeFileAtomic } from './write-atomic.js';

it('writeFileAtomic replaces a file whole, with the mode asked, and leaves no temporary file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-atomic-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'sub', 'state.json');
  const umask = process.umask(0o077);
  try {
    await writeFileAtomic(file, 'one', { mode: 0o644 });
  } finally {
    process.umask(umask);
  }
  assert.equal(fs.readFileSync(file, 'utf8'), 'one');
  assert.equal(fs.statSync(file).mode & 0o777, 0o644, 'the umask does not change the mode asked for');
  await writeFileAtomic(file, new Uint8Array([1, 2, 3]), { mode: 0o600 });
  assert.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  // A failed write (the target is a directory) leaves the directory as it was and no temp file.
  const target = path.join(dir, 'sub', 'adir');
  fs.mkdirSync(path.join(target, 'inside'), { recursive: true });
  await assert.rejects(writeFileAtomic(target, 'x'));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'sub')).sort(), ['adir', 'state.json']);
});
