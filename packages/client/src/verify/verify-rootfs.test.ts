import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  generateSigningKey,
  parsePlatform,
  readDpkgDatabase,
  type Manifest,
} from '@sysattest/core';
import { catalogDebian, generateDebian } from '@sysattest/generator/dist/generation/debian-generator.js';
import { ImageFleet } from '@sysattest/generator/dist/image/fleet.js';
import type { PlatformImage } from '@sysattest/generator/dist/image/state.js';
import { Podman } from '@sysattest/generator/dist/podman/podman.js';
import type { VerifyReport } from './report.js';
import {
  SERVER_BIN,
  startE2EServer,
  sysattestCli,
  tampered as tamperedRoot,
  type CliRun,
  type E2EServer,
} from '../testkit/e2e.js';

/**
 * `sysattest verify` end to end, as a user runs it, on a real Debian rootfs:
 *  - a bookworm minbase image built by mmdebstrap (the generator's image fleet), exported to a
 *    directory: the machine under test (`--root`);
 *  - manifests for every package of it made by the generator library in fresh containers of the
 *    same image, and the signed catalog of its repositories, uploaded to a real server process
 *    (SQLite file);
 *  - then each kind of tampering, one at a time, undone after its check, with the class and the
 *    exit code a script would see.
 * Needs root and podman (like the generator's tests); about two minutes.
 */

const PLATFORM = 'debian/bookworm/amd64';

const canRun =
  process.getuid?.() === 0 && spawnSync('podman', ['--version']).status === 0 && fs.existsSync(SERVER_BIN);

type Run = CliRun;
/** A report finding; `accepted`: a local claim the operator's configuration accepts. */
type Finding = VerifyReport['findings'][number] & { accepted?: boolean };
const DIVERSIONS = '/var/lib/dpkg/diversions';
const STATOVERRIDE = '/var/lib/dpkg/statoverride';

describe(
  'sysattest verify on a real Debian rootfs',
  { skip: !canRun && 'needs root, podman and the server build', timeout: 20 * 60_000 },
  () => {
    let home: string;
    let rootfs: string;
    let image: PlatformImage;
    let key: SigningKey;
    let keyFile: string;
    let dbFile: string;
    let server: E2EServer;
    let serverUrl: string;
    let clientHome: string;
    const manifests = new Map<string, Manifest>();
    let stock: readonly string[] = [];

    function sysattest(args: string[], env: Record<string, string> = {}): Run {
      return sysattestCli(args, { SYSATTEST_CLIENT_HOME: clientHome, SYSATTEST_CONFIG: '', ...env });
    }

    /** `verify --root <rootfs> --format json` against the server, with the generator key. */
    function verify(extra: string[] = [], env: Record<string, string> = {}): Run {
      return sysattest(
        [
          'verify',
          '--root',
          rootfs,
          '--server',
          serverUrl,
          '--keyring',
          keyFile,
          '--format',
          'json',
          ...extra,
        ],
        env,
      );
    }

    /** Runs `change` on the rootfs, then `check`, then puts the paths back exactly as they were. */
    const tampered = (paths: string[], change: () => void, check: () => void | Promise<void>) =>
      tamperedRoot(rootfs, paths, change, check, home);

    /** A manifest entry of the rootfs: the first that `pick` accepts, in a stable order. */
    function entryWhere(pick: (e: Manifest['entries'][number], m: Manifest) => boolean): {
      entry: Manifest['entries'][number];
      manifest: Manifest;
    } {
      for (const name of [...manifests.keys()].sort()) {
        const m = manifests.get(name) as Manifest;
        for (const e of m.entries) if (pick(e, m)) return { entry: e, manifest: m };
      }
      throw new Error('no such entry in the manifests');
    }

    const regularFile = (e: Manifest['entries'][number]): boolean =>
      e.type === 'file' &&
      e.conffile !== true &&
      e.divertedTo === undefined &&
      e.path.startsWith('/usr/bin/') &&
      (parseInt(e.mode, 8) & 0o6000) === 0 &&
      e.size > 0;

    function findingsOf(r: Run, cls: string): Finding[] {
      assert.ok(r.report, `no JSON report: exit ${r.status}, stderr ${r.stderr}`);
      return r.report.findings.filter((f) => (f.class as string) === cls);
    }

    /** The findings of a run, one line each, for assertion messages. */
    const listed = (r: Run): string =>
      JSON.stringify(r.report?.findings.map((f) => [f.class, f.package, f.path, f.failure]) ?? r.stderr);

    /** Appends `text` to a file of the rootfs (made when missing). */
    const appendTo = (file: string, text: string): void => fs.appendFileSync(path.join(rootfs, file), text);

    before(async () => {
      const t0 = Date.now();
      const mark = (what: string): void => {
        if (process.env.SYSATTEST_TEST_TIMING)
          process.stderr.write(`# ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      };
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-client-e2e-'));
      clientHome = path.join(home, 'client');
      const podman = new Podman({ labels: { 'sysattest.test': `client-${process.pid}` } });
      image = await sharedTestImage(podman);
      mark('image built');

      // The machine under test: the image's filesystem, as a directory.
      rootfs = path.join(home, 'rootfs');
      fs.mkdirSync(rootfs);
      const cid = run('podman', [
        'create',
        '--label',
        `sysattest.test=client-${process.pid}`,
        image.tag,
        'true',
      ]).trim();
      try {
        const tar = path.join(home, 'rootfs.tar');
        run('podman', ['export', '-o', tar, cid]);
        run('tar', [
          '-xpf',
          tar,
          '-C',
          rootfs,
          '--numeric-owner',
          '--xattrs',
          '--xattrs-include=security.capability',
        ]);
        fs.rmSync(tar);
      } finally {
        spawnSync('podman', ['rm', '-f', cid]);
      }

      mark('rootfs exported');
      const k = await generateSigningKey({ name: 'client e2e test' });
      key = await SigningKey.fromArmored(k.armoredSecretKey);
      keyFile = path.join(home, 'generator.asc');
      fs.writeFileSync(keyFile, k.armoredPublicKey);

      // Manifests for every installed package at its installed version, made in fresh containers.
      const db = await readDpkgDatabase(rootfs);
      const outDir = path.join(home, 'manifests');
      const result = await generateDebian({
        platform: parsePlatform(PLATFORM),
        image,
        podman,
        key,
        outDir,
        requests: db.packages.map((p) => ({ name: p.name, version: p.version })),
        batchSize: 200,
      });
      assert.deepEqual(result.failures, [], 'every installed package gets a manifest');
      mark(`${result.manifests.length} manifests generated`);
      const catalog = await catalogDebian({ platform: parsePlatform(PLATFORM), image, podman, key });
      mark('catalog signed');

      // A real server on a SQLite file, trusting the generator key; uploads with a generator token.
      server = await startE2EServer(home, keyFile);
      serverUrl = server.url;
      dbFile = server.dbFile;
      const post = server.post;
      await post('/v1/catalogs', {
        catalog: Buffer.from(catalog.signed.bytes).toString('base64'),
        signature: catalog.signed.signature,
      });
      for (const m of result.manifests) {
        const bytes = fs.readFileSync(m.file);
        manifests.set(`${m.name}:${m.architecture}`, JSON.parse(bytes.toString('utf8')) as Manifest);
        await post('/v1/manifests', {
          manifest: bytes.toString('base64'),
          signature: fs.readFileSync(`${m.file}.asc`, 'utf8'),
        });
      }
      mark('uploaded');
      // What a scan of the untouched rootfs already finds unowned (compared in the scan test).
      const scan = verify(['--scan-unowned']);
      stock = findingsOf(scan, 'unowned').map((f) => f.path as string);
      mark('first scan');
    });

    after(() => {
      server?.stop();
      if (home !== undefined) fs.rmSync(home, { recursive: true, force: true });
    });

    it('an untouched rootfs: every package verified, zero findings, exit 0', () => {
      const r = verify();
      assert.equal(r.status, 0, r.stderr);
      const report = r.report as VerifyReport;
      assert.equal(report.findings.length, 0, JSON.stringify(report.findings.slice(0, 5)));
      assert.equal(report.summary.verified, report.summary.packages);
      assert.ok(report.summary.packages >= 80, `minbase has ~90 packages, got ${report.summary.packages}`);
      assert.ok(report.summary.filesChecked > 5000);
      // dash diverts /bin/sh (and its manual page) in its own maintainer script: the generator saw
      // that in its container and signed it, so these diversions are honoured and raise nothing.
      const diversions = fs.readFileSync(path.join(rootfs, DIVERSIONS), 'utf8');
      assert.match(diversions, /^\/bin\/sh\n\/bin\/sh\.distrib\ndash$/m);
      const dash = manifests.get('dash:amd64') as Manifest & { diversions?: { from: string; to: string }[] };
      assert.deepEqual(
        dash.diversions?.find((d) => d.from === '/bin/sh'),
        { from: '/bin/sh', to: '/bin/sh.distrib' },
        'the dash manifest declares its diversion of /bin/sh',
      );
      // The text rendering says so first.
      const text = sysattest(['verify', '--root', rootfs, '--server', serverUrl, '--keyring', keyFile]);
      assert.equal(text.status, 0);
      assert.match(text.stdout.split('\n').slice(0, 4).join('\n'), /no findings/);
    });

    it('a second run needs no network: --offline from the cache gives the same clean result', () => {
      const r = sysattest([
        'verify',
        '--root',
        rootfs,
        '--offline',
        '--keyring',
        keyFile,
        '--format',
        'json',
      ]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.report?.summary.verified, r.report?.summary.packages);
      // And with the server gone (a port nothing listens on), the cache still answers.
      const gone = sysattest([
        'verify',
        '--root',
        rootfs,
        '--server',
        'http://127.0.0.1:9',
        '--keyring',
        keyFile,
        '--format',
        'json',
      ]);
      assert.equal(gone.status, 0, gone.stderr);
    });

    it('the server unreachable and nothing cached: exit 69 with one line saying so', () => {
      const r = sysattest(
        ['verify', '--root', rootfs, '--server', 'http://127.0.0.1:9', '--keyring', keyFile],
        {
          SYSATTEST_CLIENT_HOME: path.join(home, 'empty-client'),
        },
      );
      assert.equal(r.status, 69);
      assert.match(r.stderr, /cannot reach the server http:\/\/127\.0\.0\.1:9/);
      assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
    });

    it('no pinned key: refuses to run (64) and says how to pin one', () => {
      const r = sysattest(['verify', '--root', rootfs, '--server', serverUrl], {
        SYSATTEST_CLIENT_HOME: path.join(home, 'no-keys'),
      });
      assert.equal(r.status, 64);
      assert.match(r.stderr, /sysattest trust add/);
    });

    it('content changed: modified, exit 1', async () => {
      const { entry, manifest } = entryWhere(regularFile);
      await tampered(
        [entry.path],
        () => fs.appendFileSync(path.join(rootfs, entry.path), 'x'),
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          const f = findingsOf(r, 'modified');
          assert.deepEqual(
            f.map((x) => [x.path, x.package]),
            [[entry.path, manifest.package.name]],
          );
          assert.equal(r.report?.summary.failures, 1);
        },
      );
    });

    it('setuid bit added: metadata (mode), exit 1', async () => {
      const { entry } = entryWhere(regularFile);
      await tampered(
        [entry.path],
        () =>
          fs.chmodSync(path.join(rootfs, entry.path), parseInt((entry as { mode: string }).mode, 8) | 0o4000),
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          const f = findingsOf(r, 'metadata');
          assert.equal(f.length, 1);
          assert.equal(f[0]?.attribute, 'mode');
          assert.equal(f[0]?.path, entry.path);
          assert.match(f[0]?.actual ?? '', /^4/);
          assert.match(f[0]?.detail ?? '', /setuid/);
        },
      );
    });

    it('owner changed: metadata (uid), exit 1', async () => {
      const { entry } = entryWhere(regularFile);
      await tampered(
        [entry.path],
        () => fs.lchownSync(path.join(rootfs, entry.path), 4242, 0),
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          const f = findingsOf(r, 'metadata');
          assert.deepEqual(
            f.map((x) => [x.path, x.attribute]),
            [[entry.path, 'uid']],
          );
        },
      );
    });

    it('a dpkg-statoverride that makes a packaged binary setuid root: statoverride failure, exit 1 (unless the config allows that path)', async () => {
      const { entry } = entryWhere(regularFile);
      await tampered(
        [entry.path, STATOVERRIDE],
        () => {
          fs.chmodSync(path.join(rootfs, entry.path), 0o4755);
          appendTo(STATOVERRIDE, `root root 4755 ${entry.path}\n`);
        },
        () => {
          const r = verify();
          assert.equal(r.status, 1, listed(r));
          const f = findingsOf(r, 'statoverride');
          assert.deepEqual(
            f.map((x) => [x.path, x.failure]),
            [[entry.path, true]],
            listed(r),
          );
          // The operator's explicit choice: listed, accepted, no failure.
          const config = path.join(home, 'allow-statoverride.json');
          fs.writeFileSync(config, JSON.stringify({ allowStatOverrides: [entry.path] }));
          const allowed = verify(['--config', config]);
          assert.equal(allowed.status, 0, listed(allowed));
          const a = findingsOf(allowed, 'statoverride');
          assert.deepEqual(
            a.map((x) => [x.path, x.failure, x.accepted]),
            [[entry.path, false, true]],
            listed(allowed),
          );
        },
      );
    });

    it('a dpkg-statoverride that only lowers privilege (0755 -> 0750): listed, not a failure, exit 0', async () => {
      const { entry } = entryWhere((e) => regularFile(e) && (e as { mode: string }).mode === '0755');
      await tampered(
        [entry.path, STATOVERRIDE],
        () => {
          fs.chmodSync(path.join(rootfs, entry.path), 0o750);
          appendTo(STATOVERRIDE, `root root 0750 ${entry.path}\n`);
        },
        () => {
          const r = verify();
          assert.equal(r.status, 0, listed(r));
          assert.deepEqual(
            findingsOf(r, 'statoverride').map((x) => [x.path, x.failure]),
            [[entry.path, false]],
            listed(r),
          );
          assert.deepEqual(findingsOf(r, 'metadata'), [], 'its mode is the override’s, not reported');
        },
      );
    });

    it('a local diversion hiding a trojan (the real binary moved to X.real): diversion failure and modified X, exit 1; accepted with --accept-local-diversions', async () => {
      const { entry, manifest } = entryWhere(regularFile);
      const real = `${entry.path}.real`;
      await tampered(
        [entry.path, real, DIVERSIONS],
        () => {
          const file = path.join(rootfs, entry.path);
          fs.renameSync(file, path.join(rootfs, real));
          fs.writeFileSync(
            file,
            Buffer.concat([fs.readFileSync(path.join(rootfs, real)), Buffer.from('trojan')]),
          );
          fs.chmodSync(file, 0o755);
          appendTo(DIVERSIONS, `${entry.path}\n${real}\n:\n`);
        },
        () => {
          const r = verify();
          assert.equal(r.status & 1, 1, listed(r));
          assert.deepEqual(
            findingsOf(r, 'diversion').map((f) => [f.path, f.failure]),
            [[entry.path, true]],
            listed(r),
          );
          // Not honoured: the packaged file is checked at its own path, where the trojan is.
          assert.deepEqual(
            findingsOf(r, 'modified').map((f) => [f.package, f.path]),
            [[manifest.package.name, entry.path]],
            listed(r),
          );
          // The operator accepts local diversions: still listed; the package's file is checked
          // where the diversion puts it (clean), and the wrapper at X belongs to no package.
          const accepting = verify(['--accept-local-diversions']);
          assert.equal(accepting.status, 0, listed(accepting));
          assert.deepEqual(
            findingsOf(accepting, 'diversion').map((f) => [f.path, f.failure, f.accepted]),
            [[entry.path, false, true]],
            listed(accepting),
          );
        },
      );
    });

    it('a diversion credited to a package (dash) whose signed manifest does not declare it: diversion failure, the file checked where it is', async () => {
      const { entry, manifest } = entryWhere((e, m) => regularFile(e) && m.package.name !== 'dash');
      const aside = `${entry.path}.distrib`;
      await tampered(
        [entry.path, aside, DIVERSIONS],
        () => {
          const file = path.join(rootfs, entry.path);
          fs.renameSync(file, path.join(rootfs, aside));
          fs.copyFileSync(path.join(rootfs, '/usr/bin/dash'), file);
          appendTo(DIVERSIONS, `${entry.path}\n${aside}\ndash\n`);
        },
        () => {
          const r = verify();
          assert.equal(r.status & 1, 1, listed(r));
          assert.deepEqual(
            findingsOf(r, 'diversion').map((f) => [f.package, f.path, f.failure]),
            [['dash', entry.path, true]],
            listed(r),
          );
          assert.deepEqual(
            findingsOf(r, 'modified').map((f) => [f.package, f.path]),
            [[manifest.package.name, entry.path]],
            listed(r),
          );
        },
      );
    });

    it('file deleted: missing, exit 1', async () => {
      const { entry } = entryWhere(regularFile);
      await tampered(
        [entry.path],
        () => fs.rmSync(path.join(rootfs, entry.path)),
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          assert.deepEqual(
            findingsOf(r, 'missing').map((f) => f.path),
            [entry.path],
          );
        },
      );
    });

    it('symlink retargeted: metadata (target), exit 1', async () => {
      const { entry } = entryWhere(
        (e) => e.type === 'symlink' && e.conffile !== true && e.path.startsWith('/usr/'),
      );
      await tampered(
        [entry.path],
        () => {
          fs.rmSync(path.join(rootfs, entry.path));
          fs.symlinkSync('/tmp/elsewhere', path.join(rootfs, entry.path));
        },
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          const f = findingsOf(r, 'metadata');
          assert.deepEqual(
            f.map((x) => [x.path, x.attribute, x.actual]),
            [[entry.path, 'target', '/tmp/elsewhere']],
          );
        },
      );
    });

    it('file replaced by a symlink: replaced, exit 1', async () => {
      const { entry } = entryWhere(regularFile);
      await tampered(
        [entry.path],
        () => {
          fs.rmSync(path.join(rootfs, entry.path));
          fs.symlinkSync('/bin/sh', path.join(rootfs, entry.path));
        },
        () => {
          const r = verify();
          assert.equal(r.status, 1);
          const f = findingsOf(r, 'replaced');
          assert.deepEqual(
            f.map((x) => [x.path, x.expected, x.actual]),
            [[entry.path, 'file', 'symlink']],
          );
        },
      );
    });

    it('conffile edited: config-modified, listed but exit 0; a failure (1) with --include-config', async () => {
      const { entry } = entryWhere((e) => e.type === 'file' && e.conffile === true);
      await tampered(
        [entry.path],
        () => fs.appendFileSync(path.join(rootfs, entry.path), '# local change\n'),
        () => {
          const r = verify();
          assert.equal(r.status, 0);
          const f = findingsOf(r, 'config-modified');
          assert.deepEqual(
            f.map((x) => [x.path, x.failure]),
            [[entry.path, false]],
          );
          const strict = verify(['--include-config']);
          assert.equal(strict.status, 1);
          assert.equal(findingsOf(strict, 'config-modified')[0]?.failure, true);
        },
      );
    });

    it('--scan-unowned: an unknown ELF dropped into usr/bin is unowned and unknown (exit 1); a copy of a known file is told apart', async () => {
      const { entry } = entryWhere(regularFile);
      const unknown = '/usr/bin/.sysattest-dropped';
      const copy = '/usr/bin/sysattest-copy';
      await tampered(
        [unknown, copy],
        () => {
          const elf = Buffer.concat([fs.readFileSync(path.join(rootfs, entry.path)), Buffer.from('rootkit')]);
          assert.equal(elf.subarray(1, 4).toString(), 'ELF');
          fs.writeFileSync(path.join(rootfs, unknown), elf, { mode: 0o755 });
          fs.copyFileSync(path.join(rootfs, entry.path), path.join(rootfs, copy));
        },
        () => {
          const r = verify(['--scan-unowned']);
          assert.equal(r.status, 1, r.stderr);
          const found = findingsOf(r, 'unowned').filter((f) => !stock.includes(f.path as string));
          const byPath = new Map(found.map((f) => [f.path, f]));
          assert.deepEqual([...byPath.keys()].sort(), [unknown, copy].sort());
          assert.equal(byPath.get(unknown)?.known, false);
          assert.equal(byPath.get(unknown)?.failure, true);
          // A plain copy (not setuid, no capabilities) of a packaged file: known from a signed
          // manifest the client verified, listed but not a failure.
          assert.equal(byPath.get(copy)?.known, true);
          assert.equal(byPath.get(copy)?.failure, false);
          assert.match(byPath.get(copy)?.detail ?? '', new RegExp(`same content is ${entry.path}`));
          // Without the scan, nothing is reported: the files belong to no package.
          assert.equal(verify().status, 0);
        },
      );
    });

    it('--scan-unowned: a setuid-root copy of a packaged shell is an unowned failure even though its content is known, exit 1', async () => {
      const copy = '/usr/bin/.x';
      await tampered(
        [copy],
        () => {
          fs.copyFileSync(path.join(rootfs, '/usr/bin/dash'), path.join(rootfs, copy));
          fs.lchownSync(path.join(rootfs, copy), 0, 0);
          fs.chmodSync(path.join(rootfs, copy), 0o4755);
        },
        () => {
          const r = verify(['--scan-unowned']);
          assert.equal(r.status & 1, 1, listed(r));
          const found = findingsOf(r, 'unowned').filter((f) => f.path === copy);
          assert.equal(found.length, 1, listed(r));
          assert.equal(found[0]?.failure, true, 'setuid: a failure whatever the reverse lookup says');
          assert.match(found[0]?.detail ?? '', /4755/);
        },
      );
    });

    it('--scan-unowned: a file capability added to an unowned copy of a packaged binary is a failure, exit 1', async () => {
      const { entry } = entryWhere(regularFile);
      const copy = '/usr/bin/sysattest-cap';
      await tampered(
        [copy],
        () => {
          fs.copyFileSync(path.join(rootfs, entry.path), path.join(rootfs, copy));
          run('setcap', ['cap_net_raw+ep', path.join(rootfs, copy)]);
        },
        () => {
          const r = verify(['--scan-unowned']);
          assert.equal(r.status & 1, 1, listed(r));
          const found = findingsOf(r, 'unowned').filter((f) => f.path === copy);
          assert.equal(found.length, 1, listed(r));
          assert.equal(found[0]?.failure, true, 'capabilities: a failure whatever the reverse lookup says');
        },
      );
    });

    it('a modified binary with the rootfs own dpkg md5sums edited to match: dpkg --verify is fooled, sysattest is not', async () => {
      const { entry, manifest } = entryWhere(regularFile);
      const pkg = manifest.package.name;
      const md5sums = ['/var/lib/dpkg/info', `${pkg}.md5sums`].join('/');
      const md5sumsAlt = ['/var/lib/dpkg/info', `${pkg}:${manifest.package.architecture}.md5sums`].join('/');
      const sums = fs.existsSync(path.join(rootfs, md5sums)) ? md5sums : md5sumsAlt;
      await tampered(
        [entry.path, sums],
        () => {
          const file = path.join(rootfs, entry.path);
          fs.appendFileSync(file, 'trojan');
          const md5 = createHash('md5').update(fs.readFileSync(file)).digest('hex');
          const rel = entry.path.slice(1);
          const text = fs.readFileSync(path.join(rootfs, sums), 'utf8');
          const edited = text.replace(
            new RegExp(`^[0-9a-f]{32}  ${rel.replace(/[.+]/g, '\\$&')}$`, 'm'),
            `${md5}  ${rel}`,
          );
          assert.notEqual(edited, text, 'the md5sums line was edited');
          fs.writeFileSync(path.join(rootfs, sums), edited);
        },
        () => {
          const dpkg = spawnSync('dpkg', [`--root=${rootfs}`, '--verify', pkg], { encoding: 'utf8' });
          assert.equal(dpkg.stdout, '', 'dpkg --verify trusts the edited md5sums');
          const r = verify();
          assert.equal(r.status, 1);
          assert.deepEqual(
            findingsOf(r, 'modified').map((f) => f.path),
            [entry.path],
          );
        },
      );
    });

    it('a manifest tampered with on the server: bad-signature, exit 4, the tampered file not reported clean', async () => {
      const { entry, manifest } = entryWhere(regularFile);
      const pkg = manifest.package.name;
      const file = path.join(rootfs, entry.path);
      const original = fs.readFileSync(file);
      const changed = Buffer.concat([original, Buffer.from('evil')]);
      const newHash = createHash('sha256').update(changed).digest('hex');
      const sha = (entry as { sha256: string }).sha256;
      const size = (entry as { size: number }).size;
      // The attacker edits the stored manifest so the hash and size match the changed file.
      // Canonical JSON (sorted keys): `"sha256":"…","size":N` appear together in the entry.
      const from = `"sha256":"${sha}","size":${size}`;
      const to = `"sha256":"${newHash}","size":${changed.length}`;
      const sql = `UPDATE manifests SET bytes = CAST(replace(CAST(bytes AS TEXT), '${from}', '${to}') AS BLOB) WHERE name = '${pkg}';`;
      run('sqlite3', [dbFile, sql]);
      assert.equal(
        run('sqlite3', [
          dbFile,
          `SELECT instr(CAST(bytes AS TEXT), '${to}') > 0 FROM manifests WHERE name = '${pkg}';`,
        ]).trim(),
        '1',
      );
      try {
        await tampered(
          [entry.path],
          () => fs.writeFileSync(file, changed),
          () => {
            // A client without the good manifest cached: it must fetch the tampered one.
            const r = verify([], { SYSATTEST_CLIENT_HOME: path.join(home, 'fresh-client') });
            assert.equal(r.status & 4, 4, `exit ${r.status}`);
            const bad = findingsOf(r, 'bad-signature');
            assert.deepEqual(
              bad.map((f) => f.package),
              [pkg],
            );
            const status = r.report?.packages.find((p) => p.name === pkg);
            assert.equal(status?.status, 'bad-signature');
            assert.match(status?.reason ?? '', /BAD_SIGNATURE/);
            // Nothing of that package is called clean: none of its files was counted as checked.
            assert.equal(r.report?.summary.verified, (r.report?.summary.packages ?? 0) - 1);
          },
        );
      } finally {
        run('sqlite3', [
          dbFile,
          `UPDATE manifests SET bytes = CAST(replace(CAST(bytes AS TEXT), '${to}', '${from}') AS BLOB) WHERE name = '${pkg}';`,
        ]);
      }
    });

    it('a package the server does not know: unverified (not-in-catalog), exit 2; from a tracked-nowhere repository: foreign-origin', async () => {
      const build = path.join(home, 'deb');
      fs.mkdirSync(path.join(build, 'DEBIAN'), { recursive: true });
      fs.mkdirSync(path.join(build, 'usr/share/sysattest-local'), { recursive: true });
      fs.writeFileSync(path.join(build, 'usr/share/sysattest-local/readme'), 'local package\n');
      fs.writeFileSync(
        path.join(build, 'DEBIAN/control'),
        'Package: sysattest-local\nVersion: 1.0-1\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: local test package\n',
      );
      const deb = path.join(home, 'sysattest-local.deb');
      run('dpkg-deb', ['--root-owner-group', '--build', build, deb]);
      run('dpkg', [`--root=${rootfs}`, '--install', deb]);
      const lists = path.join(rootfs, 'var/lib/apt/lists');
      const release = path.join(lists, 'repo.example.org_debian_dists_stable_InRelease');
      const packages = path.join(lists, 'repo.example.org_debian_dists_stable_main_binary-amd64_Packages');
      try {
        const r = verify();
        assert.equal(r.status, 2, r.stderr);
        const local = r.report?.packages.find((p) => p.name === 'sysattest-local');
        assert.deepEqual([local?.status, local?.reason], ['unverified', 'not-in-catalog']);
        assert.deepEqual(
          findingsOf(r, 'unverified').map((f) => f.package),
          ['sysattest-local'],
        );
        fs.writeFileSync(release, 'Origin: Example\nLabel: Example\nSuite: stable\n');
        fs.writeFileSync(packages, 'Package: sysattest-local\nVersion: 1.0-1\nArchitecture: all\n\n');
        const foreign = verify();
        assert.equal(foreign.status, 2);
        const again = foreign.report?.packages.find((p) => p.name === 'sysattest-local');
        assert.deepEqual([again?.reason, again?.origin], ['foreign-origin', 'Example']);
      } finally {
        fs.rmSync(release, { force: true });
        fs.rmSync(packages, { force: true });
        run('dpkg', [`--root=${rootfs}`, '--purge', 'sysattest-local']);
      }
      assert.equal(verify().status, 0);
    });
  },
);

/**
 * The bookworm image the repository's podman tests share (built once, kept between runs under
 * its own namespace and home, so it never touches an operator's images): the generator's worker
 * tests use the same home and namespace. IMAGE_BUSY: another test file is building it.
 */
const TEST_IMAGE_HOME = process.env.SYSATTEST_TEST_IMAGE_HOME ?? '/var/tmp/sysattest-test-images';
const TEST_IMAGE_NAMESPACE = 'localhost/sysattest-test-cache';

async function sharedTestImage(podman: Podman): Promise<PlatformImage> {
  const fleet = new ImageFleet({ home: TEST_IMAGE_HOME, podman, namespace: TEST_IMAGE_NAMESPACE });
  for (;;) {
    const image = await fleet.getImage(PLATFORM);
    if (image !== undefined && (await podman.imageExists(image.imageId))) return image;
    try {
      return (await fleet.buildImage(PLATFORM, { force: image !== undefined })).image;
    } catch (e) {
      if ((e as { code?: string }).code !== 'IMAGE_BUSY') throw e;
      await new Promise((r) => setTimeout(r, 2000));
    }
  }
}

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}
