import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createLogger,
  humanLine,
  LogSettingError,
  parseLogFormat,
  parseLogLevel,
  REDACTED,
  resolveLogFormat,
  type LoggerOptions,
} from './logger.js';

/** A logger writing into an array of lines. */
function captured(options: Omit<LoggerOptions, 'destination' | 'service'> = {}) {
  const lines: string[] = [];
  const log = createLogger({
    service: 'sysattest-test',
    ...options,
    destination: { write: (s) => lines.push(s) },
  });
  return { log, lines };
}

describe('createLogger', () => {
  it('writes one JSON object per line: ISO time, level by name, service, msg, the fields', () => {
    const { log, lines } = captured({ format: 'json' });
    log.info({ event: 'job-start', jobId: 7 }, 'generating jq');
    assert.equal(lines.length, 1);
    assert.ok(lines[0]?.endsWith('}\n'));
    const entry = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(entry.level, 'info');
    assert.match(String(entry.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(entry.service, 'sysattest-test');
    assert.equal(entry.pid, process.pid);
    assert.equal(entry.msg, 'generating jq');
    assert.equal(entry.event, 'job-start');
    assert.equal(entry.jobId, 7);
  });

  it('drops lines below its level', () => {
    const { log, lines } = captured({ format: 'json', level: 'warn' });
    log.info('not written');
    log.debug('not written');
    log.warn('written');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { msg: string }).msg),
      ['written'],
    );
  });

  it('redacts credentials in logged requests, responses and headers, however they are logged', () => {
    const { log, lines } = captured({ format: 'json', level: 'trace' });
    const headers = {
      authorization: 'Bearer sat_secret-token',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      cookie: 'sysattest_session=cookie-secret',
      host: 'example.test',
    };
    log.info({ req: { method: 'GET', headers } }, 'request');
    log.info({ res: { headers: { 'set-cookie': 'sysattest_session=cookie-secret' } } }, 'response');
    log.info({ headers }, 'headers');
    const all = lines.join('');
    for (const secret of ['sat_secret-token', 'cHJveHk6c2VjcmV0', 'cookie-secret'])
      assert.ok(!all.includes(secret), `${secret} is not in the log`);
    const first = JSON.parse(lines[0] as string) as { req: { headers: Record<string, string> } };
    assert.equal(first.req.headers.authorization, REDACTED);
    assert.equal(first.req.headers.cookie, REDACTED);
    assert.equal(first.req.headers.host, 'example.test', 'other headers are kept');
  });

  it('writes human lines when asked, and on a terminal when left to choose', () => {
    const human = captured({ format: 'human' });
    human.log.warn(
      { event: 'lease-lost', jobId: 3, platform: 'debian/bookworm/amd64' },
      'job 3 was taken over',
    );
    assert.match(
      human.lines[0] as string,
      /^\d{4}-\d\d-\d\dT[\d:.]+Z warn {2}job 3 was taken over {2}jobId=3 platform=debian\/bookworm\/amd64\n$/,
    );
    const tty = captured({ isTTY: true });
    tty.log.info('hello');
    assert.match(tty.lines[0] as string, /Z info {2}hello\n$/);
    const pipe = captured({ isTTY: false });
    pipe.log.info('hello');
    assert.equal((JSON.parse(pipe.lines[0] as string) as { msg: string }).msg, 'hello');
  });
});

describe('humanLine', () => {
  it('quotes spaced strings, joins lists, shows objects as JSON and an error with its stack', () => {
    const line = humanLine(
      JSON.stringify({
        level: 'error',
        time: '2026-12-06T17:00:00.000Z',
        service: 's',
        msg: 'upload failed',
        packages: ['a', 'b'],
        why: 'two words',
        token: { name: 'ci', role: 'generator' },
        err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x' },
      }),
    );
    assert.equal(
      line,
      '2026-12-06T17:00:00.000Z error upload failed  packages=a,b why="two words" ' +
        'token={"name":"ci","role":"generator"} err=boom\n    Error: boom\n        at x\n',
    );
  });

  it('passes a line that is not JSON through as it is', () => {
    assert.equal(humanLine('plain text'), 'plain text\n');
  });
});

describe('log settings', () => {
  it('accepts the level and format names and refuses anything else with a coded error', () => {
    assert.equal(parseLogLevel('debug'), 'debug');
    assert.equal(parseLogFormat('human'), 'human');
    assert.throws(
      () => parseLogLevel('verbose'),
      (e: unknown) => e instanceof LogSettingError && e.code === 'INVALID_LOG_SETTING',
    );
    assert.throws(() => parseLogFormat('xml'), LogSettingError);
    assert.equal(resolveLogFormat('auto', true), 'human');
    assert.equal(resolveLogFormat('auto', false), 'json');
    assert.equal(resolveLogFormat('json', true), 'json');
  });
});
