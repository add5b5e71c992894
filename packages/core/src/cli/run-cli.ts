import { CommanderError, type Command } from 'commander';
import { SysattestError } from '../errors.js';

/**
 * Exit codes shared by the three programs, so scripts can trust them:
 *   0  success (for `sysattest verify`: nothing to report)
 *   1  the command worked and found problems (findings)
 *   2  usage error: unknown option, bad argument
 *   3  the command could not do its job (bad input, missing key, unreachable server…): one line says why
 *  70  a bug in sysattest (EX_SOFTWARE): please report it
 */
export const EXIT = { OK: 0, FINDINGS: 1, USAGE: 2, FAILED: 3, BUG: 70 } as const;

/**
 * Runs a commander program and owns the process's exit: a known SysattestError prints one line
 * (`program: message`) and exits 3; an unexpected exception prints a short bug report request,
 * with the stack only when SYSATTEST_DEBUG is set.
 */
export async function runCli(program: Command, argv: string[]): Promise<void> {
  program.exitOverride();
  program.configureOutput({ outputError: (str, write) => write(str) });
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeFor(program.name(), e);
  }
}

function exitCodeFor(name: string, e: unknown): number {
  if (e instanceof CommanderError) {
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
    return EXIT.FAILED;
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
