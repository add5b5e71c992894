import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { backoffDelayMs } from './backoff.js';
import { parseDuration, parseSize, resolveWorkerSettings, WorkerConfigError } from './config.js';
import { failureFor, groupByBuildPlatform, notOffered, roundsOfDistinctNames } from './worker.js';
import type { GenerationFailure } from '../generation/results.js';
import type { ClaimedJob } from './server-api.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-worker-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}

const tokenFile = write('token', 'secret-token-123\n');

describe('worker settings', () => {
  it('reads a configuration file, with paths relative to it and the command line winning', () => {
    const config = write(
      'worker.json',
      JSON.stringify({
        server: 'http://server.example:8080/',
        tokenFile: 'token',
        platforms: ['debian/bookworm/amd64', 'debian/trixie/amd64'],
        catalogInterval: '12h',
        concurrency: 2,
        keyFile: 'keys/signing.asc',
        logFormat: 'json',
      }),
    );
    const s = resolveWorkerSettings({ config, concurrency: 3 }, {});
    assert.equal(s.server, 'http://server.example:8080');
    assert.equal(s.token, 'secret-token-123');
    assert.deepEqual(s.platforms, ['debian/bookworm/amd64', 'debian/trixie/amd64']);
    assert.equal(s.catalogIntervalMs, 12 * 3600 * 1000);
    assert.equal(s.concurrency, 3);
    assert.equal(s.keyFile, path.join(dir, 'keys/signing.asc'));
    assert.equal(s.logFormat, 'json');
    assert.equal(s.refreshBeforeCatalog, true);
  });

  it('takes the token and the config file from the environment', () => {
    const config = write('env.json', JSON.stringify({ server: 'http://127.0.0.1:1' }));
    const s = resolveWorkerSettings(
      {},
      { SYSATTEST_GENERATOR_CONFIG: config, SYSATTEST_GENERATOR_TOKEN: 'tok' },
    );
    assert.equal(s.token, 'tok');
    assert.equal(s.server, 'http://127.0.0.1:1');
    assert.equal(s.catalogIntervalMs, 6 * 3600 * 1000, 'default interval');
  });

  it('refuses unknown keys, bad values and missing essentials, naming what is wrong', () => {
    const typo = write(
      'typo.json',
      JSON.stringify({ server: 'http://x', platfroms: ['debian/bookworm/amd64'] }),
    );
    assert.throws(() => resolveWorkerSettings({ config: typo, tokenFile }, {}), /unknown key\(s\) platfroms/);
    const bad = write('bad.json', JSON.stringify({ server: 'http://x', catalogInterval: 'often' }));
    assert.throws(() => resolveWorkerSettings({ config: bad, tokenFile }, {}), /catalogInterval: a duration/);
    const notJson = write('not.json', '{ server: ');
    assert.throws(() => resolveWorkerSettings({ config: notJson }, {}), /not valid JSON/);
    assert.throws(() => resolveWorkerSettings({ tokenFile }, {}), /no server/);
    assert.throws(() => resolveWorkerSettings({ server: 'http://x' }, {}), /no token/);
    assert.throws(() => resolveWorkerSettings({ server: 'ftp://x', tokenFile }, {}), /http/);
    assert.throws(
      () => resolveWorkerSettings({ server: 'http://x', tokenFile, platform: ['plan9/4/x86_64'] }, {}),
      /plan9\/4\/x86_64: unknown distribution "plan9"; the worker generates for debian/,
    );
    assert.deepEqual(
      resolveWorkerSettings(
        { server: 'http://x', tokenFile, platform: ['fedora/41/x86_64', 'alpine/3.20/x86_64'] },
        {},
      ).platforms,
      ['fedora/41/x86_64', 'alpine/3.20/x86_64'],
    );
    assert.throws(
      () => resolveWorkerSettings({ server: 'http://x', tokenFile, catalogInterval: '10s' }, {}),
      /at least 1m/,
    );
    try {
      resolveWorkerSettings({ tokenFile }, {});
    } catch (e) {
      assert.ok(e instanceof WorkerConfigError);
      assert.equal(e.exitCode, 64);
    }
  });

  it('parses durations and "off"', () => {
    assert.equal(parseDuration('500ms', 'x'), 500);
    assert.equal(parseDuration('2d', 'x'), 2 * 86_400_000);
    assert.throws(() => parseDuration('5 minutes', 'x'), /not a duration/);
    const s = resolveWorkerSettings({ server: 'http://x', tokenFile, catalogInterval: 'off' }, {});
    assert.equal(s.catalogIntervalMs, null);
  });

  it('bounds the download cache at 20 GiB unless told a size or "off"', () => {
    assert.equal(parseSize('512', 'x'), 512);
    assert.equal(parseSize('5G', 'x'), 5 * 2 ** 30);
    assert.throws(() => parseSize('5 GB', 'x'), /not a size/);
    const base = { server: 'http://x', tokenFile };
    assert.equal(resolveWorkerSettings(base, {}).aptCacheMaxBytes, 20 * 2 ** 30);
    assert.equal(resolveWorkerSettings({ ...base, aptCacheMax: 'off' }, {}).aptCacheMaxBytes, null);
    assert.equal(resolveWorkerSettings({ ...base, aptCacheMax: '700M' }, {}).aptCacheMaxBytes, 700 * 2 ** 20);
    const config = write('cache.json', JSON.stringify({ aptCacheMax: '1T' }));
    assert.equal(resolveWorkerSettings({ ...base, config }, {}).aptCacheMaxBytes, 2 ** 40);
    const bad = write('bad-cache.json', JSON.stringify({ aptCacheMax: '1 TB' }));
    assert.throws(() => resolveWorkerSettings({ ...base, config: bad }, {}), /aptCacheMax: a size/);
    assert.throws(
      () => resolveWorkerSettings({ ...base, aptCacheMax: 'big' }, {}),
      /--apt-cache-max: "big" is not a size/,
    );
  });
});

describe('reconnect backoff', () => {
  it('doubles up to the cap, with jitter between half and all of the step', () => {
    const opts = { baseMs: 500, maxMs: 60_000 };
    assert.equal(
      backoffDelayMs(0, opts, () => 0),
      250,
    );
    assert.equal(
      backoffDelayMs(0, opts, () => 1),
      500,
    );
    assert.equal(
      backoffDelayMs(3, opts, () => 1),
      4000,
    );
    assert.equal(
      backoffDelayMs(50, opts, () => 1),
      60_000,
    );
    assert.equal(
      backoffDelayMs(50, opts, () => 0),
      30_000,
    );
  });
});

function job(
  id: number,
  name: string,
  version: string,
  platform: string,
  targetPlatform = platform,
): ClaimedJob {
  return {
    id,
    name,
    version,
    arch: 'amd64',
    platform,
    targetPlatform,
    reason: 'tracked',
    state: 'running',
    attempts: 1,
  };
}

describe('job planning', () => {
  it('never installs two versions of one package in one round', () => {
    const p = 'debian/bookworm/amd64';
    const rounds = roundsOfDistinctNames([job(1, 'a', '1', p), job(2, 'a', '2', p), job(3, 'b', '1', p)]);
    assert.deepEqual(
      rounds.map((r) => r.map((j) => j.id)),
      [[1, 3], [2]],
    );
  });

  it('builds an …/all job on a served platform of the same release', () => {
    const groups = groupByBuildPlatform(
      [
        job(1, 'netbase', '6.4', 'debian/bookworm/arm64', 'debian/bookworm/all'),
        job(2, 'hello', '1', 'debian/bookworm/amd64'),
      ],
      ['debian/bookworm/amd64'],
    );
    assert.deepEqual([...groups.keys()], ['debian/bookworm/amd64']);
    assert.equal(groups.get('debian/bookworm/amd64')?.length, 2);
  });

  it('matches generation failures to jobs by name and version, and decides by their code', () => {
    const p = 'debian/bookworm/amd64';
    const failures: GenerationFailure[] = [
      {
        request: 'jq:amd64=1.6-2.2',
        name: 'jq',
        version: '1.6-2.2',
        code: 'GENERATION_FAILED',
        message: 'apt',
      },
      {
        request: 'jq=1.6-2.1',
        name: 'jq',
        version: '1.6-2.1',
        code: 'UNKNOWN_VERSION',
        message: "jq: version 1.6-2.1 is not offered by the image's repositories",
      },
      // An rpm failure names the package as rpm does; it is matched all the same.
      {
        request: 'sa-tool-2:1.0-1.fc41.x86_64',
        name: 'sa-tool',
        version: '2:1.0-1.fc41',
        code: 'GENERATION_FAILED',
        message: 'x',
      },
    ];
    const jq = failureFor(job(1, 'jq', '1.6-2.1', p), failures);
    assert.deepEqual(jq, { code: 'UNKNOWN_VERSION', error: failures[1]?.message });
    assert.ok(notOffered(jq));
    assert.equal(failureFor(job(2, 'sa-tool', '2:1.0-1.fc41', p), failures).error, 'x');
    const none = failureFor(job(3, 'hello', '2.10-3', p), failures);
    assert.equal(none.code, 'GENERATION_FAILED');
    assert.match(none.error, /no manifest was produced/);
    assert.ok(!notOffered(none));
    // The code decides, not the text: a failed install whose message quotes apt's words is not "not offered".
    assert.ok(!notOffered({ code: 'GENERATION_FAILED', error: 'version 1 is not offered by the image' }));
    assert.ok(notOffered({ code: 'UNKNOWN_PACKAGE', error: 'x' }));
  });
});

describe('sysattest-generator work (command line)', () => {
  const bin = fileURLToPath(new URL('../../bin/sysattest-generator.js', import.meta.url));
  const run = (args: string[], env: Record<string, string> = {}) =>
    spawnSync(process.execPath, [bin, 'work', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });

  it('has --help', () => {
    const r = run(['--help']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /--catalog-interval/);
    assert.match(r.stdout, /--exit-when-idle/);
  });

  it('exits 64 with one line on a configuration error', () => {
    const config = write('cli.json', JSON.stringify({ server: 'http://x', bogus: 1 }));
    const r = run(['--config', config], { SYSATTEST_GENERATOR_TOKEN: 't' });
    assert.equal(r.status, 64, r.stderr);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /unknown key\(s\) bogus/);
  });
});

describe('deploy/generator.example.json', () => {
  it('is a valid worker configuration', () => {
    const example = fileURLToPath(new URL('../../../../deploy/generator.example.json', import.meta.url));
    const s = resolveWorkerSettings({ config: example }, { SYSATTEST_GENERATOR_TOKEN: 't' });
    assert.deepEqual(s.platforms, ['debian/bookworm/amd64', 'debian/bookworm/arm64']);
  });
});
