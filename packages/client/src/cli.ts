import * as fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
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
  SYSATTEST_VERSION,
} from '@sysattest/core';
import { ManifestCache, defaultCacheDir } from './cache/index.js';
import { ConfigError, loadConfig, serverUrl, type ClientConfig } from './config/index.js';
import { ProgressBar } from './progress.js';
import { prepareReporting, submitReport, REPORT_SEND_BUDGET_MS } from './reporting/index.js';
import { HttpManifestSource, ServerClient, fetchServerKeys } from './transport/index.js';
import {
  TrustError,
  addTrustedKey,
  addTrustedKeyText,
  defaultTrustDir,
  listTrustedKeys,
  loadCacheSealSecret,
  loadKeyring,
  removeTrustedKey,
} from './trust/index.js';
import { exitCodeOf, renderJson, renderText, verifyMachine } from './verify/index.js';
import { DEFAULT_CATALOG_MAX_AGE_DAYS } from './verify/catalog-snapshots.js';
import { DEFAULT_SCAN_DIRS } from './verify/unowned.js';

const VERIFY_HELP = `
Exit status (a bit set when the check ran; scripts can test each bit):
  0   clean: every file of every package matches its signed manifest
  1   bit 1: integrity findings (modified, metadata, replaced, missing, unexpected, unowned,
      config-modified with --include-config, unreadable/unstable/unresolvable files, a
      diversion no verified manifest declares, a stat override that raises privilege)
  2   bit 2: incomplete coverage (some packages have no trusted manifest: pending, not in
      catalog, unknown platform, foreign origin, server unreachable, not cached; or no catalog
      snapshot, or one older than --catalog-max-age: stale-catalog)
  4   bit 4: trust failure (a manifest or catalog refused: bad or untrusted signature, an
      older catalog snapshot than one already verified; or the server contradicted signed
      data: server-conflict)
      e.g. 5 = integrity findings and a trust failure
  64  usage or configuration error (also: no pinned key — pin one with "sysattest trust add")
  65  the check could not run because of its input (an unreadable package database, …)
  69  the server is unreachable and nothing is cached
  70  a bug in sysattest (run with SYSATTEST_DEBUG=1 and report it)
  141 the output's reader went away (e.g. piped into head): stopped quietly

Configuration: --config FILE, else $SYSATTEST_CONFIG, else /etc/sysattest/client.json when it
exists (JSON; keys: server, keyring, trustDir, cacheDir, token, timeoutSeconds, batchSize, jobs,
includeConfig, scanDirs, acceptLocalDiversions, acceptDiversions, allowStatOverrides,
catalogMaxAgeDays, report, reportTokenFile, stateDir; unknown keys are refused). The environment
overrides the file: SYSATTEST_SERVER, SYSATTEST_KEYRING, SYSATTEST_TRUST_DIR, SYSATTEST_CACHE_DIR,
SYSATTEST_TOKEN, SYSATTEST_TIMEOUT (seconds), SYSATTEST_JOBS, SYSATTEST_REPORT (1/0),
SYSATTEST_REPORT_TOKEN_FILE, SYSATTEST_STATE_DIR; flags override both. SYSATTEST_CLIENT_HOME moves
the default pinned-key, cache, token and state directories. Cached manifests are used again only
through a seal made with a secret kept with the pinned keys (cache-seal.key); anything else is
verified again.

Reporting (--report, or "report": true): the verdict is printed and the exit status set first, and
neither changes whatever the upload does. The report is written to the spool (<stateDir>/report-spool,
default ~/.local/state/sysattest) and sent with the reporter token (a file of this user, mode 0600;
refused otherwise, exit 64), oldest spooled report first; each is removed once the server has it.
A server that cannot be reached or fails: one line on stderr, the reports stay spooled for the next
run (at most 20, oldest dropped with a line). A refusal that cannot change (a token the server
does not know or that is no reporter's, a report too large): one line saying what to fix, the
report moved to report-spool/rejected/. With --offline the report is only spooled. Sending stops
starting requests after ${REPORT_SEND_BUDGET_MS / 60_000} minutes.`;

function parsePositiveInt(value: string): number {
  if (!/^[1-9][0-9]{0,3}$/.test(value)) throw new InvalidArgumentError('a positive integer (1-9999)');
  return Number(value);
}

function parsePackages(value: string, previous: string[] = []): string[] {
  const names = value.split(',').map((s) => s.trim());
  // dpkg names are lower case; rpm's may have capitals and `_` (perl-Carp, NetworkManager), and
  // its architectures `_` (x86_64).
  if (names.some((n) => !/^[A-Za-z0-9_+][A-Za-z0-9_+.-]*(:[a-z0-9_-]+)?$/.test(n))) {
    throw new InvalidArgumentError('package names separated by commas (name or name:arch)');
  }
  return [...previous, ...names];
}

function trustDirOf(config: ClientConfig): string {
  return config.trustDir ?? defaultTrustDir();
}

function serverClient(url: string, config: ClientConfig): ServerClient {
  return new ServerClient({
    url,
    ...(config.token === undefined ? {} : { token: config.token }),
    timeoutMs: (config.timeoutSeconds ?? 60) * 1000,
  });
}

interface VerifyFlags {
  root: string;
  server?: string;
  keyring?: string;
  config?: string;
  packages?: string[];
  format: 'text' | 'json';
  includeConfig?: boolean;
  scanUnowned?: boolean;
  offline?: boolean;
  jobs?: number;
  color?: boolean;
  acceptLocalDiversions?: boolean;
  catalogMaxAge?: number;
  report?: boolean;
  reportTokenFile?: string;
}

async function runVerify(flags: VerifyFlags): Promise<void> {
  const config = loadConfig({ ...(flags.config === undefined ? {} : { file: flags.config }) });
  const server = flags.server ?? config.server;
  if (server !== undefined) {
    const parsed = serverUrl.safeParse(server);
    if (!parsed.success)
      throw new ConfigError('CONFIG_INVALID', `--server ${server}: ${parsed.error.issues[0]?.message}`);
  }
  if (server === undefined && !flags.offline) {
    throw new ConfigError(
      'CONFIG_INVALID',
      'no server: give --server URL (or SYSATTEST_SERVER, or "server" in the config file), or --offline to use the local cache alone',
    );
  }
  const reporting = prepareReporting(config, { ...flags, server }, (line) =>
    process.stderr.write(`sysattest: ${line}\n`),
  );
  let keyring;
  try {
    const keyringFile = flags.keyring ?? config.keyring;
    keyring = await loadKeyring({
      dir: trustDirOf(config),
      ...(keyringFile === undefined ? {} : { keyringFile }),
    });
  } catch (e) {
    if (e instanceof TrustError && (e.code === 'NO_TRUSTED_KEYS' || e.code === 'TRUST_STORE_ERROR')) {
      throw new ConfigError('CONFIG_INVALID', e.message, { cause: e });
    }
    throw e;
  }
  const source =
    flags.offline || server === undefined ? undefined : new HttpManifestSource(serverClient(server, config));
  const sealSecret = await loadCacheSealSecret({ dir: trustDirOf(config) });
  const cache = new ManifestCache(config.cacheDir ?? defaultCacheDir(), sealSecret ? { sealSecret } : {});
  const progress = flags.format === 'text' || flags.format === 'json' ? ProgressBar.forStderr() : undefined;
  let report;
  try {
    report = await verifyMachine({
      root: flags.root,
      keyring,
      cache,
      ...(source === undefined ? {} : { source, reverseLookup: (h) => source.reverseLookup(h) }),
      ...(flags.packages === undefined ? {} : { packages: flags.packages }),
      includeConfig: flags.includeConfig ?? config.includeConfig ?? false,
      ...(flags.scanUnowned ? { scanUnowned: { dirs: config.scanDirs ?? DEFAULT_SCAN_DIRS } } : {}),
      ...((flags.jobs ?? config.jobs) === undefined ? {} : { jobs: flags.jobs ?? config.jobs }),
      ...(config.batchSize === undefined ? {} : { fetchBatchSize: config.batchSize }),
      ...(progress === undefined ? {} : { onProgress: (p) => progress.update(p) }),
      acceptLocalDiversions: flags.acceptLocalDiversions ?? config.acceptLocalDiversions ?? false,
      ...(config.acceptDiversions === undefined ? {} : { acceptDiversions: config.acceptDiversions }),
      ...(config.allowStatOverrides === undefined ? {} : { allowStatOverrides: config.allowStatOverrides }),
      catalogMaxAgeDays: flags.catalogMaxAge ?? config.catalogMaxAgeDays ?? DEFAULT_CATALOG_MAX_AGE_DAYS,
    });
  } finally {
    progress?.done();
  }
  if (flags.format === 'json') process.stdout.write(renderJson(report));
  else {
    const colour = flags.color !== false && process.stdout.isTTY === true && !process.env.NO_COLOR;
    process.stdout.write(renderText(report, { colour }));
  }
  process.exitCode = exitCodeOf(report);
  if (reporting !== undefined) await submitReport(reporting, report);
}

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
    .version(SYSATTEST_VERSION)
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

  program
    .command('verify')
    .description(
      'check every installed package of a root against its signed manifest (pinned keys only) and report ' +
        'modified, metadata, replaced, missing, config-modified files and unverified, outdated, bad-signature packages',
    )
    .option('--root <dir>', 'the root to check: / or a mounted disk, rootfs or unpacked image', '/')
    .option('--server <url>', 'the sysattest server (default: SYSATTEST_SERVER or the config file)')
    .option('--keyring <file>', 'verify with the armored keys in FILE instead of the pinned keys')
    .option('--config <file>', 'the config file (default: SYSATTEST_CONFIG or /etc/sysattest/client.json)')
    .option(
      '--packages <list>',
      'only these packages, comma-separated (name or name:arch); a package whose diversion claims one of their paths is checked too',
      parsePackages,
    )
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--include-config', 'count changed configuration files (conffiles) as failures')
    .option(
      '--scan-unowned',
      'also report files no package owns under the system directories (bin, sbin, lib*, libexec)',
    )
    .option('--offline', 'use the local cache of verified manifests alone (no network)')
    .option('--jobs <n>', 'hashing threads (default: the CPUs)', parsePositiveInt)
    .option('--no-color', 'no colour even on a terminal (NO_COLOR is honoured too)')
    .option(
      '--accept-local-diversions',
      'honour dpkg-divert --local diversions (each is still listed, as accepted); by default a diversion no verified manifest declares is a failure and the packaged file is checked where the package put it',
    )
    .option(
      '--catalog-max-age <days>',
      `a catalog snapshot older than this is a stale-catalog finding (default ${DEFAULT_CATALOG_MAX_AGE_DAYS})`,
      parsePositiveInt,
    )
    .option(
      '--report',
      'after printing the verdict, upload the JSON report to the server (POST /v1/reports) with the reporter token; default: "report" in the config',
    )
    .option('--no-report', 'do not upload the report, whatever the config says')
    .option(
      '--report-token-file <file>',
      'the reporter token, mode 0600 (default: "reportTokenFile" in the config, else ~/.config/sysattest/reporter-token)',
    )
    .addHelpText('after', VERIFY_HELP)
    .action(async (flags: VerifyFlags) => runVerify(flags));

  const trust = program
    .command('trust')
    .description('pin, list and unpin the generator keys manifests are verified against')
    .option('--config <file>', 'the config file (its trustDir is where keys are pinned)');
  trust
    .command('add')
    .description(
      'pin a generator public key: from an armored FILE, or fetched from a server and pinned only if it ' +
        'is the key with the fingerprint you give (a server is never trusted on its own say-so)',
    )
    .argument('[keyfile]', 'armored public key file')
    .option('--from-server [url]', 'fetch the key from a server (default: the configured server)')
    .option('--fingerprint <fpr>', 'with --from-server: the fingerprint (40 hex) the key must have')
    .action(
      async (keyfile: string | undefined, opts: { fromServer?: string | boolean; fingerprint?: string }) => {
        const config = loadConfig(trustConfigFile(trust));
        const dir = trustDirOf(config);
        if (opts.fromServer === undefined) {
          if (keyfile === undefined)
            throw new ConfigError('CONFIG_INVALID', 'give a KEYFILE, or --from-server URL --fingerprint FPR');
          if (opts.fingerprint !== undefined) {
            const fpr = await addTrustedKeyText(fs.readFileSync(keyfile, 'utf8'), keyfile, {
              dir,
              expectFingerprint: opts.fingerprint,
            });
            process.stdout.write(`pinned ${fpr}\n`);
            return;
          }
          const fpr = await addTrustedKey(keyfile, { dir });
          process.stdout.write(`pinned ${fpr}\n`);
          return;
        }
        if (keyfile !== undefined)
          throw new ConfigError('CONFIG_INVALID', 'give a KEYFILE or --from-server, not both');
        if (opts.fingerprint === undefined) {
          throw new ConfigError(
            'CONFIG_INVALID',
            '--from-server needs --fingerprint FPR: the fingerprint you got from the generator operator, out of band',
          );
        }
        const url = typeof opts.fromServer === 'string' ? opts.fromServer : config.server;
        if (url === undefined)
          throw new ConfigError('CONFIG_INVALID', '--from-server: no URL given and no server configured');
        const client = serverClient(url, config);
        const keys = await fetchServerKeys(client);
        const wanted = opts.fingerprint.replace(/\s+/g, '').toUpperCase();
        // The server's fingerprint field only picks the candidate; the key itself must have it.
        const candidate = keys.find((k) => k.fingerprint === wanted);
        if (candidate === undefined) {
          throw new TrustError(
            'KEY_MISMATCH',
            `the server ${client.where} offers no key ${wanted} (it offers ${keys.map((k) => k.fingerprint).join(', ') || 'none'}): nothing pinned`,
          );
        }
        const fpr = await addTrustedKeyText(candidate.armored, `the key ${client.where} served`, {
          dir,
          expectFingerprint: wanted,
        });
        process.stdout.write(`pinned ${fpr} (from ${client.where})\n`);
      },
    );
  trust
    .command('list')
    .description('list the pinned keys (fingerprint and file)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig(trustConfigFile(trust));
      const keys = await listTrustedKeys({ dir: trustDirOf(config) });
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ keys })}\n`);
        return;
      }
      if (keys.length === 0) process.stderr.write(`no key pinned in ${trustDirOf(config)}\n`);
      for (const k of keys) process.stdout.write(`${k.fingerprint}\t${k.file}\n`);
    });
  trust
    .command('remove')
    .description('unpin a key by fingerprint')
    .argument('<fingerprint>', '40 hex digits')
    .action(async (fpr: string) => {
      const config = loadConfig(trustConfigFile(trust));
      await removeTrustedKey(fpr, { dir: trustDirOf(config) });
      process.stdout.write(`removed ${fpr.replace(/\s+/g, '').toUpperCase()}\n`);
    });

  return program;
}

function trustConfigFile(trust: Command): { file?: string } {
  const file = (trust.opts() as { config?: string }).config;
  return file === undefined ? {} : { file };
}

export async function main(argv: string[]): Promise<void> {
  await runCli(buildProgram(), argv);
}
