import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { describeCommand, spawnCapture, stderrTail } from './process.js';
import { makeTempDir, mountsUnder, removeTempDir } from './tempdir.js';
import { withInterrupt, throwIfAborted } from './interrupt.js';
import { GeneratorError } from '../errors.js';

describe('spawnCapture', () => {
  it('runs argv without a shell and captures stdout, stderr and the exit status', async () => {
    const r = await spawnCapture(process.execPath, [
      '-e',
      'process.stdout.write("out $HOME;"); process.stderr.write("err\\n"); process.exit(3)',
    ]);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out $HOME;', 'no shell expansion');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.timedOut, false);
    assert.equal(r.aborted, false);
  });

  it('feeds input on stdin', async () => {
    const r = await spawnCapture('cat', [], { input: 'hello\nworld' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'hello\nworld');
  });

  it('keeps the head of stdout and the tail of stderr within their caps', async () => {
    const r = await spawnCapture(
      process.execPath,
      [
        '-e',
        'process.stdout.write("a".repeat(5000) + "END"); process.stderr.write("S".repeat(5000) + "LAST")',
      ],
      { maxStdoutBytes: 1000, maxStderrBytes: 100 },
    );
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stdoutTruncated, true);
    assert.ok(r.stdout.startsWith('aaa'));
    assert.equal(r.stderr.length, 100);
    assert.ok(r.stderr.endsWith('LAST'));
  });

  it('reports lines as they arrive', async () => {
    const lines: string[] = [];
    await spawnCapture(
      process.execPath,
      ['-e', 'console.error("one"); console.error("two"); process.stderr.write("three")'],
      {
        onStderrLine: (l) => lines.push(l),
      },
    );
    assert.deepEqual(lines, ['one', 'two', 'three']);
  });

  it('kills a child that runs past its time limit', async () => {
    const started = Date.now();
    const r = await spawnCapture('sleep', ['30'], { timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.equal(r.exitSignal, 'SIGTERM');
    assert.ok(Date.now() - started < 5000);
  });

  it('kills the child when the signal aborts, and does not start one when already aborted', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const r = await spawnCapture('sleep', ['30'], { signal: ac.signal });
    assert.equal(r.aborted, true);
    const again = await spawnCapture('sleep', ['30'], { signal: ac.signal });
    assert.equal(again.aborted, true);
    assert.equal(again.durationMs, 0);
  });

  it('escalates to SIGKILL when the child ignores SIGTERM', async () => {
    // Killed once it says it ignores SIGTERM, not after a fixed time: on a loaded machine node can
    // take longer than that to start, and a SIGTERM before its handler is installed ends it.
    const ac = new AbortController();
    const r = await spawnCapture(
      process.execPath,
      ['-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)'],
      { signal: ac.signal, killGraceMs: 300, onStdoutLine: (l) => l === 'ready' && ac.abort() },
    );
    assert.equal(r.aborted, true);
    assert.equal(r.exitSignal, 'SIGKILL');
  });

  it('rejects with the spawn error when the program does not exist', async () => {
    await assert.rejects(spawnCapture('/nonexistent/program', []), { code: 'ENOENT' });
  });
});

describe('stderrTail and describeCommand', () => {
  it('keeps the last lines on one line and drops podman warning noise', () => {
    const stderr = [
      'time="2026-11-25T15:44:25Z" level=warning msg="Error validating CNI config file"',
      'E: first',
      '',
      'E: second',
    ].join('\n');
    assert.equal(stderrTail(stderr), 'E: first | E: second');
    assert.equal(stderrTail(''), '');
    const long = stderrTail('x'.repeat(2000), 50);
    assert.ok(long.length <= 51 && long.startsWith('…'));
  });

  it('quotes words that need it and cuts long command lines', () => {
    assert.equal(describeCommand('podman', ['run', '--rm', 'a b']), 'podman run --rm "a b"');
    assert.ok(describeCommand('x', ['y'.repeat(500)], 40).length <= 40);
  });
});

describe('temporary directories', () => {
  it('makes sysattest-* directories and removes them', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-tmptest-'));
    try {
      const dir = await makeTempDir('unit', parent);
      assert.match(path.basename(dir), /^sysattest-unit-/);
      assert.equal(fs.statSync(dir).mode & 0o777, 0o755);
      fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
      await removeTempDir(dir);
      assert.equal(fs.existsSync(dir), false);
      await removeTempDir(dir); // already gone: fine
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });

  it('finds mount points under a directory and refuses to delete it while something is mounted', async () => {
    const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-tmptest-'));
    try {
      const info = path.join(parent, 'mountinfo');
      fs.writeFileSync(
        info,
        [
          '22 1 0:21 / /proc rw - proc proc rw',
          `90 22 0:5 / ${parent}/root/dev rw - devtmpfs udev rw`,
          `91 22 0:5 / ${parent}/root/with\\040space rw - tmpfs x rw`,
          `92 22 0:5 / ${parent}/rootother rw - tmpfs x rw`,
        ].join('\n'),
      );
      assert.deepEqual(await mountsUnder(path.join(parent, 'root'), info), [
        `${parent}/root/with space`,
        `${parent}/root/dev`,
      ]);
      // /proc is mounted in every namespace: removeTempDir refuses to touch it.
      await assert.rejects(removeTempDir('/proc'), (e: unknown) => {
        assert.ok(e instanceof GeneratorError);
        assert.match(e.message, /refusing to delete \/proc: \/proc is still mounted/);
        return true;
      });
    } finally {
      fs.rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('withInterrupt', () => {
  it('turns SIGINT into an abort, lets the work clean up, then throws INTERRUPTED', async () => {
    const events: string[] = [];
    const before = process.listenerCount('SIGINT');
    await assert.rejects(
      withInterrupt(
        async (signal) => {
          try {
            setTimeout(() => process.emit('SIGINT', 'SIGINT'), 20);
            await new Promise((_resolve, reject) =>
              signal.addEventListener('abort', () => reject(signal.reason)),
            );
          } finally {
            events.push('cleaned up');
          }
        },
        { onInterrupt: (s) => events.push(`got ${s}`) },
      ),
      (e: unknown) => e instanceof GeneratorError && e.code === 'INTERRUPTED' && /SIGINT/.test(e.message),
    );
    assert.deepEqual(events, ['got SIGINT', 'cleaned up']);
    assert.equal(process.listenerCount('SIGINT'), before, 'handlers removed');
  });

  it('passes results and other errors through', async () => {
    assert.equal(await withInterrupt(async () => 42), 42);
    await assert.rejects(
      withInterrupt(async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
  });

  it('throwIfAborted throws INTERRUPTED only for an aborted signal', () => {
    throwIfAborted(undefined);
    const ac = new AbortController();
    throwIfAborted(ac.signal);
    ac.abort();
    assert.throws(() => throwIfAborted(ac.signal), { code: 'INTERRUPTED' });
  });
});
