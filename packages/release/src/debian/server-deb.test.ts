/**
 * The service's Debian package, built by `npm run package`'s code and installed with apt into a
 * fresh container of the bookworm minbase image the client package's test uses (no Node, no
 * compiler), where:
 *  - the package makes the `sysattest` system user and installs the units of deploy/;
 *  - the server unit's command line runs as systemd would run it (its User=, Environment=,
 *    WorkingDirectory=, StateDirectory= owned by the user), with the packaged
 *    /etc/sysattest/server.json given a port and the generator key, as an operator would;
 *  - /healthz answers; a signed manifest uploaded with a generator token made by the installed
 *    `sysattest-server token create` comes back byte for byte; /metrics has ours and the runtime's;
 *  - the server's log on stderr is JSON with one access line per request, naming the token by
 *    name and role and never its secret; SIGTERM stops it cleanly;
 *  - the packaged generator runs (`key generate`: OpenPGP in the bundle).
 * Needs root and podman; about a minute once better-sqlite3 is built for the runtime (cached
 * under release/cache, as the runtime is).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSATTEST_VERSION, signManifest } from '@sysattest/core';
import { sharedTestImage } from '@sysattest/generator/dist/testkit/worker-service.js';
import { TestGenerator } from '@sysattest/server/dist/testkit/store.js';
import type { BuiltDeb } from './build-deb.js';
import { buildServerDeb } from './build-server-deb.js';
import { SERVER_CONFIG_FILE, SERVER_LIB_DIR, SERVER_STATE_DIR, SERVER_UNIT_FILES } from './server-package.js';
import { runOnDebHost } from '../testkit/deb-host.js';
import { serviceCommand, shellCommand } from '../testkit/systemd-unit.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const canRun =
  process.getuid?.() === 0 &&
  spawnSync('podman', ['--version']).status === 0 &&
  spawnSync('dpkg-deb', ['--version']).status === 0;

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Run in the container by the packaged runtime: upload, fetch back, scrape. */
const ROUND_TRIP = `
import * as fs from 'node:fs';
const [url, token, bodyFile, digest] = process.argv.slice(2);
const up = await fetch(url + '/v1/manifests', {
  method: 'POST',
  headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
  body: fs.readFileSync(bodyFile, 'utf8'),
});
const upload = { status: up.status, body: await up.json() };
const got = await fetch(url + '/v1/manifests/' + digest);
const fetched = { status: got.status, body: await got.json() };
const metrics = await (await fetch(url + '/metrics')).text();
console.log(JSON.stringify({ upload, fetched, metrics }));
`;

interface RoundTrip {
  upload: { status: number; body: Record<string, unknown> };
  fetched: { status: number; body: { manifest: string; signature: string; digest: string } };
  metrics: string;
}

describe(
  'the service Debian package on a fresh bookworm machine',
  { skip: !canRun && 'needs root, podman and dpkg-deb', timeout: 15 * 60_000 },
  () => {
    let home: string;
    let deb: BuiltDeb;
    let out: Map<string, string>;
    let upload: { manifest: string; signature: string };
    let digest: string;

    before(async () => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-server-deb-e2e-'));
      deb = await buildServerDeb({
        repoRoot,
        outDir: path.join(home, 'deb'),
        cacheDir: path.join(repoRoot, 'release/cache'),
        compressLevel: 0,
      });
      const image = await sharedTestImage();

      const keys = path.join(home, 'keys');
      fs.mkdirSync(keys);
      const generator = await TestGenerator.create('server deb e2e');
      fs.writeFileSync(path.join(keys, 'generator.asc'), generator.armoredPublicKey);
      const signed = await signManifest(
        generator.manifestContent('debian/bookworm/amd64', { name: 'jq', version: '1.6-2.1' }),
        generator.key,
      );
      upload = { manifest: Buffer.from(signed.bytes).toString('base64'), signature: signed.signature };
      digest = createHash('sha256').update(signed.bytes).digest('hex');
      fs.writeFileSync(path.join(keys, 'upload.json'), JSON.stringify(upload));
      fs.writeFileSync(path.join(keys, 'round-trip.mjs'), ROUND_TRIP);
      for (const unit of SERVER_UNIT_FILES) fs.copyFileSync(path.join(repoRoot, 'deploy', unit), path.join(keys, unit));

      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const node = `${SERVER_LIB_DIR}/node`;
      const unitLine = shellCommand(
        serviceCommand(fs.readFileSync(path.join(repoRoot, 'deploy/sysattest-server.service'), 'utf8')),
      );
      const script = [
        'set -u',
        'echo "### tools"; for t in node nodejs cc gcc c++ make; do command -v $t; done; true',
        `echo "### install"; apt-get install -y -q /deb/${path.basename(deb.file)} >/tmp/apt.log 2>&1; echo "exit=$?"; tail -n 3 /tmp/apt.log`,
        'echo "### versions"; sysattest-server --version; sysattest-generator --version',
        'echo "### user"; getent passwd sysattest',
        `echo "### units"; for u in ${SERVER_UNIT_FILES.join(' ')}; do cmp /usr/lib/systemd/system/$u /keys/$u && echo "$u same"; done`,
        // The operator's step: a port, and the generator key trusted at start.
        `echo "### configure"; install -m 0644 /keys/generator.asc /etc/sysattest/generator.asc && ${node} -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1]));c.port=Number(process.argv[2]);c.trustKeys=["/etc/sysattest/generator.asc"];fs.writeFileSync(process.argv[1],JSON.stringify(c))' ${SERVER_CONFIG_FILE} ${port} && cat ${SERVER_CONFIG_FILE} && echo`,
        `( ${unitLine} ) >/tmp/server.out 2>/tmp/server.log & server=$!`,
        `echo "### healthz"; for i in $(seq 1 60); do ${node} -e 'fetch(process.argv[1]).then(async r=>{console.log(r.status, await r.text());process.exit(0)},()=>process.exit(1))' ${url}/healthz && break; sleep 0.5; done`,
        `echo "### token"; token=$(setpriv --reuid=sysattest --regid=sysattest --init-groups env -i SYSATTEST_SERVER_CONFIG=${SERVER_CONFIG_FILE} sysattest-server token create --role generator --name packaged-worker 2>/dev/null); echo "exit=$?"; echo "$token" > /tmp/token`,
        `echo "### roundtrip"; ${node} /keys/round-trip.mjs ${url} "$token" /keys/upload.json ${digest}`,
        `echo "### state"; stat -c '%U %G %a %n' ${SERVER_STATE_DIR} ${SERVER_STATE_DIR}/sysattest.db ${SERVER_STATE_DIR}/dashboard-session.key`,
        'echo "### stop"; kill -TERM $server; wait $server; echo "exit=$?"',
        'echo "### log"; cat /tmp/server.log',
        'echo "### secret"; grep -c -F -f /tmp/token /tmp/server.log; true',
        'echo "### generator"; SYSATTEST_GENERATOR_HOME=/tmp/gen sysattest-generator key generate; echo "exit=$?"',
      ];
      out = runOnDebHost({
        image: image.tag,
        debDir: path.dirname(deb.file),
        keysDir: keys,
        label: `server-deb-${process.pid}`,
        script,
      });
    });

    after(() => {
      if (home !== undefined) fs.rmSync(home, { recursive: true, force: true });
    });

    it('holds the runtime, the bundle with better-sqlite3 built for it, the launchers, the units, the conffile', () => {
      const paths = deb.contents.map((l) => l.split(/\s+/).pop() as string);
      for (const p of [
        './usr/bin/sysattest-server',
        './usr/bin/sysattest-generator',
        `.${SERVER_LIB_DIR}/node`,
        `.${SERVER_LIB_DIR}/app/sysattest-server.js`,
        `.${SERVER_LIB_DIR}/app/sysattest-generator.js`,
        `.${SERVER_LIB_DIR}/app/hash-worker.js`,
        `.${SERVER_LIB_DIR}/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node`,
        `.${SERVER_LIB_DIR}/assets/dashboard.css`,
        './usr/lib/systemd/system/sysattest-server.service',
        './usr/lib/systemd/system/sysattest-generator-worker.service',
        './etc/sysattest/server.json',
        './usr/share/doc/sysattest-server/copyright',
      ])
        assert.ok(paths.includes(p), `${p} is in the package`);
      assert.equal(run('dpkg-deb', ['--info', deb.file, 'conffiles']), `${SERVER_CONFIG_FILE}\n`);
      // Each unit starts a program the package installs.
      for (const unit of SERVER_UNIT_FILES) {
        const argv0 = serviceCommand(fs.readFileSync(path.join(repoRoot, 'deploy', unit), 'utf8')).argv[0];
        assert.ok(paths.includes(`.${argv0}`), `${unit} runs ${argv0}, which the package installs`);
      }
    });

    it('installs with apt where there is no Node and no compiler; makes the system user', () => {
      assert.equal(out.get('tools')?.trim(), '', 'the machine has no node, cc, gcc, c++ or make');
      assert.match(out.get('install') ?? '', /^exit=0$/m, out.get('install'));
      assert.equal(out.get('versions')?.trim(), `${SYSATTEST_VERSION}\n${SYSATTEST_VERSION}`);
      assert.match(out.get('user') ?? '', /^sysattest:x:\d+:\d+:sysattest server:\/var\/lib\/sysattest:\/usr\/sbin\/nologin$/m);
      assert.equal(
        out.get('units')?.trim(),
        SERVER_UNIT_FILES.map((u) => `${u} same`).join('\n'),
        'the installed units are those of deploy/',
      );
    });

    it("the server unit's command line serves as the sysattest user: healthz, a manifest round trip, metrics", () => {
      assert.equal(out.get('healthz')?.trim(), '200 {"status":"ok"}');
      assert.match(out.get('token') ?? '', /^exit=0$/m);
      const trip = JSON.parse(out.get('roundtrip') ?? '') as RoundTrip;
      assert.equal(trip.upload.status, 201, JSON.stringify(trip.upload));
      assert.equal(trip.upload.body.outcome, 'stored');
      assert.equal(trip.fetched.status, 200);
      assert.equal(trip.fetched.body.manifest, upload.manifest, 'the same bytes back');
      assert.equal(trip.fetched.body.signature, upload.signature);
      assert.equal(trip.fetched.body.digest, digest);
      assert.match(trip.metrics, /^sysattest_manifests_total_stored 1$/m);
      assert.match(trip.metrics, /^process_resident_memory_bytes \d+/m);
      assert.match(trip.metrics, /^nodejs_version_info\{version="v24\./m);
      // StateDirectory= owned by User=, the database and the session secret made in it.
      const [dir, db, secret] = (out.get('state') ?? '').trim().split('\n');
      assert.equal(dir, `sysattest sysattest 750 ${SERVER_STATE_DIR}`);
      assert.equal(db, `sysattest sysattest 640 ${SERVER_STATE_DIR}/sysattest.db`, 'UMask=0027');
      assert.equal(secret, `sysattest sysattest 600 ${SERVER_STATE_DIR}/dashboard-session.key`);
    });

    it('logs JSON to stderr: one access line per request, the token by name and role, never its secret', () => {
      const log = out.get('log') ?? '';
      const lines = log
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.ok(lines.every((l) => l.service === 'sysattest-server' && typeof l.time === 'string'));
      const access = lines.filter((l) => l.event === 'request');
      const uploadLine = access.find((l) => l.route === '/v1/manifests' && l.method === 'POST');
      assert.deepEqual(uploadLine?.token, { name: 'packaged-worker', role: 'generator' }, log);
      assert.equal(uploadLine?.status, 201);
      assert.ok(access.some((l) => l.route === '/v1/manifests/:digest' && l.status === 200));
      assert.ok(access.some((l) => l.route === '/healthz' && l.status === 200));
      assert.equal(out.get('secret')?.trim(), '0', 'the token secret is nowhere in the log');
      assert.ok(lines.some((l) => l.event === 'key-trusted'));
      assert.match(out.get('stop') ?? '', /^exit=0$/m);
      assert.ok(lines.some((l) => l.event === 'stopping' && l.signal === 'SIGTERM'));
    });

    it('the packaged generator runs: it makes a signing key', () => {
      assert.match(out.get('generator') ?? '', /^exit=0$/m, out.get('generator'));
      assert.match(out.get('generator') ?? '', /[0-9A-F]{40}/);
    });
  },
);
