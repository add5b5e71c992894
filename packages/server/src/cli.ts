import { Command } from 'commander';
import { runCli } from '@sysattest/core';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  return new Command('sysattest-server')
    .description(
      'Stores signed manifests and catalogs, queues generation jobs, answers clients in batches and serves the ' +
        'dashboard. (The HTTP service is being built; this version only provides the command and its help.)',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .action(() => {
      process.stderr.write(
        'sysattest-server: the HTTP service is not part of this version yet; see the README\n',
      );
      process.exitCode = 3;
    });
}

export async function main(argv: string[]): Promise<void> {
  await runCli(buildProgram(), argv);
}
