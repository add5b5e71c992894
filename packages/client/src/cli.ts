import * as fs from 'node:fs';
import { Command } from 'commander';
import {
  ManifestError,
  SysattestError,
  TrustedKeyring,
  detectPlatforms,
  formatPlatform,
  readKeyFile,
  runCli,
  verifyManifest,
  MANIFEST_LIMITS,
  MAX_SIGNATURE_BYTES,
} from '@sysattest/core';

const VERSION = '0.1.0';

function readBounded(file: string, maxBytes: number, what: string): Buffer {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new ManifestError(
      'MANIFEST_INVALID',
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? e}`,
    );
  }
  if (!st.isFile()) throw new ManifestError('MANIFEST_INVALID', `${what} ${file} is not a regular file`);
  if (st.size > maxBytes) {
    throw new ManifestError(
      'MANIFEST_TOO_LARGE',
      `${what} ${file} is ${st.size} bytes, over the ${maxBytes} limit`,
    );
  }
  return fs.readFileSync(file);
}

export function buildProgram(): Command {
  const program = new Command('sysattest')
    .description(
      'Checks that the files installed by this machine’s packages are exactly what the distribution shipped, ' +
        'against manifests signed by a sysattest generator.',
    )
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('platform')
    .description(
      'show the platform id(s) of a root directory: distro/release/arch, plus foreign architectures',
    )
    .option('--root <dir>', 'root directory to inspect (a mounted disk or unpacked image)', '/')
    .option('--json', 'print JSON')
    .action(async (opts) => {
      const detected = await detectPlatforms(opts.root);
      if (opts.json) {
        process.stdout.write(
          JSON.stringify({
            primary: formatPlatform(detected.primary),
            foreign: detected.foreign.map(formatPlatform),
          }) + '\n',
        );
        return;
      }
      process.stdout.write(`${formatPlatform(detected.primary)}\n`);
      for (const p of detected.foreign) process.stdout.write(`${formatPlatform(p)} (foreign architecture)\n`);
    });

  const manifest = program.command('manifest').description('work with signed manifest files');
  manifest
    .command('verify')
    .description('verify a manifest file against pinned generator keys and summarise it')
    .argument('<manifest>', 'manifest file (…json)')
    .option('--signature <file>', 'detached armored signature (default: <manifest>.asc)')
    .requiredOption('--keyring <file>', 'armored public key(s) of the generator(s) you trust')
    .option('--json', 'print JSON')
    .action(async (file: string, opts) => {
      const keyring = await TrustedKeyring.fromArmored(await readKeyFile(opts.keyring));
      const bytes = readBounded(file, MANIFEST_LIMITS.maxBytes, 'manifest');
      const signature = readBounded(
        opts.signature ?? `${file}.asc`,
        MAX_SIGNATURE_BYTES,
        'signature',
      ).toString('utf8');
      const verified = await verifyManifest(bytes, signature, keyring).catch((e: unknown) => {
        if (e instanceof SysattestError)
          throw new SysattestError(e.code, `${file}: ${e.message}`, { cause: e });
        throw e;
      });
      const m = verified.content;
      const summary = {
        platform: m.platform,
        package: m.package,
        entries: m.entries.length,
        signer: verified.signerFingerprint,
        signedAt: verified.signedAt.toISOString(),
        digest: verified.digest,
      };
      if (opts.json) {
        process.stdout.write(JSON.stringify(summary) + '\n');
        return;
      }
      process.stdout.write(
        `good signature from ${summary.signer} (${summary.signedAt})\n` +
          `${m.platform} ${m.package.name} ${m.package.version} (${m.package.architecture}): ${m.entries.length} paths\n` +
          `sha256 ${verified.digest}\n`,
      );
    });

  return program;
}

export async function main(argv: string[]): Promise<void> {
  await runCli(buildProgram(), argv);
}
