import * as fs from 'node:fs';
import { z } from 'zod';
import { SysattestError } from '@sysattest/core';

/**
 * The client's configuration: a JSON file (`--config FILE`, `$SYSATTEST_CONFIG`, else
 * /etc/sysattest/client.json when it exists), then the environment, then command-line flags, each
 * overriding the one before. Unknown keys are refused so a misspelt setting is never silently
 * ignored.
 *
 * ```json
 * {
 *   "server": "https://sysattest.example.org",   // base URL of the sysattest server
 *   "keyring": "/etc/sysattest/generator.asc",    // verify with these keys instead of the pinned ones
 *   "trustDir": "/var/lib/sysattest-client/trusted-keys", // where `trust add` pins keys
 *   "cacheDir": "/var/cache/sysattest",           // verified manifests kept between runs
 *   "token": "…",                                 // a reader token, when the server wants one
 *   "timeoutSeconds": 60,                         // per HTTP request
 *   "batchSize": 500,                             // packages per lookup request
 *   "jobs": 4,                                    // hashing threads
 *   "includeConfig": false,                       // conffile changes are failures
 *   "scanDirs": ["/usr/bin", "/usr/sbin", …],     // where --scan-unowned looks
 *   "acceptLocalDiversions": false,               // honour dpkg-divert --local (each listed)
 *   "acceptDiversions": ["/usr/bin/foo"],         // honour these diversions whoever made them
 *   "allowStatOverrides": ["/usr/bin/foo"],       // stat overrides allowed to raise privilege
 *   "catalogMaxAgeDays": 7,                       // an older catalog snapshot: stale-catalog
 *   "report": false,                              // upload each report to the server (--report)
 *   "reportTokenFile": "/etc/sysattest/reporter-token", // the host's reporter token, mode 0600
 *   "stateDir": "/var/lib/sysattest-client"       // the report spool lives here (report-spool/)
 * }
 * ```
 */
export class ConfigError extends SysattestError<'CONFIG_INVALID'> {
  readonly exitCode = 64;
}

export const DEFAULT_CONFIG_FILE = '/etc/sysattest/client.json';
const MAX_CONFIG_BYTES = 1024 * 1024;

const absolutePath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith('/') && !p.includes('\0'), 'must be an absolute path');

export const serverUrl = z
  .string()
  .max(2048)
  .refine((u) => {
    try {
      const url = new URL(u);
      return (
        (url.protocol === 'http:' || url.protocol === 'https:') && url.username === '' && url.password === ''
      );
    } catch {
      return false;
    }
  }, 'must be an http:// or https:// URL without credentials');

export const configSchema = z.strictObject({
  server: serverUrl.optional(),
  keyring: absolutePath.optional(),
  trustDir: absolutePath.optional(),
  cacheDir: absolutePath.optional(),
  token: z
    .string()
    .regex(/^[^\s]{1,200}$/, 'must be a token without spaces')
    .optional(),
  timeoutSeconds: z.int().min(1).max(3600).optional(),
  batchSize: z.int().min(1).max(100_000).optional(),
  jobs: z.int().min(1).max(256).optional(),
  includeConfig: z.boolean().optional(),
  scanDirs: z.array(absolutePath).max(256).optional(),
  acceptLocalDiversions: z.boolean().optional(),
  acceptDiversions: z.array(absolutePath).max(10_000).optional(),
  allowStatOverrides: z.array(absolutePath).max(10_000).optional(),
  catalogMaxAgeDays: z.number().min(0).max(3650).optional(),
  report: z.boolean().optional(),
  reportTokenFile: absolutePath.optional(),
  stateDir: absolutePath.optional(),
});

export type ClientConfig = z.infer<typeof configSchema>;

/** Environment variables and the setting each one sets. */
export const ENVIRONMENT: Readonly<Record<string, keyof ClientConfig>> = {
  SYSATTEST_SERVER: 'server',
  SYSATTEST_KEYRING: 'keyring',
  SYSATTEST_TRUST_DIR: 'trustDir',
  SYSATTEST_CACHE_DIR: 'cacheDir',
  SYSATTEST_TOKEN: 'token',
  SYSATTEST_TIMEOUT: 'timeoutSeconds',
  SYSATTEST_JOBS: 'jobs',
  SYSATTEST_REPORT: 'report',
  SYSATTEST_REPORT_TOKEN_FILE: 'reportTokenFile',
  SYSATTEST_STATE_DIR: 'stateDir',
};

/** How the environment spells a boolean (`SYSATTEST_REPORT=1`); anything else is refused. */
const ENV_BOOLEANS: Readonly<Record<string, boolean>> = {
  '1': true,
  true: true,
  yes: true,
  '0': false,
  false: false,
  no: false,
};

function fromEnvText(key: keyof ClientConfig, v: string): unknown {
  if (key === 'timeoutSeconds' || key === 'jobs') return /^[0-9]{1,6}$/.test(v) ? Number(v) : v;
  if (key === 'report') return ENV_BOOLEANS[v.toLowerCase()] ?? v;
  return v;
}

function describeIssues(error: z.ZodError, where: string): string {
  return error.issues
    .map((i) => `${where}${i.path.length > 0 ? ` ${i.path.join('.')}` : ''}: ${i.message}`)
    .join('; ');
}

/** Reads and validates a config file. `required`: a missing file is an error (an explicit --config). */
export function readConfigFile(file: string, required: boolean): ClientConfig {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new ConfigError('CONFIG_INVALID', `config file ${file} is not a regular file`);
    if (st.size > MAX_CONFIG_BYTES) {
      throw new ConfigError('CONFIG_INVALID', `config file ${file} is over ${MAX_CONFIG_BYTES} bytes`);
    }
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !required) return {};
    throw new ConfigError(
      'CONFIG_INVALID',
      `cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('CONFIG_INVALID', `config file ${file} is not JSON: ${(e as Error).message}`);
  }
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError('CONFIG_INVALID', describeIssues(parsed.error, file));
  return parsed.data;
}

/** The settings given by the environment, validated like the file. */
export function configFromEnv(env: NodeJS.ProcessEnv): ClientConfig {
  const raw: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENVIRONMENT)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    raw[key] = fromEnvText(key, v);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const byKey = new Map(Object.entries(ENVIRONMENT).map(([n, k]) => [k, n]));
    throw new ConfigError(
      'CONFIG_INVALID',
      parsed.error.issues
        .map((i) => `${byKey.get(i.path[0] as keyof ClientConfig) ?? 'environment'}: ${i.message}`)
        .join('; '),
    );
  }
  return parsed.data;
}

/** File (explicit, `$SYSATTEST_CONFIG` or the default), then environment. */
export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): ClientConfig {
  const env = options.env ?? process.env;
  const explicit = options.file ?? (env.SYSATTEST_CONFIG || undefined);
  const fromFile = readConfigFile(explicit ?? DEFAULT_CONFIG_FILE, explicit !== undefined);
  return { ...fromFile, ...configFromEnv(env) };
}
