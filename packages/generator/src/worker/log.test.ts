import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { WorkerLog } from './log.js';

describe('WorkerLog', () => {
  it("writes the server's line shape: time, level by name, service, event, msg, the fields", () => {
    const lines: string[] = [];
    const log = new WorkerLog('json', { write: (s: string) => lines.push(s) });
    log.info('job-complete', 'job 4 done: jq 1.6', {
      jobId: 4,
      platform: 'debian/bookworm/amd64',
      gone: undefined,
    });
    log.debug('heartbeat-failed', 'below the level: not written');
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.deepEqual(Object.keys(entry).sort(), [
      'event',
      'hostname',
      'jobId',
      'level',
      'msg',
      'pid',
      'platform',
      'service',
      'time',
    ]);
    assert.equal(entry.level, 'info');
    assert.equal(entry.service, 'sysattest-generator');
    assert.equal(entry.event, 'job-complete');
    assert.equal(entry.msg, 'job 4 done: jq 1.6');
    assert.equal(entry.jobId, 4);
  });

  it('writes human lines, and debug ones when asked for', () => {
    const lines: string[] = [];
    const log = new WorkerLog('human', { write: (s: string) => lines.push(s) }, 'debug');
    log.debug('batch-start', 'installing 2 package(s)', { packages: ['jq', 'curl'] });
    assert.match(lines[0] as string, /Z debug installing 2 package\(s\) {2}packages=jq,curl\n$/);
  });
});
