import type { Command, CommanderError } from 'commander';
import { SysattestError } from '../errors.js';

/**
 * Exit codes shared by the three programs, so scripts can trust them. 0–7 are results (for
 * `sysattest verify` a bit set: 1 integrity findings, 2 incomplete coverage, 4 trust failure);
 * failures use the BSD sysexits values, which never collide with a result:
 *   0  success (for `sysattest verify`: nothing to report)
 *   1  the command worked and found problems (findings)
 *  64  usage or configuration error: unknown option, bad argument, no pinned key (EX_USAGE)
 *  65  the command could not do its job because of its input: a corrupt database, a bad key file,
 *      a refused upload… one line says why (EX_DATAERR)
 *  69  a service it needs is unavailable: server unreachable, podman missing (EX_UNAVAILABLE)
 *  70  a bug in sysattest (EX_SOFTWARE): please report it
 */
export const EXIT = { OK: 0, FINDINGS: 1, USAGE: 64, FAILED: 65, UNAVAILABLE: 69, BUG: 70 } as const;

/** An error that carries its own exit code (one of EXIT's failure values). */
export interface HasExitCode {
  readonly exitCode: number;
}

/**
 * Runs a commander program and owns the process's exit: a known SysattestError prints one line
 * (`program: message`) and exits with its own `exitCode` or 65; an unexpected exception prints a short bug report request,
 * with the stack only when SYSATTEST_DEBUG is set.
 */
/** Exit status when the output's reader went away: 128 + SIGPIPE, what a shell shows for one. */
export const EXIT_BROKEN_PIPE = 141;

let pipeGuarded = false;

export async function runCli(program: Command, argv: string[]): Promise<void> {
  // Subcommands copy their parent's settings when they are created, which was before this call:
  // set every command in the tree, or a subcommand's usage error would exit 1 by itself.
  const configure = (command: Command): void => {
    command.exitOverride();
    command.configureOutput({ outputError: (str, write) => write(str) });
    command.commands.forEach(configure);
  };
  configure(program);
  // A reader that went away (`sysattest verify | head`): stop quietly, as a Unix tool killed by
  // SIGPIPE does (a shell reports 141), instead of an unhandled EPIPE with a stack trace.
  if (!pipeGuarded) {
    pipeGuarded = true;
    for (const stream of [process.stdout, process.stderr]) {
      stream.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EPIPE') process.exit(EXIT_BROKEN_PIPE);
        throw e;
      });
    }
  }
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeFor(program.name(), e);
  }
}

/**
 * A commander error, told by its shape: a program installed from npm may get its own copy of
 * commander (a global install nests each package's dependencies), so `instanceof` against this
 * module's copy would miss it.
 */
function isCommanderError(e: unknown): e is CommanderError {
  if (!(e instanceof Error)) return false;
  const { code, exitCode } = e as Partial<CommanderError>;
  return typeof code === 'string' && code.startsWith('commander.') && typeof exitCode === 'number';
}

function exitCodeFor(name: string, e: unknown): number {
  if (isCommanderError(e)) {
    // --help and --version are "errors" to commander; they already printed what they had to.
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version' ||
      e.code === 'commander.help'
    ) {
      return EXIT.OK;
    }
    return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  if (e instanceof SysattestError) {
    process.stderr.write(`${name}: ${e.message}\n`);
    if (process.env.SYSATTEST_DEBUG) process.stderr.write(`${e.stack ?? ''}\n`);
    const own = (e as Partial<HasExitCode>).exitCode;
    return typeof own === 'number' && Number.isInteger(own) && own >= 64 && own <= 78 ? own : EXIT.FAILED;
  }
  const detail = e instanceof Error ? e.message : String(e);
  process.stderr.write(
    `${name}: internal error: ${detail}\n` +
      `This is a bug in sysattest. Please report it with the command you ran` +
      (process.env.SYSATTEST_DEBUG ? '.\n' : ' and the output of the same command with SYSATTEST_DEBUG=1.\n'),
  );
  if (process.env.SYSATTEST_DEBUG && e instanceof Error) process.stderr.write(`${e.stack ?? ''}\n`);
  return EXIT.BUG;
}
