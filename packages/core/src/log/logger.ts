/**
 * The one logger of the long-running programs (`sysattest-server serve`, `sysattest-generator
 * work`): pino, one JSON object per line on stderr for journald and log shippers, or a human line
 * on a terminal. Every line has `time` (ISO 8601), `level` (its name), `service`, `msg`; events a
 * script matches on carry a stable `event` name.
 *
 * Credentials never reach a line: whatever logs a request, a response or their headers has its
 * `Authorization`, `Proxy-Authorization`, `Cookie` and `Set-Cookie` replaced by REDACTED (pino's
 * redact, applied to every line), and the access log names a token by its name and role only.
 *
 * Imported as `@sysattest/core/log` (not from the package index), so the client, which logs
 * nothing, does not load pino.
 */
import * as os from 'node:os';
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';
import { SysattestError } from '../errors.js';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `auto`: human on a terminal, JSON otherwise (a pipe, a file, the journal). */
export const LOG_FORMATS = ['json', 'human', 'auto'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/** Where a request's or a response's credentials may sit in a logged object. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'headers["set-cookie"]',
] as const;

/** Settings that are not a log level or format (from a flag, the environment or a file). */
export class LogSettingError extends SysattestError<'INVALID_LOG_SETTING'> {}

export function parseLogLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value))
    throw new LogSettingError('INVALID_LOG_SETTING', `a log level is one of ${LOG_LEVELS.join(', ')}`);
  return value as LogLevel;
}

export function parseLogFormat(value: string): LogFormat {
  if (!(LOG_FORMATS as readonly string[]).includes(value))
    throw new LogSettingError('INVALID_LOG_SETTING', `a log format is one of ${LOG_FORMATS.join(', ')}`);
  return value as LogFormat;
}

export interface LoggerOptions {
  /** The program, written in every line (`service`). */
  service: string;
  /** Default info. */
  level?: LogLevel;
  /** Default auto. */
  format?: LogFormat;
  /** Where lines go (default stderr, written synchronously so none is lost at exit). */
  destination?: DestinationStream;
  /** Whether the destination is a terminal, for `auto` (default: whether stderr is). */
  isTTY?: boolean;
}

/** The format `auto` stands for on this destination. */
export function resolveLogFormat(format: LogFormat, isTTY: boolean): 'json' | 'human' {
  if (format !== 'auto') return format;
  return isTTY ? 'human' : 'json';
}

export function createLogger(options: LoggerOptions): Logger {
  const isTTY = options.isTTY ?? process.stderr.isTTY === true;
  const format = resolveLogFormat(options.format ?? 'auto', isTTY);
  const target = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { service: options.service, pid: process.pid, hostname: os.hostname() },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
      serializers: { err: stdSerializers.err },
    },
    format === 'json' ? target : humanStream(target),
  );
}

/**
 * Fields a human line leaves out: its head, what is the same on every line, and the event name
 * (for scripts, which read JSON; the message says the same to a person).
 */
const HEAD = new Set(['time', 'level', 'msg', 'service', 'pid', 'hostname', 'event']);

/** One value as `key=value` shows it: lists joined, spaced strings quoted, objects as JSON. */
function shown(value: unknown): string {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object')) return value.join(',');
  if (typeof value === 'string') return /\s|^$/.test(value) ? JSON.stringify(value) : value;
  if (value !== null && typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

/**
 * A JSON log line as a person reads it: `time level message  key=value …`. An error shows its
 * message as `err=…` and its stack on the lines after.
 */
export function humanLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { err, ...rest } = entry;
  const fields = Object.entries(rest)
    .filter(([k, v]) => !HEAD.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${shown(v)}`);
  let stack = '';
  if (err !== null && typeof err === 'object') {
    const e = err as { message?: unknown; stack?: unknown };
    fields.push(`err=${shown(String(e.message ?? ''))}`);
    if (typeof e.stack === 'string') stack = `\n${e.stack.replace(/^/gm, '    ')}`;
  }
  const level = String(entry.level ?? '').padEnd(5);
  const head = `${String(entry.time ?? '')} ${level} ${String(entry.msg ?? '')}`;
  return `${head}${fields.length > 0 ? `  ${fields.join(' ')}` : ''}${stack}\n`;
}

/** A destination that writes each line in the human format to `target`. */
export function humanStream(target: DestinationStream): DestinationStream {
  return { write: (line: string) => target.write(humanLine(line.trimEnd())) };
}
