/**
 * The worker's log: core's logger (`@sysattest/core/log`, the server's too), one line per event
 * on stderr, JSON (for journald and log shippers) or a human line on a terminal. Every line has a
 * stable `event` name that scripts and tests match on; the message is for people.
 */
import { createLogger, type LogFormat, type Logger, type LogLevel } from '@sysattest/core/log';

export type { LogFormat, LogLevel } from '@sysattest/core/log';
export type LogFields = Record<string, string | number | boolean | null | undefined | string[] | number[]>;

export interface LogSink {
  write(s: string): unknown;
}

export class WorkerLog {
  readonly logger: Logger;

  /** `sink`: where lines go (default stderr). */
  constructor(format: LogFormat, sink?: LogSink, level: LogLevel = 'info') {
    this.logger = createLogger({
      service: 'sysattest-generator',
      format,
      level,
      ...(sink === undefined ? {} : { destination: { write: (s: string) => void sink.write(s) } }),
    });
  }

  debug(event: string, message: string, fields: LogFields = {}): void {
    this.logger.debug({ event, ...fields }, message);
  }
  info(event: string, message: string, fields: LogFields = {}): void {
    this.logger.info({ event, ...fields }, message);
  }
  warn(event: string, message: string, fields: LogFields = {}): void {
    this.logger.warn({ event, ...fields }, message);
  }
  error(event: string, message: string, fields: LogFields = {}): void {
    this.logger.error({ event, ...fields }, message);
  }
}
