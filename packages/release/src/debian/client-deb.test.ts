/**
 * The client's Debian package, built by `npm run package`'s code and installed with apt into a
 * fresh container of the bookworm minbase image (no Node, no compiler), where the installed
 * `sysattest` checks the container's own root against a real server:
 *  - the manifests are made from that same image's files by the generator's manifest builder (a
 *    fresh install of each package, as a generator's container would hash it), signed with a
 *    throwaway key, served with the platform's signed catalog by a real `sysattest-server`
 *    process on this host, which the container reaches on loopback (`--network host`);
 *  - the installed unit's command line runs twice as systemd would run it (its Environment=,
 *    StateDirectory= and CacheDirectory= made first): the first run fetches and verifies every
 *    manifest and makes the cache seal key; the second fetches none and opens every cached one by
 *    its seal, and the seal key is the same file;
 *  - a file of a verified package is then changed and the report says `modified`, exit bit 1;
 *  - the host is enrolled as the README says (a reporter token in /etc/sysattest/reporter-token,
 *    `"report": true`): a token file others may read is refused (exit 64), then the unit's command
 *    line reports to the server through the spool in its StateDirectory=, with the same exit
 *    status, and the server shows the host's verdict.
 * Needs root and podman; about two minutes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSATTEST_VERSION, SigningKey, generateSigningKey } from '@sysattest/core';
import { SERVER_BIN, startE2EServer, type E2EServer } from '@sysattest/client/dist/testkit/e2e.js';
import { signRootReference, type RootReference } from '@sysattest/client/dist/testkit/installed-root.js';
import { sharedTestImage } from '@sysattest/generator/dist/testkit/worker-service.js';
import { buildClientDeb, type BuiltDeb } from './build-deb.js';
import { CONFIG_FILE, REPORTER_TOKEN_FILE, STATE_DIR, UNIT_DIR } from './client-package.js';
import { runOnDebHost } from '../testkit/deb-host.js';
import { serviceCommand, shellCommand } from '../testkit/systemd-unit.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const canRun =
  process.getuid?.() === 0 &&
  spawnSync('podman', ['--version']).status === 0 &&
  spawnSync('dpkg-deb', ['--version']).status === 0 &&
  fs.existsSync(SERVER_BIN);

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** GET a JSON answer over a connection of its own (no keep-alive pool). */
function getJson(url: string, token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** The `### name` sections the container script prints, by name. */
describe(
  'the client Debian package on a fresh bookworm machine',
  { skip: !canRun && 'needs root, podman, dpkg-deb and the server build', timeout: 10 * 60_000 },
  () => {
    let home: string;
    let deb: BuiltDeb;
    let server: E2EServer;
    let out: Map<string, string>;
    let tamperedPath: string;
    let readerToken: string;
    const HOST = 'deb-e2e';

    before(async () => {
      const t0 = Date.now();
      const mark = (what: string): void => {
        if (process.env.SYSATTEST_TEST_TIMING)
          process.stderr.write(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      };
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-deb-e2e-'));
      // xz level 0: the same package, built in seconds rather than a minute.
      deb = await buildClientDeb({
        repoRoot,
        outDir: path.join(home, 'deb'),
        cacheDir: path.join(repoRoot, 'release/cache'),
        compressLevel: 0,
      });
      mark('package built');
      const image = await sharedTestImage();
      mark('image');

      // The reference: the image's own files (a fresh install of each of its packages), hashed
      // from the host through a podman mount, one manifest per package, signed.
      const cid = run('podman', [
        'create',
        '--label',
        `sysattest.test=deb-${process.pid}`,
        image.tag,
        'true',
      ]).trim();
      const k = await generateSigningKey({ name: 'deb e2e test' });
      fs.mkdirSync(path.join(home, 'keys'));
      const keyFile = path.join(home, 'keys/generator.asc');
      fs.writeFileSync(keyFile, k.armoredPublicKey);
      let reference: RootReference;
      try {
        reference = await signRootReference(run('podman', ['mount', cid]).trim(), {
          key: await SigningKey.fromArmored(k.armoredSecretKey),
          generator: { name: 'sysattest deb e2e (the image as installed)', version: SYSATTEST_VERSION },
          imageId: image.imageId,
          installer: 'none (the image as installed)',
        });
      } finally {
        spawnSync('podman', ['rm', '-f', cid]);
      }
      const signed = reference.manifests.map((m) => m.signed);
      mark(`${signed.length} manifests`);
      server = await startE2EServer(home, keyFile);
      await server.uploadCatalog(reference.catalog);
      for (const s of signed) {
        await server.post('/v1/manifests', {
          manifest: Buffer.from(s.bytes).toString('base64'),
          signature: s.signature,
        });
      }
      mark('server ready');
      const token = (...args: string[]): string =>
        run(process.execPath, [SERVER_BIN, 'token', 'create', ...args, '--database', server.dbFile]).trim();
      fs.writeFileSync(path.join(home, 'keys/reporter-token'), `${token('--role', 'reporter', '--host', HOST, '--name', HOST)}\n`);
      readerToken = token('--role', 'reader', '--name', 'deb-e2e-reader');

      // The installed unit's command line, as systemd would run it.
      const unit = fs.readFileSync(path.join(repoRoot, 'deploy/sysattest-verify.service'), 'utf8');
      fs.writeFileSync(path.join(home, 'keys/unit'), unit);
      const unitLine = shellCommand(serviceCommand(unit));
      tamperedPath = '/usr/bin/tail';
      const script = [
        'set -u',
        'echo "### tools"; for t in node nodejs cc gcc c++ make; do command -v $t; done; true',
        `echo "### install"; apt-get install -y -q /deb/${path.basename(deb.file)} >/tmp/apt.log 2>&1; echo "exit=$?"; tail -n 3 /tmp/apt.log`,
        'echo "### version"; sysattest --version',
        `echo "### unit"; cmp ${UNIT_DIR}/sysattest-verify.service /keys/unit && echo same`,
        // The operator's two steps: the server in the conffile, the generator key pinned.
        `echo "### configure"; /usr/lib/sysattest/node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1]));c.server=process.argv[2];fs.writeFileSync(process.argv[1],JSON.stringify(c))' ${CONFIG_FILE} ${server.url} && sysattest trust add /keys/generator.asc`,
        `echo "### run1"; ${unitLine}; echo "exit=$?"`,
        `echo "### seal1"; stat -c '%a %s' ${STATE_DIR}/trusted-keys/cache-seal.key; sha256sum ${STATE_DIR}/trusted-keys/cache-seal.key`,
        `echo "### run2"; ${unitLine}; echo "exit=$?"`,
        `echo "### seal2"; stat -c '%a %s' ${STATE_DIR}/trusted-keys/cache-seal.key; sha256sum ${STATE_DIR}/trusted-keys/cache-seal.key`,
        `echo "### tampered"; echo tampered >> ${tamperedPath}; sysattest verify --format json > /tmp/r.json; echo "exit=$?"; cat /tmp/r.json`,
        // Enrolling the host (README: Enrol a host): the token, then "report": true.
        `echo "### token-loose"; install -m 0644 /keys/reporter-token ${REPORTER_TOKEN_FILE} && sysattest verify --report > /dev/null 2> /tmp/err; echo "exit=$?"; cat /tmp/err`,
        `echo "### report"; chmod 600 ${REPORTER_TOKEN_FILE} && /usr/lib/sysattest/node -e 'const fs=require("fs");const c=JSON.parse(fs.readFileSync(process.argv[1]));c.report=true;fs.writeFileSync(process.argv[1],JSON.stringify(c))' ${CONFIG_FILE} && (${unitLine}) > /dev/null 2> /tmp/err; echo "exit=$?"; grep '^sysattest:' /tmp/err; echo "spool: $(stat -c %a ${STATE_DIR}/report-spool) $(ls -A ${STATE_DIR}/report-spool | tr '\\n' ' ')"`,
      ];
      out = runOnDebHost({
        image: image.tag,
        debDir: path.dirname(deb.file),
        keysDir: path.join(home, 'keys'),
        label: `deb-${process.pid}`,
        script,
      });
      mark('container done');
    });

    after(() => {
      server?.stop();
      if (home !== undefined) fs.rmSync(home, { recursive: true, force: true });
    });

    it('is a small set of files: the runtime, the bundle, the launcher, the units, the conffile', () => {
      const paths = deb.contents.map((l) => l.split(/\s+/).pop() as string);
      for (const p of [
        './usr/bin/sysattest',
        './usr/lib/sysattest/node',
        './usr/lib/sysattest/app/sysattest.js',
        './usr/lib/sysattest/app/hash-worker.js',
        './usr/lib/sysattest/app/node_modules/@napi-rs/xattr-linux-x64-gnu/xattr.linux-x64-gnu.node',
        './usr/lib/systemd/system/sysattest-verify.service',
        './usr/lib/systemd/system/sysattest-verify.timer',
        './etc/sysattest/client.json',
        './usr/share/doc/sysattest/copyright',
      ])
        assert.ok(paths.includes(p), `${p} is in the package`);
      assert.ok(!paths.some((p) => p.includes('better-sqlite3')), 'no better-sqlite3: node:sqlite instead');
      const info = run('dpkg-deb', ['--field', deb.file, 'Package', 'Version', 'Depends']);
      assert.match(info, new RegExp(`Version: ${SYSATTEST_VERSION.replace(/\./g, '\\.')}`));
      assert.equal(run('dpkg-deb', ['--info', deb.file, 'conffiles']), `${CONFIG_FILE}\n`);
    });

    it('installs with apt where there is no Node and no compiler, and runs', () => {
      assert.equal(out.get('tools')?.trim(), '', 'the machine has no node, cc, gcc, c++ or make');
      assert.match(out.get('install') ?? '', /^exit=0$/m, out.get('install'));
      assert.equal(out.get('version')?.trim(), SYSATTEST_VERSION);
      assert.equal(out.get('unit')?.trim(), 'same', 'the installed unit is deploy/sysattest-verify.service');
      assert.match(out.get('configure') ?? '', /^pinned [0-9A-F]{40}$/m);
    });

    /**
     * In a running container (as on any live machine) /proc and /sys are the mount points of the
     * kernel's own file systems, mode 0555, where base-files ships 0755 directories: the client
     * lists both as `metadata` that is not a failure (a mount point granting less than the
     * packaged directory). Asserted exactly, so anything else found fails the test.
     */
    const MOUNT_POINTS =
      /^\s+\/(proc|sys) mode 0755 → 0555: a mount point, whose mounted filesystem grants less than the packaged directory \(not a failure\) {2}\[base-files:amd64\]$/;

    it("the unit's command line verifies every package of the machine; only sysattest itself is unverified", () => {
      const run1 = out.get('run1') ?? '';
      // Exit 2 (coverage: sysattest's own package is in no distribution catalog); the two mount
      // points above are listed, not failures.
      assert.match(run1, /^exit=2$/m, run1);
      const counts = /^packages: (\d+) — (\d+) verified, 1 unverified, 0 bad signature$/m.exec(run1);
      assert.ok(counts, run1);
      assert.equal(Number(counts[2]), Number(counts[1]) - 1, 'every package but sysattest verified');
      assert.match(
        run1,
        /^ {2}sysattest:amd64: sysattest [0-9.]+: no trusted manifest \(not-in-catalog\)$/m,
        run1,
      );
      assert.match(run1, /^findings: metadata 2, unverified 1 \(0 failures\)$/m, run1);
      assert.equal(run1.split('\n').filter((l) => MOUNT_POINTS.test(l)).length, 2, run1);
      const fetched = /manifests: (\d+) fetched and verified, (\d+) from the cache/.exec(run1);
      assert.ok(fetched, run1);
      assert.ok(Number(fetched[1]) >= 80, `minbase has ~90 packages: ${fetched[0]}`);
    });

    it('the seal key is made by the first run and kept; the second run fetches nothing and verifies nothing again', () => {
      assert.match(out.get('seal1') ?? '', /^600 32$/m, 'a 32-byte secret, mode 0600');
      assert.equal(out.get('seal2'), out.get('seal1'), 'the same seal key');
      const run2 = out.get('run2') ?? '';
      assert.match(run2, /^exit=2$/m, run2);
      const m =
        /manifests: (\d+) fetched and verified, (\d+) from the cache \((\d+) opened by their seal, (\d+) verified in full again\)/.exec(
          run2,
        );
      assert.ok(m, run2);
      const [, fetched, cached, sealed, inFull] = m.map(Number);
      assert.equal(fetched, 0, 'nothing fetched');
      assert.ok((cached as number) >= 80);
      assert.equal(sealed, cached, 'every cached manifest opened by its seal');
      assert.equal(inFull, 0, 'none verified in full again');
    });

    it('an enrolled host reports through the unit: a loose token refused, then the verdict on the server, exit status kept', async () => {
      const loose = out.get('token-loose') ?? '';
      assert.match(loose, /^exit=64$/m, loose);
      assert.match(loose, new RegExp(`${REPORTER_TOKEN_FILE} may be read or written by others \\(mode 0644\\)`));
      const report = out.get('report') ?? '';
      const tamperedExit = /^exit=(\d+)$/m.exec(out.get('tampered') ?? '')?.[1];
      assert.match(report, new RegExp(`^exit=${tamperedExit}$`, 'm'), 'the exit status of the same check without --report');
      assert.match(report, new RegExp(`^sysattest: report sent to ${server.url} as host ${HOST} \\(verdict findings\\)$`, 'm'));
      assert.match(report, /^spool: 700 $/m, 'the spool (in the StateDirectory) is 0700 and empty once the server has the report');
      // A connection of its own: the container ran under spawnSync, which blocked this event loop
      // for minutes, so fetch's pool may not have seen the server close its idle keep-alive
      // connection (72 s) and would reuse it ("other side closed", twice in four suite runs).
      const answer = await getJson(`${server.url}/v1/hosts/${HOST}`, readerToken);
      assert.equal(answer.status, 200);
      const detail = answer.body as {
        host: { verdict: string; exitCode: number };
        history: unknown[];
      };
      assert.deepEqual([detail.host.verdict, detail.host.exitCode, detail.history.length], ['findings', Number(tamperedExit), 1]);
    });

    it('a changed file of a verified package is found: modified, exit bit 1', () => {
      const text = out.get('tampered') ?? '';
      const exit = Number(/^exit=(\d+)$/m.exec(text)?.[1]);
      assert.equal(exit & 1, 1, text.slice(0, 2000));
      const report = JSON.parse(text.slice(text.indexOf('{'))) as {
        findings: { class: string; package: string; path?: string; failure: boolean }[];
      };
      const modified = report.findings.filter((f) => f.class === 'modified');
      assert.deepEqual(
        modified.map((f) => [f.package, f.path, f.failure]),
        [['coreutils', tamperedPath, true]],
      );
    });
  },
);
