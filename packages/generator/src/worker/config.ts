import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageFamily, parsePlatform, formatPlatform } from '@sysattest/core';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '@sysattest/core/log';
import { z } from 'zod';
import { GeneratorError } from '../errors.js';
import { GENERATION_DEFAULTS } from '../generation/debian-generator.js';
import { generatorHome } from '../paths.js';

/** A configuration or usage error: the worker cannot start as configured (exit 64). */
export class WorkerConfigError extends GeneratorError {
  readonly exitCode = 64;
  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

const MAX_CONFIG_BYTES = 256 * 1024;
const MAX_TOKEN_BYTES = 4096;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `15m`, `6h`, `1d` → milliseconds. */
export function parseDuration(text: string, what: string): number {
  const m = /^([0-9]{1,9})(ms|s|m|h|d)$/.exec(text.trim());
  if (m === null) {
    throw new WorkerConfigError(
      `${what}: "${text}" is not a duration (a number and a unit: 500ms, 30s, 15m, 6h, 1d)`,
    );
  }
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}

const SIZE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
const SIZE = /^([0-9]{1,9})([KMGT]?)$/;

/** `20G`, `500M`, `1T` or a number of bytes (units are powers of 1024). */
export function parseSize(text: string, what: string): number {
  const m = SIZE.exec(text.trim());
  if (m === null) {
    throw new WorkerConfigError(
      `${what}: "${text}" is not a size (bytes, or a number and K, M, G or T: 20G)`,
    );
  }
  return Number(m[1]) * (SIZE_UNITS[m[2] as string] as number);
}

const size = z.string().regex(SIZE, 'a size: bytes, or a number and K, M, G or T (20G)');

const duration = z
  .string()
  .regex(/^[0-9]{1,9}(ms|s|m|h|d)$/, 'a duration: a number and a unit (500ms, 30s, 15m, 6h, 1d)');
const platform = z
  .string()
  .max(200)
  .refine((s) => {
    try {
      parsePlatform(s);
      return true;
    } catch {
      return false;
    }
  }, 'a platform id distro/release/arch, e.g. debian/bookworm/amd64');
const file = z.string().min(1).max(4096);

/** The worker's configuration file (JSON). Unknown keys are refused: a typo must not be ignored. */
export const WORKER_CONFIG_SCHEMA = z.strictObject({
  /** The server's base URL. */
  server: z.url({ protocol: /^https?$/ }).optional(),
  /** File holding the generator token (never the token itself in a config file). */
  tokenFile: file.optional(),
  platforms: z.array(platform).min(1).max(64).optional(),
  /** How often each platform's catalog is synced, or "off". */
  catalogInterval: z.union([duration, z.literal('off')]).optional(),
  /** Refresh the image (apt-get update + dist-upgrade) before each catalog sync (default true). */
  refreshBeforeCatalog: z.boolean().optional(),
  /** Containers at once. */
  concurrency: z.number().int().min(1).max(64).optional(),
  /** Packages installed per container. */
  batchSize: z.number().int().min(1).max(1000).optional(),
  /** Largest size of each Debian platform's shared download cache, or "off" (never pruned). */
  aptCacheMax: z.union([size, z.literal('off')]).optional(),
  /** Lease asked for each claimed job; heartbeats renew it every third of it. */
  leaseSeconds: z.number().int().min(3).max(86_400).optional(),
  /** Wait between claims when there is no work. */
  pollInterval: duration.optional(),
  /** Longest wait between reconnection attempts when the server is unreachable. */
  reconnectMaxDelay: duration.optional(),
  keyFile: file.optional(),
  passphraseFile: file.optional(),
  /** Generator state directory (images.json, worker state). */
  home: file.optional(),
  imageNamespace: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._/-]{0,199}$/)
    .optional(),
  network: z.string().min(1).max(200).optional(),
  /** Names this worker in leases and logs (default: the host name). */
  workerName: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/)
    .optional(),
  /** Log lines on stderr: json, human, or auto (human on a terminal, else JSON; the default). */
  logFormat: z.enum(LOG_FORMATS).optional(),
  /** Least level logged (default info). */
  logLevel: z.enum(LOG_LEVELS).optional(),
});
export type WorkerConfigFile = z.infer<typeof WORKER_CONFIG_SCHEMA>;

/** Reads and validates a configuration file; every problem is reported with its key. */
export function readWorkerConfig(file: string): WorkerConfigFile {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WorkerConfigError(`cannot read the configuration file ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new WorkerConfigError(`configuration file ${file} is not valid JSON: ${(e as Error).message}`);
  }
  const r = WORKER_CONFIG_SCHEMA.safeParse(json);
  if (!r.success) {
    const problems = r.error.issues
      .slice(0, 5)
      .map((i) => {
        const where = i.path.length > 0 ? i.path.join('.') : '(top level)';
        return i.code === 'unrecognized_keys'
          ? `unknown key(s) ${i.keys.join(', ')}`
          : `${where}: ${i.message}`;
      })
      .join('; ');
    throw new WorkerConfigError(`configuration file ${file}: ${problems}`);
  }
  return r.data;
}

/** What the command line gave (commander's parsed options). */
export interface WorkerCliOptions {
  config?: string;
  server?: string;
  token?: string;
  tokenFile?: string;
  platform?: string[];
  catalogInterval?: string;
  refresh?: boolean;
  concurrency?: number;
  batchSize?: number;
  aptCacheMax?: string;
  leaseSeconds?: number;
  pollInterval?: string;
  key?: string;
  passphraseFile?: string;
  network?: string;
  workerName?: string;
  logFormat?: LogFormat;
  logLevel?: LogLevel;
  exitWhenIdle?: boolean;
}

/** Everything the worker runs with, resolved: command line, then environment, then file, then defaults. */
export interface WorkerSettings {
  server: string;
  token: string;
  /** Empty: this host's own platform. */
  platforms: string[];
  /** null: catalog sync off. */
  catalogIntervalMs: number | null;
  refreshBeforeCatalog: boolean;
  concurrency: number;
  batchSize: number;
  /** null: the download cache is never pruned. */
  aptCacheMaxBytes: number | null;
  leaseSeconds: number;
  pollIntervalMs: number;
  reconnectMaxDelayMs: number;
  keyFile: string;
  passphraseFile: string | undefined;
  home: string;
  imageNamespace: string | undefined;
  network: string | undefined;
  workerName: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  exitWhenIdle: boolean;
}

export const WORKER_DEFAULTS = {
  catalogInterval: '6h',
  concurrency: GENERATION_DEFAULTS.jobs,
  batchSize: GENERATION_DEFAULTS.batchSize,
  aptCacheMax: '20G',
  leaseSeconds: 600,
  pollInterval: '30s',
  reconnectMaxDelay: '60s',
} as const;

function readToken(file: string): string {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > MAX_TOKEN_BYTES) throw new Error(`larger than ${MAX_TOKEN_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new WorkerConfigError(`cannot read the token file ${file}: ${(e as Error).message}`);
  }
  return text.trim();
}

function checkToken(token: string, from: string): string {
  if (!/^[^\s]{1,200}$/.test(token)) {
    throw new WorkerConfigError(
      `the token from ${from} is empty or malformed (one line, no spaces, at most 200 characters)`,
    );
  }
  return token;
}

function checkServer(url: string, from: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new WorkerConfigError(`${from}: "${url}" is not a URL (e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new WorkerConfigError(`${from}: the server URL must be http:// or https://`);
  }
  return u.toString().replace(/\/+$/, '');
}

export function resolveWorkerSettings(
  cli: WorkerCliOptions,
  env: NodeJS.ProcessEnv = process.env,
): WorkerSettings {
  const configFile = cli.config ?? env.SYSATTEST_GENERATOR_CONFIG;
  const file: WorkerConfigFile = configFile ? readWorkerConfig(configFile) : {};
  const relative = (p: string | undefined) =>
    p === undefined || configFile === undefined ? p : path.resolve(path.dirname(configFile), p);

  const serverText = cli.server ?? env.SYSATTEST_SERVER ?? file.server;
  if (serverText === undefined) {
    throw new WorkerConfigError(
      'no server: give --server URL, SYSATTEST_SERVER, or "server" in the configuration file',
    );
  }
  const server = checkServer(
    serverText,
    cli.server ? '--server' : env.SYSATTEST_SERVER ? 'SYSATTEST_SERVER' : 'server',
  );

  let token: string;
  if (cli.token !== undefined) token = checkToken(cli.token, '--token');
  else if (cli.tokenFile !== undefined) token = checkToken(readToken(cli.tokenFile), cli.tokenFile);
  else if (env.SYSATTEST_GENERATOR_TOKEN)
    token = checkToken(env.SYSATTEST_GENERATOR_TOKEN, 'SYSATTEST_GENERATOR_TOKEN');
  else if (file.tokenFile !== undefined) {
    const f = relative(file.tokenFile) as string;
    token = checkToken(readToken(f), f);
  } else {
    throw new WorkerConfigError(
      'no token: give --token-file FILE, SYSATTEST_GENERATOR_TOKEN, or "tokenFile" in the configuration file ' +
        '(a generator token: sysattest-server token create --role generator)',
    );
  }

  const platforms = [
    ...new Set(
      (cli.platform?.length ? cli.platform : (file.platforms ?? [])).map((p) => {
        try {
          return formatPlatform(parsePlatform(p));
        } catch (e) {
          throw new WorkerConfigError(`--platform ${p}: ${(e as Error).message}`);
        }
      }),
    ),
  ];
  for (const p of platforms) {
    const { distro } = parsePlatform(p);
    if (packageFamily(distro) === undefined) {
      throw new WorkerConfigError(
        `${p}: unknown distribution ${JSON.stringify(distro)}; the worker generates for debian and ubuntu (apt), ` +
          'fedora, rhel, centos, rocky and almalinux (dnf), alpine (apk)',
      );
    }
  }

  const intervalText = cli.catalogInterval ?? file.catalogInterval ?? WORKER_DEFAULTS.catalogInterval;
  const catalogIntervalMs = intervalText === 'off' ? null : parseDuration(intervalText, '--catalog-interval');
  if (catalogIntervalMs !== null && catalogIntervalMs < 60_000) {
    throw new WorkerConfigError('--catalog-interval must be at least 1m (or "off")');
  }
  const leaseSeconds = cli.leaseSeconds ?? file.leaseSeconds ?? WORKER_DEFAULTS.leaseSeconds;
  const cacheText = cli.aptCacheMax ?? file.aptCacheMax ?? WORKER_DEFAULTS.aptCacheMax;
  const aptCacheMaxBytes = cacheText === 'off' ? null : parseSize(cacheText, '--apt-cache-max');
  const logFormat = cli.logFormat ?? file.logFormat ?? 'auto';
  const logLevel = cli.logLevel ?? file.logLevel ?? 'info';
  // The environment overrides the file, as for every other setting.
  const home = path.resolve(
    env.SYSATTEST_GENERATOR_HOME ? generatorHome(env) : (relative(file.home) ?? generatorHome(env)),
  );
  return {
    server,
    token,
    platforms,
    catalogIntervalMs,
    refreshBeforeCatalog: cli.refresh === false ? false : (file.refreshBeforeCatalog ?? true),
    concurrency: cli.concurrency ?? file.concurrency ?? WORKER_DEFAULTS.concurrency,
    batchSize: cli.batchSize ?? file.batchSize ?? WORKER_DEFAULTS.batchSize,
    aptCacheMaxBytes,
    leaseSeconds,
    pollIntervalMs: parseDuration(
      cli.pollInterval ?? file.pollInterval ?? WORKER_DEFAULTS.pollInterval,
      '--poll-interval',
    ),
    reconnectMaxDelayMs: parseDuration(
      file.reconnectMaxDelay ?? WORKER_DEFAULTS.reconnectMaxDelay,
      'reconnectMaxDelay',
    ),
    keyFile: path.resolve(
      cli.key ?? env.SYSATTEST_GENERATOR_KEY ?? relative(file.keyFile) ?? path.join(home, 'signing-key.asc'),
    ),
    passphraseFile: cli.passphraseFile ?? relative(file.passphraseFile),
    home,
    imageNamespace: file.imageNamespace,
    network: cli.network ?? file.network,
    workerName:
      cli.workerName ??
      file.workerName ??
      (os
        .hostname()
        .replace(/[^A-Za-z0-9._-]/g, '-')
        .slice(0, 100) ||
        'worker'),
    logFormat,
    logLevel,
    exitWhenIdle: cli.exitWhenIdle ?? false,
  };
}
