import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { Command } from 'commander';
import { SysattestError } from '../errors.js';
import { EXIT, runCli } from './run-cli.js';

/** A program shaped like the real ones: subcommands two levels deep, added before runCli runs. */
function program(action: () => void): Command {
  const root = new Command('prog').configureOutput({ writeErr: () => undefined });
  const group = root.command('group').configureOutput({ writeErr: () => undefined });
  group
    .command('leaf')
    .option('--count <n>', 'a number')
    .configureOutput({ writeErr: () => undefined })
    .action(action);
  return root;
}

async function exitOf(argv: string[], action: () => void = () => undefined): Promise<number | undefined> {
  const stderr = process.stderr.write.bind(process.stderr);
  process.stderr.write = () => true;
  try {
    await runCli(program(action), ['node', 'prog', ...argv]);
  } finally {
    process.stderr.write = stderr;
  }
  const code = process.exitCode;
  process.exitCode = undefined;
  return typeof code === 'number' ? code : code === undefined ? undefined : Number(code);
}

describe('runCli exit codes', () => {
  afterEach(() => {
    process.exitCode = undefined;
  });

  it('a usage error in a nested subcommand exits 64, like one at the top', async () => {
    assert.equal(await exitOf(['--bogus']), EXIT.USAGE);
    assert.equal(await exitOf(['group', 'leaf', '--bogus']), EXIT.USAGE);
    assert.equal(await exitOf(['group', 'leaf', '--count']), EXIT.USAGE, 'missing option argument');
    assert.equal(await exitOf(['group', 'nope']), EXIT.USAGE);
  });

  it("another copy of commander's errors are still commander's (a global npm install nests copies)", async () => {
    // What a program built with another commander copy throws for --version and for a bad option.
    const foreign = (code: string, exitCode: number) =>
      Object.assign(new Error('0.4.0'), { name: 'CommanderError', code, exitCode });
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw foreign('commander.version', 0);
      }),
      EXIT.OK,
    );
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw foreign('commander.unknownOption', 1);
      }),
      EXIT.USAGE,
    );
  });

  it('success leaves the exit code alone', async () => {
    assert.equal(await exitOf(['group', 'leaf', '--count', '3']), undefined);
  });

  it('an expected failure exits with its own sysexits code, else 65; a bug exits 70', async () => {
    const unavailable = Object.assign(new SysattestError('DOWN', 'server down'), {
      exitCode: EXIT.UNAVAILABLE,
    });
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw unavailable;
      }),
      69,
    );
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw new SysattestError('BAD', 'bad input');
      }),
      EXIT.FAILED,
    );
    // A result code (0–7) is not a failure code: an error claiming one falls back to 65.
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw Object.assign(new SysattestError('ODD', 'odd'), { exitCode: 2 });
      }),
      EXIT.FAILED,
    );
    assert.equal(
      await exitOf(['group', 'leaf'], () => {
        throw new TypeError('oops');
      }),
      EXIT.BUG,
    );
  });
});

describe('runCli and a reader that goes away', () => {
  it('stops quietly with 141 when stdout is closed early (`| head`), no stack trace', async () => {
    const runCliModule = fileURLToPath(new URL('./run-cli.js', import.meta.url));
    const script = `
      import { Command } from 'commander';
      import { runCli } from ${JSON.stringify(runCliModule)};
      const p = new Command('prog').action(async () => {
        const line = 'x'.repeat(1023) + '\\n';
        for (let i = 0; i < 64 * 1024; i++) {
          if (!process.stdout.write(line)) await new Promise((r) => process.stdout.once('drain', r));
        }
      });
      await runCli(p, process.argv);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: fileURLToPath(new URL('.', import.meta.url)),
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // Like `head -c 4096`: read a little, then close the pipe.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 141, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Error|at /);
  });
});
