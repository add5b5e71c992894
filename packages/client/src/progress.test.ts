import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { ProgressBar, formatBytes } from './progress.js';

const CLEAR_TO_END = '\u001b[K';

/** A terminal-like stream that records what was written. */
function fakeTerminal(columns = 80): NodeJS.WriteStream & { out: string[] } {
  const out: string[] = [];
  return {
    isTTY: true,
    columns,
    out,
    write(s: string) {
      out.push(s);
      return true;
    },
  } as unknown as NodeJS.WriteStream & { out: string[] };
}

describe('progress bar', () => {
  it('draws files done/total, bytes and a bar on one line, redrawn in place, cleared when done', () => {
    const t = fakeTerminal();
    const bar = new ProgressBar(t);
    bar.update({ filesDone: 0, filesTotal: 1000, bytesDone: 0 });
    assert.equal(t.out[0], `\r[${'.'.repeat(24)}] 0/1000 files, 0 B${CLEAR_TO_END}`);
    bar.update({ filesDone: 1000, filesTotal: 1000, bytesDone: 5 * 1024 * 1024 * 1024 });
    assert.equal(t.out[1], `\r[${'#'.repeat(24)}] 1000/1000 files, 5.0 GiB${CLEAR_TO_END}`);
    bar.done();
    assert.equal(t.out[2], '\r\u001b[K');
    bar.done();
    assert.equal(t.out.length, 3, 'nothing more to clear');
  });

  it('redraws at most ten times a second, and never wider than the terminal', () => {
    const t = fakeTerminal(30);
    const bar = new ProgressBar(t);
    for (let i = 0; i < 500; i++) bar.update({ filesDone: i, filesTotal: 1000, bytesDone: i * 4096 });
    assert.equal(t.out.length, 1, 'a burst of updates is one redraw');
    for (const line of t.out) {
      const visible = line.replace('\r', '').replace('\u001b[K', '');
      assert.ok(visible.length <= 29, visible);
    }
  });

  it('shows an ETA once there is a rate to go by', async () => {
    const t = fakeTerminal(200);
    const bar = new ProgressBar(t);
    await new Promise((r) => setTimeout(r, 150));
    bar.update({ filesDone: 250, filesTotal: 1000, bytesDone: 1 });
    assert.match(t.out.at(-1) as string, /ETA \d+ s/);
  });

  it('formats bytes in binary units', () => {
    assert.equal(formatBytes(512), '512 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(3 * 1024 ** 4), '3.0 TiB');
  });

  it('is drawn on a terminal and not on a pipe (a real pseudo-terminal, through script(1))', () => {
    const module = fileURLToPath(new URL('./progress.js', import.meta.url));
    const probe = `import { ProgressBar } from ${JSON.stringify(module)};
      const bar = ProgressBar.forStderr();
      process.stdout.write(bar === undefined ? 'none' : 'bar');
      bar?.update({ filesDone: 1, filesTotal: 2, bytesDone: 10 }); bar?.done();`;
    const file = fileURLToPath(new URL('./progress-probe.mjs', import.meta.url));
    fs.writeFileSync(file, probe);
    try {
      const piped = spawnSync(process.execPath, [file], { encoding: 'utf8' });
      assert.equal(piped.stdout, 'none');
      assert.equal(piped.stderr, '', 'nothing on a pipe');
      if (!fs.existsSync('/usr/bin/script')) throw new Error('needs script(1) (util-linux)');
      const tty = spawnSync('/usr/bin/script', ['-qec', `${process.execPath} ${file}`, '/dev/null'], {
        encoding: 'utf8',
      });
      assert.match(tty.stdout, /bar/);
      assert.match(tty.stdout, /1\/2 files, 10 B/);
    } finally {
      fs.rmSync(file, { force: true });
    }
  });
});
