/**
 * The server's configuration file (JSON), and how it merges with flags and the environment:
 * flags > environment > file > defaults.
 *
 * The file is `--config FILE`, else $SYSATTEST_SERVER_CONFIG, else /etc/sysattest/server.json when
 * that exists (a file named by the flag or the variable must exist). Unknown keys are refused with
 * their name, so a typo never silently means "default". Relative paths in the file (an SQLite
 * database, trustKeys) are relative to the file's directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT, SysattestError } from '@sysattest/core';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '@sysattest/core/log';
import { z } from 'zod';
import {
  DEFAULT_QUEUE_QUOTA,
  DEFAULT_RATE_LIMIT,
  DEFAULT_REPORT_BODY_BYTES,
  type QueueQuotaOptions,
  type RateLimitOptions,
} from './http/index.js';
import {
  DEFAULT_HOST_POLICY,
  DEFAULT_JOB_POLICY,
  DEFAULT_SQLITE_PATH,
  parseStoreLocation,
  type JobPolicy,
} from './store/index.js';

export const DEFAULT_CONFIG_FILE = '/etc/sysattest/server.json';
/** Largest configuration file read. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** A configuration that cannot be used (exit 64, like a usage error). */
export class ServerConfigError extends SysattestError<'CONFIG'> {
  readonly exitCode = EXIT.USAGE;
}

const port = z.int().min(0).max(65535);
const positive = z.int().min(1);

/** A duration as the file and the flags write it: a whole number of s, m, h or d (`48h`). */
export const DURATION = /^([1-9][0-9]{0,6})([smhd])$/;
const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
/** Longest staleAfter (a year). */
const MAX_STALE_AFTER_SECONDS = 366 * 86_400;

/** Seconds of a duration (`48h` → 172800), or a ServerConfigError naming `what`. */
export function parseDuration(value: string, what: string): number {
  const m = DURATION.exec(value);
  const seconds = m === null ? NaN : Number(m[1]) * UNIT_SECONDS[m[2] as keyof typeof UNIT_SECONDS];
  if (!(seconds <= MAX_STALE_AFTER_SECONDS)) {
    throw new ServerConfigError(
      'CONFIG',
      `${what} is a whole number of s, m, h or d of at most 366d (e.g. 48h), not ${JSON.stringify(value).slice(0, 40)}`,
    );
  }
  return seconds;
}

/** Report retention and the upload cap (`reports` in the file). */
const reportsConfig = z.strictObject({
  keep: positive.max(100_000).optional(),
  maxAgeDays: positive.max(36_500).optional(),
  maxBodyBytes: z
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .optional(),
});

/** Every key of the file (all optional). Documented in README.md ("Server configuration") and --help. */
export const ServerConfigFile = z.strictObject({
  /** Address to listen on (default 127.0.0.1). */
  host: z.string().min(1).max(255).optional(),
  /** TCP port (default 8080; 0: any free port). */
  port: port.optional(),
  /** SQLite path, sqlite:PATH or postgres://… (default ./data/sysattest.db). */
  database: z.string().min(1).max(4096).optional(),
  /** Most PostgreSQL connections per server process (default 10). */
  databasePoolSize: z.int().min(1).max(1000).optional(),
  /** Generator public key files (armored) trusted at start, in addition to the database's. */
  trustKeys: z.array(z.string().min(1).max(4096)).max(1000).optional(),
  /** Lookups, reverse lookups, /v1/keys and /metrics need a reader token (default false). */
  readsNeedToken: z.boolean().optional(),
  /** Take the client address from X-Forwarded-For when the peer is one of these proxies (default false). */
  trustProxy: z.union([z.boolean(), z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Per-client limit (per token, else per IP): max requests per windowSeconds, or false for none. */
  rateLimit: z
    .union([
      z.literal(false),
      z.strictObject({ max: positive.max(1_000_000_000), windowSeconds: positive.max(86_400) }),
    ])
    .optional(),
  /** Generation-queue retry policy. */
  jobs: z
    .strictObject({
      maxAttempts: positive.max(1000).optional(),
      backoffBaseSeconds: positive.max(86_400).optional(),
      backoffMaxSeconds: positive.max(30 * 86_400).optional(),
    })
    .optional(),
  /**
   * Packages to track at start, by platform ({"debian/bookworm/amd64": ["openssl", …]}), or "all":
   * every version the platform's catalog carries gets a manifest (the backlog, after client requests).
   */
  track: z
    .record(
      z.string().min(1).max(200),
      z.union([z.literal('all'), z.array(z.string().min(1).max(256)).max(100_000)]),
    )
    .optional(),
  /** The dashboard's session secret file (default: dashboard-session.key in the state directory). */
  sessionSecretFile: z.string().min(1).max(4096).optional(),
  /** Only lookups with a token (reader or above) queue jobs and track packages (default false). */
  queueNeedsToken: z.boolean().optional(),
  /** What anonymous lookups may queue per client address (IPv6: per /64) per window, or false for no limit. */
  anonymousQueueQuota: z
    .union([
      z.literal(false),
      z.strictObject({ max: z.int().min(0).max(1_000_000_000), windowSeconds: positive.max(7 * 86_400) }),
    ])
    .optional(),
  /** A host with no report for this long is stale (default 48h). */
  staleAfter: z.string().regex(DURATION, 'a duration such as 48h, 2d or 90m').optional(),
  /** Hosts' reports: how many and how long per host, and the upload's body cap. */
  reports: reportsConfig.optional(),
  /** Least level logged (default info). */
  logLevel: z.enum(LOG_LEVELS).optional(),
  /** Log lines on stderr: json, human, or auto (default: human on a terminal, else JSON). */
  logFormat: z.enum(LOG_FORMATS).optional(),
});
export type ServerConfigFile = z.infer<typeof ServerConfigFile>;

/** The settings serve runs with, after merging. */
export interface ServerSettings {
  host: string;
  port: number;
  database: string;
  databasePoolSize: number;
  trustKeys: string[];
  readsNeedToken: boolean;
  trustProxy: boolean | string | string[];
  rateLimit: RateLimitOptions | false;
  jobs: JobPolicy;
  track: Record<string, string[] | 'all'>;
  /** The dashboard's session secret file; undefined: the default one, made on first start. */
  sessionSecretFile?: string;
  queueNeedsToken: boolean;
  anonymousQueueQuota: QueueQuotaOptions | false;
  /** A host with no report for this long is stale. */
  staleAfterSeconds: number;
  /** Reports kept per host (the latest included), their longest age, and the upload's body cap. */
  reports: { keep: number; maxAgeDays: number; maxBodyBytes: number };
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** The configuration file read, if any. */
  configFile?: string;
}

export const DEFAULT_SETTINGS: Omit<ServerSettings, 'configFile' | 'sessionSecretFile'> = {
  host: '127.0.0.1',
  port: 8080,
  database: DEFAULT_SQLITE_PATH,
  databasePoolSize: 10,
  trustKeys: [],
  readsNeedToken: false,
  trustProxy: false,
  rateLimit: DEFAULT_RATE_LIMIT,
  jobs: DEFAULT_JOB_POLICY,
  track: {},
  queueNeedsToken: false,
  anonymousQueueQuota: DEFAULT_QUEUE_QUOTA,
  staleAfterSeconds: DEFAULT_HOST_POLICY.staleAfterSeconds,
  reports: {
    keep: DEFAULT_HOST_POLICY.keep,
    maxAgeDays: DEFAULT_HOST_POLICY.maxAgeDays,
    maxBodyBytes: DEFAULT_REPORT_BODY_BYTES,
  },
  logLevel: 'info',
  logFormat: 'auto',
};

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => JSON.stringify(k)).join(', ');
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}${at}`;
  }
  return `${issue.message}${at}`;
}

/** Parses and validates a configuration file's text; `where` names it in messages. */
export function parseConfig(text: string, where: string): ServerConfigFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ServerConfigError('CONFIG', `${where}: not valid JSON (${(e as Error).message})`);
  }
  const result = ServerConfigFile.safeParse(json);
  if (!result.success) {
    const issues = result.error.issues.slice(0, 5).map(describeIssue);
    throw new ServerConfigError('CONFIG', `${where}: ${issues.join('; ')}`);
  }
  return result.data;
}

/**
 * Which file to read: the flag's, else the environment's, else the default when it exists.
 * Returns undefined when there is none.
 */
export function configFileLocation(flag: string | undefined, env: NodeJS.ProcessEnv): string | undefined {
  const named = flag ?? (env.SYSATTEST_SERVER_CONFIG?.trim() || undefined);
  if (named !== undefined) return named;
  return fs.existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined;
}

/** Reads and validates a configuration file, with relative paths made relative to its directory. */
export function readConfigFile(file: string): ServerConfigFile {
  let text: string;
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    if (stat.size > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ServerConfigError(
      'CONFIG',
      `cannot read the configuration file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const config = parseConfig(text, file);
  const dir = path.dirname(path.resolve(file));
  const database = config.database === undefined ? undefined : relativeDatabase(config.database, dir, file);
  return {
    ...config,
    ...(database === undefined ? {} : { database }),
    ...(config.trustKeys === undefined
      ? {}
      : { trustKeys: config.trustKeys.map((k) => path.resolve(dir, k)) }),
    ...(config.sessionSecretFile === undefined
      ? {}
      : { sessionSecretFile: path.resolve(dir, config.sessionSecretFile) }),
  };
}

function relativeDatabase(location: string, dir: string, file: string): string {
  let parsed;
  try {
    parsed = parseStoreLocation(location);
  } catch (e) {
    throw new ServerConfigError('CONFIG', `${file}: database: ${(e as Error).message}`);
  }
  if (parsed.dialect === 'postgres' || parsed.path === ':memory:' || path.isAbsolute(parsed.path))
    return location;
  return path.resolve(dir, parsed.path);
}

/** What the command line and the environment said (undefined: not said). */
export interface SettingOverrides {
  host?: string;
  port?: number;
  database?: string;
  trustKeys?: string[];
  readsNeedToken?: boolean;
  rateLimit?: RateLimitOptions | false;
  sessionSecretFile?: string;
  queueNeedsToken?: boolean;
  staleAfterSeconds?: number;
  reportsKeep?: number;
  reportsMaxAgeDays?: number;
  reportsMaxBodyBytes?: number;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

/** flags/env (already merged by the caller: commander gives flags precedence) > file > defaults. */
export function mergeSettings(
  overrides: SettingOverrides,
  file: ServerConfigFile | undefined,
  configFile?: string,
): ServerSettings {
  const f = file ?? {};
  return {
    host: overrides.host ?? f.host ?? DEFAULT_SETTINGS.host,
    port: overrides.port ?? f.port ?? DEFAULT_SETTINGS.port,
    database: overrides.database ?? f.database ?? DEFAULT_SETTINGS.database,
    databasePoolSize: f.databasePoolSize ?? DEFAULT_SETTINGS.databasePoolSize,
    trustKeys:
      overrides.trustKeys !== undefined && overrides.trustKeys.length > 0
        ? overrides.trustKeys
        : (f.trustKeys ?? []),
    readsNeedToken: overrides.readsNeedToken ?? f.readsNeedToken ?? DEFAULT_SETTINGS.readsNeedToken,
    trustProxy: f.trustProxy ?? DEFAULT_SETTINGS.trustProxy,
    rateLimit: overrides.rateLimit ?? f.rateLimit ?? DEFAULT_SETTINGS.rateLimit,
    jobs: { ...DEFAULT_SETTINGS.jobs, ...f.jobs },
    track: f.track ?? {},
    ...optional('sessionSecretFile', overrides.sessionSecretFile ?? f.sessionSecretFile),
    queueNeedsToken: overrides.queueNeedsToken ?? f.queueNeedsToken ?? DEFAULT_SETTINGS.queueNeedsToken,
    anonymousQueueQuota: f.anonymousQueueQuota ?? DEFAULT_SETTINGS.anonymousQueueQuota,
    staleAfterSeconds:
      overrides.staleAfterSeconds ??
      (f.staleAfter === undefined ? undefined : parseDuration(f.staleAfter, 'staleAfter')) ??
      DEFAULT_SETTINGS.staleAfterSeconds,
    reports: {
      keep: overrides.reportsKeep ?? f.reports?.keep ?? DEFAULT_SETTINGS.reports.keep,
      maxAgeDays: overrides.reportsMaxAgeDays ?? f.reports?.maxAgeDays ?? DEFAULT_SETTINGS.reports.maxAgeDays,
      maxBodyBytes:
        overrides.reportsMaxBodyBytes ?? f.reports?.maxBodyBytes ?? DEFAULT_SETTINGS.reports.maxBodyBytes,
    },
    logLevel: overrides.logLevel ?? f.logLevel ?? DEFAULT_SETTINGS.logLevel,
    logFormat: overrides.logFormat ?? f.logFormat ?? DEFAULT_SETTINGS.logFormat,
    ...optional('configFile', configFile),
  };
}

/** `{ key: value }`, or nothing when the value is undefined (exactOptionalPropertyTypes). */
function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** `--rate-limit` values: `MAX/SECONDS` (e.g. 3000/60) or `off`. */
export function parseRateLimit(value: string): RateLimitOptions | false {
  if (value === 'off') return false;
  const m = /^([1-9][0-9]{0,9})\/([1-9][0-9]{0,4})$/.exec(value);
  if (m === null || Number(m[2]) > 86_400) {
    throw new ServerConfigError(
      'CONFIG',
      `a rate limit is MAX/SECONDS (e.g. 3000/60, at most 86400 s) or off, not ${JSON.stringify(value)}`,
    );
  }
  return { max: Number(m[1]), windowSeconds: Number(m[2]) };
}
