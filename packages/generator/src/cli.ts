import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { TrustedKeyring, generateSigningKey, readKeyFile, runCli, writeSecretKeyFile } from '@sysattest/core';
import { registerGenerationCommands } from './commands/generate.js';
import { registerImageCommands } from './commands/image.js';
import { registerWorkCommand } from './commands/work.js';
import { signingKeyPath } from './paths.js';
import { readPassphrase } from './signing-key.js';
import { GENERATOR_VERSION } from './version.js';

export function buildProgram(): Command {
  const program = new Command('sysattest-generator')
    .description(
      'Builds signed manifests of package files by installing each package version in a fresh podman container.',
    )
    .version(GENERATOR_VERSION)
    .showHelpAfterError('(run with --help for usage)');

  registerImageCommands(program);
  registerGenerationCommands(program);
  registerWorkCommand(program);

  const key = program.command('key').description("manage the generator's OpenPGP signing key");
  const passphraseOption = new Option(
    '--passphrase-file <file>',
    'file holding the key passphrase (else $SYSATTEST_KEY_PASSPHRASE)',
  );

  key
    .command('generate')
    .description('create a new signing key (OpenPGP v4) and print its fingerprint')
    .option(
      '--out <file>',
      'where to write the secret key (default: $SYSATTEST_GENERATOR_KEY or the generator home)',
    )
    .option('--name <name>', 'user id name on the key', 'sysattest generator')
    .option('--email <email>', 'user id email on the key')
    .addOption(
      new Option('--algorithm <alg>', 'key algorithm').choices(['ed25519', 'rsa4096']).default('ed25519'),
    )
    .addOption(passphraseOption)
    .option('--force', 'overwrite an existing key file')
    .action(async (opts) => {
      const file = signingKeyPath(opts.out);
      const generated = await generateSigningKey({
        name: opts.name,
        email: opts.email,
        algorithm: opts.algorithm,
        passphrase: readPassphrase(opts.passphraseFile),
      });
      fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
      await writeSecretKeyFile(file, generated.armoredSecretKey, { overwrite: Boolean(opts.force) });
      process.stdout.write(`${generated.fingerprint}\n`);
      process.stderr.write(`secret key written to ${file} (mode 0600)\n`);
    });

  key
    .command('export')
    .description('print the armored public key of the signing key (give it to clients to pin)')
    .option('--key <file>', 'secret key file (default: $SYSATTEST_GENERATOR_KEY or the generator home)')
    .action(async (opts) => {
      // The public part of a secret key is readable without its passphrase.
      const keyring = await TrustedKeyring.fromArmored(await readKeyFile(signingKeyPath(opts.key)));
      process.stdout.write(keyring.armoredPublicKeys().join(''));
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  await runCli(buildProgram(), argv);
}
