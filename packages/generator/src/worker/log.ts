/**
 * The worker's log: one line per event on stderr, either JSON (one object per line, for journald
 * and log shippers) or a human line. Every line has a stable `event` name that scripts and tests
 * match on; the message is for people.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'human';
export type LogFields = Record<string, string | number | boolean | null | undefined | string[] | number[]>;

export interface LogSink {
  write(s: string): unknown;
}

export class WorkerLog {
  constructor(
    private readonly format: LogFormat,
    private readonly sink: LogSink = process.stderr,
    private readonly now: () => Date = () => new Date(),
  ) {}

  debug(event: string, message: string, fields: LogFields = {}): void {
    this.line('debug', event, message, fields);
  }
  info(event: string, message: string, fields: LogFields = {}): void {
    this.line('info', event, message, fields);
  }
  warn(event: string, message: string, fields: LogFields = {}): void {
    this.line('warn', event, message, fields);
  }
  error(event: string, message: string, fields: LogFields = {}): void {
    this.line('error', event, message, fields);
  }

  private line(level: LogLevel, event: string, message: string, fields: LogFields): void {
    const time = this.now().toISOString();
    const defined = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (this.format === 'json') {
      this.sink.write(
        `${JSON.stringify({ time, level, event, msg: message, ...Object.fromEntries(defined) })}\n`,
      );
      return;
    }
    const extra = defined
      .map(
        ([k, v]) =>
          `${k}=${Array.isArray(v) ? v.join(',') : typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v)}`,
      )
      .join(' ');
    this.sink.write(`${time} ${level.padEnd(5)} ${message}${extra ? `  ${extra}` : ''}\n`);
  }
}
