import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { EXIT } from '@sysattest/core';
import {
  configFileLocation,
  DEFAULT_SETTINGS,
  mergeSettings,
  parseConfig,
  parseDuration,
  parseRateLimit,
  readConfigFile,
  ServerConfigError,
} from './config.js';

function refused(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseConfig(text, 'server.json'),
    (e: unknown) => {
      assert.ok(e instanceof ServerConfigError);
      assert.equal(e.exitCode, EXIT.USAGE);
      assert.match(e.message, /^server\.json: /);
      assert.match(e.message, pattern);
      return true;
    },
  );
}

describe('server configuration file', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('accepts every documented key', () => {
    const config = parseConfig(
      JSON.stringify({
        host: '0.0.0.0',
        port: 9000,
        database: 'postgres://sysattest@db/sysattest',
        databasePoolSize: 20,
        trustKeys: ['/etc/sysattest/generator.asc'],
        readsNeedToken: true,
        trustProxy: ['10.0.0.0/8'],
        rateLimit: { max: 100, windowSeconds: 10 },
        jobs: { maxAttempts: 3, backoffBaseSeconds: 30, backoffMaxSeconds: 3600 },
        track: { 'debian/bookworm/amd64': ['openssl'] },
        sessionSecretFile: '/etc/sysattest/dashboard-session.key',
        queueNeedsToken: true,
        anonymousQueueQuota: { max: 500, windowSeconds: 3600 },
        staleAfter: '2d',
        reports: { keep: 10, maxAgeDays: 30, maxBodyBytes: 1048576 },
      }),
      'server.json',
    );
    assert.equal(config.port, 9000);
    assert.deepEqual(parseConfig('{"anonymousQueueQuota": false}', 'x').anonymousQueueQuota, false);
    assert.deepEqual(parseConfig('{"rateLimit": false}', 'x').rateLimit, false);
    assert.deepEqual(parseConfig('{}', 'x'), {});
  });

  it('refuses unknown keys by name, wrong types, bad JSON', () => {
    refused('{"prot": 8080}', /unknown key "prot"/);
    refused('{"rateLimit": {"max": 5, "windowSeconds": 60, "burst": 2}}', /unknown key "burst" at rateLimit/);
    refused('{"jobs": {"maxAttempt": 5}}', /unknown key "maxAttempt" at jobs/);
    refused('{"port": "8080"}', /port/);
    refused('{"port": 70000}', /port/);
    refused('{"port": 1.5}', /port/);
    refused('{"readsNeedToken": "yes"}', /readsNeedToken/);
    refused('{"rateLimit": true}', /rateLimit/);
    refused('{"trustKeys": "a.asc"}', /trustKeys/);
    refused('{"track": {"debian/bookworm/amd64": "openssl"}}', /track/);
    refused('{"queueNeedsToken": 1}', /queueNeedsToken/);
    refused('{"anonymousQueueQuota": {"max": 10}}', /anonymousQueueQuota/);
    refused('{"anonymousQueueQuota": {"max": 10, "windowSeconds": 60, "per": "ip"}}', /unknown key "per"/);
    refused('{"anonymousQueueQuota": true}', /anonymousQueueQuota/);
    refused('{"sessionSecretFile": ""}', /sessionSecretFile/);
    refused('{"staleAfter": 3600}', /staleAfter/);
    refused('{"staleAfter": "2 days"}', /staleAfter/);
    refused('{"reports": {"keep": 0}}', /reports\.keep/);
    refused('{"reports": {"keepLast": 5}}', /unknown key "keepLast" at reports/);
    refused('{"reports": {"maxBodyBytes": 10}}', /reports\.maxBodyBytes/);
    refused('[]', /expected object/i);
    refused('{"port": 80', /not valid JSON/);
    refused('', /not valid JSON/);
  });

  it('relative paths are relative to the file; the file must exist when named', () => {
    const sub = path.join(dir, 'etc');
    fs.mkdirSync(sub);
    const file = path.join(sub, 'server.json');
    fs.writeFileSync(
      file,
      JSON.stringify({
        database: 'data/s.db',
        trustKeys: ['keys/g.asc', '/abs/k.asc'],
        sessionSecretFile: 'secrets/session.key',
      }),
    );
    const config = readConfigFile(file);
    assert.equal(config.database, path.join(sub, 'data/s.db'));
    assert.equal(config.sessionSecretFile, path.join(sub, 'secrets/session.key'));
    assert.deepEqual(config.trustKeys, [path.join(sub, 'keys/g.asc'), '/abs/k.asc']);
    fs.writeFileSync(file, JSON.stringify({ database: 'postgres://u@h/d' }));
    assert.equal(readConfigFile(file).database, 'postgres://u@h/d');
    assert.throws(() => readConfigFile(path.join(dir, 'missing.json')), /cannot read the configuration file/);
    assert.throws(() => readConfigFile(dir), /not a regular file/);
  });

  it('which file: the flag, else $SYSATTEST_SERVER_CONFIG, else the default when it exists', () => {
    assert.equal(configFileLocation('/a.json', { SYSATTEST_SERVER_CONFIG: '/b.json' }), '/a.json');
    assert.equal(configFileLocation(undefined, { SYSATTEST_SERVER_CONFIG: '/b.json' }), '/b.json');
    const fallback = configFileLocation(undefined, {});
    assert.equal(
      fallback,
      fs.existsSync('/etc/sysattest/server.json') ? '/etc/sysattest/server.json' : undefined,
    );
  });

  it('precedence: flags and environment > file > defaults', () => {
    const file = parseConfig(
      JSON.stringify({
        host: '0.0.0.0',
        port: 9000,
        readsNeedToken: true,
        rateLimit: { max: 5, windowSeconds: 1 },
      }),
      'x',
    );
    const fromFile = mergeSettings({}, file);
    assert.equal(fromFile.host, '0.0.0.0');
    assert.equal(fromFile.port, 9000);
    assert.equal(fromFile.readsNeedToken, true);
    assert.deepEqual(fromFile.rateLimit, { max: 5, windowSeconds: 1 });
    assert.equal(fromFile.database, DEFAULT_SETTINGS.database);
    const overridden = mergeSettings({ port: 0, readsNeedToken: false, rateLimit: false }, file);
    assert.equal(overridden.port, 0);
    assert.equal(overridden.readsNeedToken, false);
    assert.equal(overridden.rateLimit, false);
    assert.equal(overridden.host, '0.0.0.0');
    assert.deepEqual(mergeSettings({}, undefined), { ...DEFAULT_SETTINGS });
    assert.deepEqual(DEFAULT_SETTINGS.anonymousQueueQuota, { max: 5000, windowSeconds: 3600 });
    assert.equal(DEFAULT_SETTINGS.queueNeedsToken, false);
    const queue = parseConfig(
      '{"queueNeedsToken": true, "anonymousQueueQuota": false, "sessionSecretFile": "/f"}',
      'x',
    );
    assert.equal(mergeSettings({}, queue).queueNeedsToken, true);
    assert.equal(mergeSettings({ queueNeedsToken: false }, queue).queueNeedsToken, false);
    assert.equal(mergeSettings({}, queue).anonymousQueueQuota, false);
    assert.equal(mergeSettings({}, queue).sessionSecretFile, '/f');
    assert.equal(mergeSettings({ sessionSecretFile: '/g' }, queue).sessionSecretFile, '/g');
    assert.equal(mergeSettings({}, undefined).sessionSecretFile, undefined);
  });

  it('hosts: staleAfter as a duration, reports retention and cap; flags and environment win', () => {
    assert.equal(DEFAULT_SETTINGS.staleAfterSeconds, 48 * 3600);
    assert.deepEqual(DEFAULT_SETTINGS.reports, { keep: 100, maxAgeDays: 90, maxBodyBytes: 32 * 1024 * 1024 });
    const file = parseConfig('{"staleAfter": "90m", "reports": {"keep": 5}}', 'x');
    const merged = mergeSettings({}, file);
    assert.equal(merged.staleAfterSeconds, 5400);
    assert.deepEqual(merged.reports, { keep: 5, maxAgeDays: 90, maxBodyBytes: 32 * 1024 * 1024 });
    const overridden = mergeSettings(
      { staleAfterSeconds: 60, reportsKeep: 7, reportsMaxBodyBytes: 2048 },
      file,
    );
    assert.equal(overridden.staleAfterSeconds, 60);
    assert.deepEqual(overridden.reports, { keep: 7, maxAgeDays: 90, maxBodyBytes: 2048 });
    assert.equal(parseDuration('2d', 'x'), 172_800);
    assert.equal(parseDuration('30s', 'x'), 30);
    for (const bad of ['0h', '1w', '48', 'h', '400d', ' 1h']) {
      assert.throws(() => parseDuration(bad, 'staleAfter'), ServerConfigError, bad);
    }
    // A file's staleAfter beyond the bound is refused when the settings are made.
    assert.throws(() => mergeSettings({}, parseConfig('{"staleAfter": "9999999d"}', 'x')), /at most 366d/);
  });

  const example = fileURLToPath(new URL('../../../deploy/server.example.json', import.meta.url));
  it('the example configuration in deploy/ is valid', { skip: !fs.existsSync(example) }, () => {
    const config = readConfigFile(example);
    assert.equal(typeof config.port, 'number');
  });

  it('--rate-limit values', () => {
    assert.deepEqual(parseRateLimit('3000/60'), { max: 3000, windowSeconds: 60 });
    assert.equal(parseRateLimit('off'), false);
    for (const bad of ['', '0/60', '10', '10/0', '10/90000', 'ten/60', '-1/60']) {
      assert.throws(() => parseRateLimit(bad), ServerConfigError, bad);
    }
  });
});
