import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '@sysattest/core';
import { startServer } from './testkit/server-process.js';

const bin = fileURLToPath(new URL('../bin/sysattest-server.js', import.meta.url));

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

it('sysattest-server --help describes the server', () => {
  const r = run(['--help']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /Usage: sysattest-server/);
  assert.match(r.stdout, /manifests/);
});

it('every command has --help', () => {
  for (const cmd of [
    ['serve'],
    ['token'],
    ['token', 'create'],
    ['token', 'list'],
    ['token', 'revoke'],
    ['host'],
    ['host', 'forget'],
    ['key'],
    ['key', 'add'],
    ['key', 'list'],
    ['key', 'remove'],
  ]) {
    const r = run([...cmd, '--help']);
    assert.equal(r.status, 0, `${cmd.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: sysattest-server ${cmd.join(' ')}`));
  }
  const serve = run(['serve', '--help']).stdout;
  for (const option of [
    '--host',
    '--port',
    '--database',
    '--trust-key',
    '--config',
    '--rate-limit',
    '--session-secret-file',
    '--queue-needs-token',
    '--stale-after',
    '--reports-keep',
    '--reports-max-age-days',
    '--reports-max-body-bytes',
  ])
    assert.match(serve, new RegExp(option));
  // Every configuration key is documented in --help.
  for (const key of [
    'host',
    'port',
    'database',
    'databasePoolSize',
    'trustKeys',
    'readsNeedToken',
    'trustProxy',
    'rateLimit',
    'jobs',
    'track',
    'sessionSecretFile',
    'queueNeedsToken',
    'anonymousQueueQuota',
    'staleAfter',
    'reports',
  ]) {
    assert.match(serve, new RegExp(`^  ${key} `, 'm'), key);
  }
});

it('usage errors exit 2', () => {
  assert.equal(run(['--port', '99999']).status, 64);
  assert.equal(run(['token', 'create', '--role', 'overlord', '--name', 'x']).status, 64);
  assert.equal(run(['token', 'revoke', 'abc']).status, 64);
  const noHost = run(['token', 'create', '--role', 'reporter', '--name', 'x']);
  assert.equal(noHost.status, 64);
  assert.match(noHost.stderr, /a reporter token needs --host/);
  const hostOnReader = run(['token', 'create', '--role', 'reader', '--name', 'x', '--host', 'web-01']);
  assert.equal(hostOnReader.status, 64);
  assert.match(hostOnReader.stderr, /--host is for reporter tokens only/);
  assert.equal(run(['token', 'create', '--role', 'reporter', '--name', 'x', '--host', '../x']).status, 64);
  assert.equal(run(['host', 'forget', 'a/b']).status, 64);
  assert.equal(run(['--stale-after', '2 days']).status, 64);
});

describe('sysattest-server configuration file', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-server-config-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('an unknown key or a missing file named by flag or environment: exit 64 saying which', () => {
    const file = path.join(dir, 'typo.json');
    fs.writeFileSync(file, JSON.stringify({ prot: 8080 }));
    const typo = run(['serve', '--config', file]);
    assert.equal(typo.status, 64, typo.stderr);
    assert.match(typo.stderr, /unknown key "prot"/);
    const missing = run(['serve'], { SYSATTEST_SERVER_CONFIG: path.join(dir, 'nope.json') });
    assert.equal(missing.status, 64, missing.stderr);
    assert.match(missing.stderr, /cannot read the configuration file .*nope\.json/);
    assert.equal(run(['serve', '--rate-limit', 'lots']).status, 64);
  });

  it("token and key commands use the file's database (relative to the file)", () => {
    const file = path.join(dir, 'offline.json');
    fs.writeFileSync(file, JSON.stringify({ database: 'state/offline.db' }));
    const created = run(['token', 'create', '--role', 'reader', '--name', 'x', '--config', file]);
    assert.equal(created.status, 0, created.stderr);
    assert.ok(fs.existsSync(path.join(dir, 'state/offline.db')));
    const listed = run(['token', 'list'], { SYSATTEST_SERVER_CONFIG: file });
    assert.match(listed.stdout, /^1\treader\tx\t/);
  });

  it('serve: the file sets reads-need-token; the environment overrides its port', async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as net.AddressInfo).port;
    const file = path.join(dir, 'serve.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ port: busyPort, database: 'serve.db', readsNeedToken: true, rateLimit: false }),
    );
    try {
      const server = await startServer(['--config', file], { SYSATTEST_SERVER_PORT: '0' });
      try {
        assert.notEqual(new URL(server.url).port, String(busyPort));
        const res = await fetch(`${server.url}/v1/keys`);
        assert.equal(res.status, 401);
        assert.match(server.stderr(), /configuration .*serve\.json/);
      } finally {
        assert.equal(await server.stop(), 0);
      }
      // Without the override the file's (busy) port is used: a clear failure.
      const clash = run(['serve', '--config', file]);
      assert.notEqual(clash.status, 0);
      assert.match(clash.stderr, /cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      busy.close();
    }
  });
});

describe('sysattest-server against a database', () => {
  let dir: string;
  let database: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-server-cli-'));
    database = path.join(dir, 'server.db');
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('token create / list / revoke work offline', () => {
    const created = run(['token', 'create', '--role', 'reader', '--name', 'dashboard'], {
      SYSATTEST_DATABASE: database,
    });
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stdout, /^sat_\S+\n$/);
    const listed = run(['token', 'list', '--database', database]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.match(listed.stdout, /^1\treader\tdashboard\t.*active\n$/);
    assert.doesNotMatch(listed.stdout, /sat_/);
    const revoked = run(['token', 'revoke', '1', '--database', database]);
    assert.equal(revoked.status, 0, revoked.stderr);
    assert.match(run(['token', 'list', '--database', database]).stdout, /revoked/);
    const missing = run(['token', 'revoke', '99', '--database', database]);
    assert.equal(missing.status, 65);
    assert.match(missing.stderr, /no token 99/);
  });

  it('a reporter token is made for a host; forgetting the host revokes it', () => {
    const created = run(
      ['token', 'create', '--role', 'reporter', '--name', 'web timer', '--host', 'web-01'],
      {
        SYSATTEST_DATABASE: database,
      },
    );
    assert.equal(created.status, 0, created.stderr);
    assert.match(created.stderr, /reporter for host web-01/);
    const id = /token (\d+) /.exec(created.stderr)?.[1];
    assert.match(
      run(['token', 'list', '--database', database]).stdout,
      new RegExp(`^${id}\treporter:web-01\tweb timer\t.*active$`, 'm'),
    );
    const forgot = run(['host', 'forget', 'web-01', '--database', database]);
    assert.equal(forgot.status, 0, forgot.stderr);
    assert.equal(forgot.stdout, 'forgot host web-01: 0 report(s) deleted, 1 reporter token(s) revoked\n');
    assert.match(
      run(['token', 'list', '--database', database]).stdout,
      new RegExp(`^${id}\treporter:web-01\t.*revoked`, 'm'),
    );
    const unknown = run(['host', 'forget', 'web-01', '--database', database]);
    assert.equal(unknown.status, 65);
    assert.match(unknown.stderr, /no host "web-01"/);
  });

  it('key add / list / remove work offline', async () => {
    const key = await generateSigningKey({ name: 'cli test generator' });
    const file = path.join(dir, 'generator.asc');
    fs.writeFileSync(file, key.armoredPublicKey);
    const added = run(['key', 'add', file, '--database', database]);
    assert.equal(added.status, 0, added.stderr);
    const fpr = added.stdout.trim();
    assert.match(fpr, /^[0-9A-F]{40}$/);
    assert.match(run(['key', 'list', '--database', database]).stdout, new RegExp(`^${fpr}\t.*trusted\n$`));
    assert.equal(run(['key', 'remove', fpr, '--database', database]).status, 0);
    assert.equal(run(['key', 'list', '--database', database]).stdout, '');
    assert.match(run(['key', 'list', '--all', '--database', database]).stdout, /removed/);
    const bad = run(['key', 'add', path.join(dir, 'nope.asc'), '--database', database]);
    assert.equal(bad.status, 65);
    assert.match(bad.stderr, /cannot read the key file/);
    fs.writeFileSync(path.join(dir, 'garbage.asc'), 'not a key');
    assert.equal(run(['key', 'add', path.join(dir, 'garbage.asc'), '--database', database]).status, 65);
  });

  it('serves on a free port: a token made offline works over real HTTP; SIGTERM stops it cleanly', async () => {
    const created = run(['token', 'create', '--role', 'admin', '--name', 'operator', '--database', database]);
    assert.equal(created.status, 0, created.stderr);
    const secret = created.stdout.trim();
    const key = await generateSigningKey({ name: 'served generator' });
    const keyFile = path.join(dir, 'served.asc');
    fs.writeFileSync(keyFile, key.armoredPublicKey);

    const child = spawn(
      process.execPath,
      [bin, '--port', '0', '--database', database, '--trust-key', keyFile],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed; stderr: ${stderr}`)), 15_000);
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
          const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
          if (m?.[1]) {
            clearTimeout(timer);
            resolve(m[1]);
          }
        });
        child.on('close', () => reject(new Error(`exited early; stderr: ${stderr}`)));
      });
      assert.equal(stdout.trim().split('\n').length, 1);
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200);
      const jobs = await fetch(`${url}/v1/jobs`, { headers: { authorization: `Bearer ${secret}` } });
      assert.equal(jobs.status, 200, await jobs.clone().text());
      assert.deepEqual(await jobs.json(), { jobs: [] });
      const anonymous = await fetch(`${url}/v1/jobs`);
      assert.equal(anonymous.status, 401);
      assert.equal(((await anonymous.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      // --trust-key added the key to the database.
      const keys = run(['key', 'list', '--database', database]);
      assert.match(keys.stdout, /trusted/);
      assert.match(stderr, /trusting generator key/);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: shutting down/);
  });
});

describe('sysattest-server dashboard session secret', () => {
  let dir: string;
  let database: string;
  let admin: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-server-secret-'));
    database = path.join(dir, 'state', 'server.db');
    fs.mkdirSync(path.dirname(database));
    const created = run(['token', 'create', '--role', 'admin', '--name', 'operator', '--database', database]);
    assert.equal(created.status, 0, created.stderr);
    admin = created.stdout.trim();
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** Logs in through the dashboard's form over real HTTP; returns the session cookie. */
  async function login(url: string): Promise<string> {
    const form = await fetch(`${url}/dashboard/login`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(await form.text())?.[1] as string;
    const cookie = (form.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
    const res = await fetch(`${url}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf, token: admin, next: '/dashboard/admin' }).toString(),
    });
    assert.equal(res.status, 303);
    const session = res.headers.getSetCookie().find((c) => c.startsWith('sysattest_session='));
    return String(session).split(';')[0] as string;
  }

  const adminPage = async (url: string, cookie: string): Promise<number> =>
    (await fetch(`${url}/dashboard/admin`, { redirect: 'manual', headers: { cookie } })).status;

  it('is made next to the database on first start; sessions outlive a restart, not a new secret', async () => {
    const args = ['--port', '0', '--database', database, '--rate-limit', 'off'];
    const file = path.join(path.dirname(database), 'dashboard-session.key');
    let server = await startServer(args);
    let session: string;
    try {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      assert.equal(fs.statSync(file).size, 32);
      assert.match(
        server.stderr(),
        /made the dashboard session secret .*dashboard-session\.key \(mode 0600\)/,
      );
      session = await login(server.url);
      assert.equal(await adminPage(server.url, session), 200);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    server = await startServer(args);
    try {
      assert.equal(await adminPage(server.url, session), 200, 'the same secret after a restart');
      assert.doesNotMatch(server.stderr(), /made the dashboard session secret/);
    } finally {
      await server.stop();
    }
    const other = path.join(dir, 'other.key');
    fs.writeFileSync(other, Buffer.alloc(32, 5), { mode: 0o600 });
    server = await startServer(args, { SYSATTEST_SESSION_SECRET_FILE: other });
    try {
      assert.equal(await adminPage(server.url, session), 303, 'another secret: back to the login form');
    } finally {
      await server.stop();
    }
  });

  it('a secret file others may read, or of another user, stops serve with one clear line (exit 64)', () => {
    const loose = path.join(dir, 'loose.key');
    fs.writeFileSync(loose, Buffer.alloc(32, 6));
    fs.chmodSync(loose, 0o644);
    const cases: [string[], RegExp][] = [
      [
        ['--session-secret-file', loose],
        /loose\.key may be read or written by group or others \(mode 0644\): chmod 600 /,
      ],
      [['--session-secret-file', path.join(dir, 'nope.key')], /nope\.key does not exist: make it with/],
    ];
    if (process.getuid?.() === 0) {
      const foreign = path.join(dir, 'foreign.key');
      fs.writeFileSync(foreign, Buffer.alloc(32, 6), { mode: 0o600 });
      fs.chownSync(foreign, 65534, 65534);
      cases.push([['--session-secret-file', foreign], /foreign\.key belongs to uid 65534/]);
    }
    for (const [flags, message] of cases) {
      const r = run(['serve', '--port', '0', '--database', database, ...flags]);
      assert.equal(r.status, 64, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack trace: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });
});
