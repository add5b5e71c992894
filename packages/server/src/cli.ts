import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { HOST_NAME, KeyError, runCli, SysattestError, SYSATTEST_VERSION } from '@sysattest/core';
import {
  createLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type Logger,
  type LogLevel,
} from '@sysattest/core/log';
import {
  configFileLocation,
  DEFAULT_CONFIG_FILE,
  mergeSettings,
  parseDuration,
  parseRateLimit,
  readConfigFile,
  type ServerSettings,
} from './config.js';
import { buildApp, ServerMetrics, type RateLimitOptions } from './http/index.js';
import { defaultSessionSecretFile, loadSessionSecret, type SessionSecret } from './session-secret.js';
import {
  DEFAULT_SQLITE_PATH,
  openStore,
  parseStoreLocation,
  TOKEN_ROLES,
  type Store,
  type TokenRole,
} from './store/index.js';

function databaseOption(): Option {
  return new Option(
    '--database <location>',
    `the database: a SQLite file path, sqlite:PATH, or postgres://user@host/db (default: the configuration file's, else ${DEFAULT_SQLITE_PATH})`,
  ).env('SYSATTEST_DATABASE');
}

function configOption(): Option {
  return new Option(
    '--config <file>',
    `the configuration file (JSON; default ${DEFAULT_CONFIG_FILE} when it exists)`,
  ).env('SYSATTEST_SERVER_CONFIG');
}

/** The configuration file named or found, read and validated (undefined when there is none). */
function loadConfig(flag: string | undefined) {
  const file = configFileLocation(flag, process.env);
  return { file, config: file === undefined ? undefined : readConfigFile(file) };
}

/** The database the offline commands use: --database / $SYSATTEST_DATABASE > the file's > default. */
function databaseFor(opts: { database?: string; config?: string }): string {
  if (opts.database !== undefined) return opts.database;
  return loadConfig(opts.config).config?.database ?? DEFAULT_SQLITE_PATH;
}

function parsePort(value: string): number {
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new InvalidArgumentError('a port is an integer from 0 to 65535 (0: any free port)');
  }
  return Number(value);
}

function parseId(value: string): number {
  if (!/^[1-9][0-9]{0,14}$/.test(value)) throw new InvalidArgumentError('an id is a positive integer');
  return Number(value);
}

function parseRole(value: string): TokenRole {
  if (!(TOKEN_ROLES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`a role is one of ${TOKEN_ROLES.join(', ')}`);
  }
  return value as TokenRole;
}

function parseCount(value: string, max: number): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > max) {
    throw new InvalidArgumentError(`a whole number from 1 to ${max}`);
  }
  return Number(value);
}

/** A parser's ServerConfigError as commander's usage error. */
function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function parseHostName(value: string): string {
  if (!HOST_NAME.test(value)) {
    throw new InvalidArgumentError(
      'a host name is 1 to 253 letters, digits, dots, hyphens or underscores, starting with a letter or digit',
    );
  }
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readKeyText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new KeyError('KEY_FILE_ERROR', `cannot read the key file ${file}: ${(e as Error).message}`, {
      cause: e,
    });
  }
}

/** Opens the store, runs `fn`, and closes the store whatever happens. */
async function withStore<T>(location: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await openStore(location);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

interface ServeOptions {
  host?: string;
  port?: number;
  database?: string;
  config?: string;
  trustKey: string[];
  readsNeedToken?: boolean;
  rateLimit?: RateLimitOptions | false;
  sessionSecretFile?: string;
  queueNeedsToken?: boolean;
  staleAfter?: number;
  reportsKeep?: number;
  reportsMaxAgeDays?: number;
  reportsMaxBodyBytes?: number;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

function parseRateLimitOption(value: string): RateLimitOptions | false {
  try {
    return parseRateLimit(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** The settings serve runs with: flags > environment > configuration file > defaults. */
export function serveSettings(opts: ServeOptions): ServerSettings {
  const { file, config } = loadConfig(opts.config);
  return mergeSettings(
    {
      ...(opts.host === undefined ? {} : { host: opts.host }),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      ...(opts.database === undefined ? {} : { database: opts.database }),
      trustKeys: opts.trustKey,
      ...(opts.readsNeedToken === undefined ? {} : { readsNeedToken: opts.readsNeedToken }),
      ...(opts.rateLimit === undefined ? {} : { rateLimit: opts.rateLimit }),
      ...(opts.sessionSecretFile === undefined ? {} : { sessionSecretFile: opts.sessionSecretFile }),
      ...(opts.queueNeedsToken === undefined ? {} : { queueNeedsToken: opts.queueNeedsToken }),
      ...(opts.staleAfter === undefined ? {} : { staleAfterSeconds: opts.staleAfter }),
      ...(opts.reportsKeep === undefined ? {} : { reportsKeep: opts.reportsKeep }),
      ...(opts.reportsMaxAgeDays === undefined ? {} : { reportsMaxAgeDays: opts.reportsMaxAgeDays }),
      ...(opts.reportsMaxBodyBytes === undefined ? {} : { reportsMaxBodyBytes: opts.reportsMaxBodyBytes }),
      ...(opts.logLevel === undefined ? {} : { logLevel: opts.logLevel }),
      ...(opts.logFormat === undefined ? {} : { logFormat: opts.logFormat }),
    },
    config,
    file,
  );
}

/**
 * The dashboard's session secret: the configured file, else the default one (made on first
 * start). Read before the database is opened, so that a refused file stops the server at once.
 */
function sessionSecretFor(settings: ServerSettings, log: Logger): SessionSecret {
  const configured = settings.sessionSecretFile;
  const found = loadSessionSecret(configured ?? defaultSessionSecretFile(settings.database), {
    createIfMissing: configured === undefined,
  });
  if (found.created) {
    log.info(
      { event: 'session-secret-created', file: found.file },
      `made the dashboard session secret ${found.file} (mode 0600)`,
    );
  }
  if (configured === undefined && parseStoreLocation(settings.database).dialect === 'postgres') {
    log.warn(
      { event: 'session-secret-default', file: found.file },
      `dashboard sessions are signed with ${found.file}; every server process of this ` +
        "database must use the same secret (set sessionSecretFile) or they refuse each other's sessions",
    );
  }
  return found;
}

async function serve(opts: ServeOptions): Promise<void> {
  const settings = serveSettings(opts);
  const log = createLogger({
    service: 'sysattest-server',
    level: settings.logLevel,
    format: settings.logFormat,
  });
  const { secret: sessionSecret } = sessionSecretFor(settings, log);
  const trackAll = Object.keys(settings.track).filter((p) => settings.track[p] === 'all');
  const store = await openStore(settings.database, {
    poolSize: settings.databasePoolSize,
    jobs: settings.jobs,
    trackAll,
    hosts: {
      keep: settings.reports.keep,
      maxAgeDays: settings.reports.maxAgeDays,
      staleAfterSeconds: settings.staleAfterSeconds,
    },
  });
  try {
    if (settings.configFile !== undefined) {
      log.info({ event: 'config', file: settings.configFile }, `configuration ${settings.configFile}`);
    }
    for (const file of settings.trustKeys) {
      const key = await store.addTrustedKey(readKeyText(file));
      log.info(
        { event: 'key-trusted', fingerprint: key.fingerprint, file },
        `trusting generator key ${key.fingerprint} (${file})`,
      );
    }
    for (const [platform, names] of Object.entries(settings.track)) {
      if (names === 'all') {
        const queued = await store.queueBacklog(platform);
        log.info(
          { event: 'tracking', platform, jobsQueued: queued },
          `tracking every version of ${platform}'s catalog (${queued} backlog jobs queued)`,
        );
        continue;
      }
      const { jobsQueued } = await store.trackPackages(platform, names, 'config');
      log.info(
        { event: 'tracking', platform, packages: names.length, jobsQueued },
        `tracking ${names.length} packages on ${platform} (${jobsQueued} jobs queued)`,
      );
    }
  } catch (e) {
    await store.close();
    throw e;
  }
  const metrics = new ServerMetrics();
  const app = buildApp({
    store,
    metrics,
    readsNeedToken: settings.readsNeedToken,
    rateLimit: settings.rateLimit,
    trustProxy: settings.trustProxy,
    queueNeedsToken: settings.queueNeedsToken,
    anonymousQueueQuota: settings.anonymousQueueQuota,
    reportBodyLimit: settings.reports.maxBodyBytes,
    sessionSecret,
    logger: log,
  });
  let url: string;
  try {
    url = await app.listen({ host: settings.host, port: settings.port });
  } catch (e) {
    await app.close().catch(() => undefined);
    await store.close();
    throw new SysattestError(
      'LISTEN_FAILED',
      `cannot listen on ${settings.host}:${settings.port}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  // On stdout too, for whoever started the server and waits for its address.
  process.stdout.write(`sysattest-server: listening on ${url} (database ${store.location})\n`);
  log.info({ event: 'listening', url, database: store.location }, `listening on ${url}`);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log.info({ event: 'stopping', signal }, `${signal}: shutting down`);
  try {
    await app.close();
  } finally {
    await store.close();
  }
}

const CONFIG_HELP = `
Configuration file (JSON, every key optional; unknown keys are refused; relative paths are
relative to the file; precedence: flags > environment > file > defaults):
  host               address to listen on (127.0.0.1)          env SYSATTEST_SERVER_HOST
  port               TCP port, 0 for any free one (8080)        env SYSATTEST_SERVER_PORT
  database           SQLite path, sqlite:PATH or postgres://... env SYSATTEST_DATABASE
  databasePoolSize   PostgreSQL connections per process (10)
  trustKeys          ["generator.asc", ...] keys trusted at start (as --trust-key)
  readsNeedToken     lookups, /v1/keys, /metrics need a reader token (false)
  trustProxy         client address from X-Forwarded-For: true, or proxy addresses/CIDRs (false)
  rateLimit          {"max": 3000, "windowSeconds": 60} per token, else per IP; false: none
  jobs               {"maxAttempts": 5, "backoffBaseSeconds": 60, "backoffMaxSeconds": 21600}
  track              {"debian/bookworm/amd64": ["openssl", ...]} packages tracked at start,
                     or "all" instead of a list: a manifest of every version of the catalog
  sessionSecretFile  the dashboard's session secret (0600, the server's user; default
                     dashboard-session.key next to the SQLite file, or ./data/ with PostgreSQL,
                     made on first start; every process of one database needs the same one)
                                                                env SYSATTEST_SESSION_SECRET_FILE
  queueNeedsToken    only lookups with a token queue jobs and track packages (false)
  anonymousQueueQuota {"max": 5000, "windowSeconds": 3600} new jobs and newly tracked packages
                     an anonymous client address (IPv6: /64) may cause per window; false: none
  staleAfter         a host with no report for this long is stale: Ns, Nm, Nh or Nd (48h)
                                                                env SYSATTEST_STALE_AFTER
  reports            {"keep": 100, "maxAgeDays": 90, "maxBodyBytes": 33554432} reports kept per
                     host (the latest always), none older than maxAgeDays, an upload's body cap
                     env SYSATTEST_REPORTS_KEEP, _MAX_AGE_DAYS, _MAX_BODY_BYTES
  logLevel           ${LOG_LEVELS.join(', ')} (info)    env SYSATTEST_LOG_LEVEL
  logFormat          json, human, or auto: human on a terminal, else JSON (auto)
                                                                env SYSATTEST_LOG_FORMAT
Logs go to stderr: one access line per request (method, route, path, status, duration, the
token's name and role), Authorization and cookies never written.
The file: --config, else $SYSATTEST_SERVER_CONFIG, else ${DEFAULT_CONFIG_FILE} if it exists.
`;

function addServeOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('--host <address>', 'the address to listen on (default 127.0.0.1)').env(
        'SYSATTEST_SERVER_HOST',
      ),
    )
    .addOption(
      new Option('--port <port>', 'the TCP port to listen on, 0: any free port (default 8080)')
        .env('SYSATTEST_SERVER_PORT')
        .argParser(parsePort),
    )
    .addOption(databaseOption())
    .addOption(configOption())
    .option(
      '--trust-key <file>',
      "a generator public key (armored) to add to the trusted keys at start; repeatable (replaces the file's trustKeys)",
      collect,
      [],
    )
    .option('--reads-need-token', 'lookups need a reader token too (default: anyone may read)')
    .option('--no-reads-need-token', 'anyone may read, whatever the configuration file says')
    .option(
      '--rate-limit <max/seconds>',
      'requests per client (token, else IP) per window, e.g. 3000/60 (the default), or off',
      parseRateLimitOption,
    )
    .addOption(
      new Option(
        '--session-secret-file <file>',
        "the dashboard's session secret (must exist, mode 0600; default: dashboard-session.key in the state directory, made on first start)",
      ).env('SYSATTEST_SESSION_SECRET_FILE'),
    )
    .addOption(
      new Option('--stale-after <duration>', 'a host with no report for this long is stale (default 48h)')
        .env('SYSATTEST_STALE_AFTER')
        .argParser((v) => usage(() => parseDuration(v, '--stale-after'))),
    )
    .addOption(
      new Option('--reports-keep <n>', 'reports kept per host, the latest included (default 100)')
        .env('SYSATTEST_REPORTS_KEEP')
        .argParser((v) => parseCount(v, 100_000)),
    )
    .addOption(
      new Option(
        '--reports-max-age-days <n>',
        "reports older than this are deleted, but never a host's latest (default 90)",
      )
        .env('SYSATTEST_REPORTS_MAX_AGE_DAYS')
        .argParser((v) => parseCount(v, 36_500)),
    )
    .addOption(
      new Option('--reports-max-body-bytes <n>', "a report upload's body cap (default 33554432, 32 MiB)")
        .env('SYSATTEST_REPORTS_MAX_BODY_BYTES')
        .argParser((v) => parseCount(v, 1024 * 1024 * 1024)),
    )
    .option('--queue-needs-token', 'only lookups with a reader token (or above) queue generation jobs')
    .option('--no-queue-needs-token', 'anonymous lookups queue jobs too (within their quota)')
    .addOption(
      new Option('--log-level <level>', 'least level logged (default info)')
        .choices(LOG_LEVELS)
        .env('SYSATTEST_LOG_LEVEL'),
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines on stderr; auto: human on a terminal, else JSON (default auto)',
      )
        .choices(LOG_FORMATS)
        .env('SYSATTEST_LOG_FORMAT'),
    )
    .addHelpText('after', CONFIG_HELP);
}

function tokenCommand(): Command {
  const token = new Command('token').description(
    'create, list and revoke API tokens (offline, on the database)',
  );
  token
    .command('create')
    .description('create a token and print its secret (shown once: it is stored hashed)')
    .requiredOption('--role <role>', `the token's role: ${TOKEN_ROLES.join(', ')}`, parseRole)
    .requiredOption('--name <name>', 'what the token is for (shown in listings)')
    .option(
      '--host <name>',
      'reporter tokens (required for them, refused for other roles): the host whose reports the token sends',
      parseHostName,
    )
    .addOption(databaseOption())
    .addOption(configOption())
    .action(
      async (
        opts: { role: TokenRole; name: string; host?: string; database?: string; config?: string },
        cmd: Command,
      ) => {
        if (opts.role === 'reporter' && opts.host === undefined) {
          cmd.error('error: a reporter token needs --host NAME, the host it reports for');
        }
        if (opts.role !== 'reporter' && opts.host !== undefined) {
          cmd.error('error: --host is for reporter tokens only');
        }
        const created = await withStore(databaseFor(opts), (s) =>
          s.createToken(opts.role, opts.name, opts.host),
        );
        process.stdout.write(`${created.secret}\n`);
        const bound = opts.host === undefined ? '' : ` for host ${opts.host}`;
        process.stderr.write(
          `sysattest-server: token ${created.id} (${opts.role}${bound}, ${JSON.stringify(opts.name)}) created; ` +
            'the secret above is shown only this once\n',
        );
      },
    );
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (opts: { database?: string; config?: string }) => {
      const tokens = await withStore(databaseFor(opts), (s) => s.listTokens());
      for (const t of tokens) {
        const state = t.revokedAt === undefined ? 'active' : `revoked ${t.revokedAt}`;
        const role = t.host === undefined ? t.role : `${t.role}:${t.host}`;
        process.stdout.write(`${t.id}\t${role}\t${t.name}\tcreated ${t.createdAt}\t${state}\n`);
      }
    });
  token
    .command('revoke')
    .description('revoke a token by id (it stays listed, marked revoked)')
    .argument('<id>', 'the token id (see token list)', parseId)
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (id: number, opts: { database?: string; config?: string }) => {
      const info = await withStore(databaseFor(opts), (s) => s.revokeToken(id));
      process.stdout.write(`revoked token ${info.id} (${info.role}, ${JSON.stringify(info.name)})\n`);
    });
  return token;
}

function hostCommand(): Command {
  const host = new Command('host').description('the hosts that send reports (offline, on the database)');
  host
    .command('forget')
    .description(
      'forget a host: delete its reports and revoke its reporter tokens (they stay listed, revoked)',
    )
    .argument('<name>', 'the host name (as its reporter token names it)', parseHostName)
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (name: string, opts: { database?: string; config?: string }) => {
      const gone = await withStore(databaseFor(opts), (s) => s.forgetHost(name));
      process.stdout.write(
        `forgot host ${name}: ${gone.reports} report(s) deleted, ${gone.tokensRevoked} reporter token(s) revoked\n`,
      );
    });
  return host;
}

function keyCommand(): Command {
  const key = new Command('key').description(
    'add, list and remove trusted generator keys (offline, on the database)',
  );
  key
    .command('add')
    .description('trust a generator public key (armored OpenPGP) for uploads')
    .argument('<file>', 'the armored public key file')
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (file: string, opts: { database?: string; config?: string }) => {
      const text = readKeyText(file);
      const info = await withStore(databaseFor(opts), (s) => s.addTrustedKey(text));
      process.stdout.write(`${info.fingerprint}\n`);
    });
  key
    .command('list')
    .description('list the trusted generator keys')
    .option('--all', 'include removed keys')
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (opts: { database?: string; config?: string; all?: boolean }) => {
      const keys = await withStore(databaseFor(opts), (s) =>
        s.listTrustedKeys({ includeRemoved: opts.all ?? false }),
      );
      for (const k of keys) {
        const state = k.removedAt === undefined ? 'trusted' : `removed ${k.removedAt}`;
        process.stdout.write(`${k.fingerprint}\tadded ${k.addedAt}\t${state}\n`);
      }
    });
  key
    .command('remove')
    .description('stop trusting a generator key (stored manifests stay)')
    .argument('<fingerprint>', 'the key fingerprint (40 hex digits, see key list)')
    .addOption(databaseOption())
    .addOption(configOption())
    .action(async (fingerprint: string, opts: { database?: string; config?: string }) => {
      await withStore(databaseFor(opts), (s) => s.removeTrustedKey(fingerprint));
      process.stdout.write(`removed ${fingerprint}\n`);
    });
  return key;
}

export function buildProgram(): Command {
  const program = new Command('sysattest-server')
    .description(
      'Stores signed manifests and catalogs, queues generation jobs and answers clients in batches over an ' +
        'HTTP API. With no command it serves (SQLite under ./data/ on 127.0.0.1:8080 unless told otherwise).',
    )
    .version(SYSATTEST_VERSION)
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(
    addServeOptions(new Command('serve'))
      .description('serve the HTTP API (the default command); stops cleanly on SIGINT / SIGTERM')
      .action((opts: ServeOptions) => serve(opts)),
    { isDefault: true },
  );
  program.addCommand(tokenCommand());
  program.addCommand(hostCommand());
  program.addCommand(keyCommand());
  return program;
}

/** Subcommands added with addCommand do not inherit runCli's exitOverride: give it to them all. */
function overrideExits(cmd: Command): void {
  for (const sub of cmd.commands) {
    sub.exitOverride();
    sub.showHelpAfterError('(run with --help for usage)');
    overrideExits(sub);
  }
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  overrideExits(program);
  await runCli(program, argv);
}
