import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SigningKey, generateSigningKey, readRpmDatabase, type Platform } from '@sysattest/core';
import {
  FamilyHashPools,
  catalogFromRoot,
  manifestsFromRoot,
  type RpmApkFamily,
} from '@sysattest/generator/dist/generation/rpm-apk-generator.js';
import {
  SA_BOX_BIN,
  SA_BOX_ETC,
  SA_DATA,
  VAR_EMPTY,
  makeAlpineRoot,
  requireTool,
  rpmAt,
  rpmbuild,
  run,
  specText,
  writeAccounts,
  writeApkPackages,
  type ApkPackage,
} from '@sysattest/generator/dist/testkit/families.js';
import type { VerifyReport } from './report.js';
import { startE2EServer, sysattestCli, tampered, type CliRun, type E2EServer } from '../testkit/e2e.js';

/**
 * `sysattest verify --root` end to end on the two other package families, as a user runs it:
 *  - an rpm root: real rpms built here with `rpmbuild` (a binary-ish file, a setuid file, a
 *    symlink, a %config file, a %ghost, a %doc, a noarch package), installed with
 *    `rpm --root DIR --nodeps -i` into a Fedora 41 root (rpm's sqlite database in
 *    /usr/lib/sysimage/rpm), its manifests made by the generator's manifestsFromRoot and its
 *    signed catalog by catalogFromRoot from a real `createrepo_c` repository as dnf caches it;
 *  - an Alpine 3.20 root written by hand (`lib/apk/db/installed` with correct `Z:` checksums);
 * both served by a real `sysattest-server` process (SQLite), then each kind of tampering, one at a
 * time and undone after its check, with the class and exit code a script would see.
 * Needs root (rpm --root chroots), rpm, rpmbuild and createrepo_c; no podman, no network.
 */

const canRun = process.getuid?.() === 0;
/** Where Fedora keeps its rpm database. */
const SYSIMAGE_RPM = '/usr/lib/sysimage/rpm';

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function findingsOf(r: CliRun, cls: string): VerifyReport['findings'] {
  assert.ok(r.report, `no JSON report: exit ${r.status}, stderr ${r.stderr}`);
  return r.report.findings.filter((f) => f.class === cls);
}

// A file that looks like an executable (ELF magic) with random content, made at build time.
const SA_TOOL = specText({
  name: 'sa-tool',
  version: '1.0',
  release: '1.fc41',
  epoch: 2,
  install: [
    'mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/usr/lib/sa-tool %{buildroot}/usr/share/doc/sa-tool',
    "{ printf '\\177ELF'; head -c 40000 /dev/urandom; } > %{buildroot}/usr/bin/sa-tool",
    "printf 'suid helper' > %{buildroot}/usr/bin/sa-suid",
    'ln -s sa-tool %{buildroot}/usr/bin/sa-t',
    "echo 'x=1' > %{buildroot}/etc/sa-tool.conf",
    'head -c 5000 /dev/urandom > %{buildroot}/usr/lib/sa-tool/plugin.so',
    "echo 'read me' > %{buildroot}/usr/share/doc/sa-tool/README",
  ],
  files: [
    '%attr(0755,root,root) /usr/bin/sa-tool',
    '%attr(4755,root,root) /usr/bin/sa-suid',
    '/usr/bin/sa-t',
    '%config(noreplace) /etc/sa-tool.conf',
    '%dir /usr/lib/sa-tool',
    '/usr/lib/sa-tool/plugin.so',
    '%ghost /usr/lib/sa-tool/state',
    '%doc /usr/share/doc/sa-tool/README',
  ],
});

const saData = (version: string): string =>
  specText({
    name: 'sa-data',
    version,
    release: '1.fc41',
    noarch: true,
    install: [
      'mkdir -p %{buildroot}/usr/share/sa-data',
      'head -c 100000 /dev/urandom > %{buildroot}/usr/share/sa-data/blob',
    ],
    files: ['%dir /usr/share/sa-data', '/usr/share/sa-data/blob'],
  });

const SA_LOCAL = specText({
  name: 'sa-local',
  version: '0.1',
  release: '1',
  noarch: true,
  description: 'a package built locally, which no repository offers',
  install: [
    'mkdir -p %{buildroot}/usr/share/sa-local',
    'echo local > %{buildroot}/usr/share/sa-local/readme',
  ],
  files: ['/usr/share/sa-local/readme'],
});

// A package one of whose files the generator's install did not keep (as if a scriptlet removed
// it): its manifest says `absent` with no reason. `ghosted` is the same NEVR with that path
// %ghost, for editing a machine's database with `rpm --justdb`.
const saRm = (ghosted: boolean, hiding = false): string =>
  specText({
    name: 'sa-rm',
    version: '1',
    release: '1',
    noarch: true,
    install: [
      'mkdir -p %{buildroot}/usr/lib/sa-rm',
      'echo kept > %{buildroot}/usr/lib/sa-rm/kept',
      'echo cache > %{buildroot}/usr/lib/sa-rm/cache',
    ],
    files: [
      '/usr/lib/sa-rm/kept',
      `${ghosted ? '%ghost ' : ''}/usr/lib/sa-rm/cache`,
      hiding ? '%ghost /usr/bin/sa-dropper' : '',
    ],
  });

/** The `C:` checksum of the hand-made Alpine packages (no archive made them). */
const C_ANY = `Q1${'A'.repeat(27)}=`;

/** The packages of a small Alpine 3.20 root: a setuid file, a symlink, a directory with its own mode, a noarch package. */
const APK_PACKAGES: ApkPackage[] = [
  {
    checksum: C_ANY,
    name: 'sa-box',
    version: '1.36.1-r29',
    arch: 'x86_64',
    origin: 'sa-box',
    dirs: [SA_BOX_BIN, SA_BOX_ETC, VAR_EMPTY],
  },
  {
    checksum: C_ANY,
    name: 'sa-doc',
    version: '1.0-r0',
    arch: 'noarch',
    dirs: [{ path: 'usr/share/sa-doc', files: [{ name: 'readme', content: 'docs\n' }] }],
  },
  {
    checksum: C_ANY,
    name: 'apk-tools',
    version: '2.14.4-r0',
    arch: 'x86_64',
    dirs: [{ path: 'etc/apk/keys', files: [{ name: 'sa-test.rsa.pub', content: 'key\n' }] }, SA_DATA],
  },
];

/** A package the server has no manifest of. */
const SA_EXTRA: ApkPackage = {
  checksum: C_ANY,
  name: 'sa-extra',
  version: '2.0-r1',
  arch: 'x86_64',
  dirs: [{ path: 'usr/share/sa-extra', files: [{ name: 'x', content: 'x\n' }] }],
};

/** A small Alpine 3.20 root of APK_PACKAGES (and SA_EXTRA with `extraPackage`). */
function makeApkRoot(root: string, extraPackage = false): void {
  writeApkPackages(root, extraPackage ? [...APK_PACKAGES, SA_EXTRA] : APK_PACKAGES);
  // (Its database ends with a blank line, as apk writes it.)
  fs.appendFileSync(path.join(root, 'lib/apk/db/installed'), '\n');
  writeAccounts(root);
  fs.writeFileSync(
    path.join(root, 'etc/os-release'),
    'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
  );
  fs.writeFileSync(path.join(root, 'etc/apk/arch'), 'x86_64\n');
}

describe(
  'sysattest verify on rpm and apk roots',
  { skip: !canRun && 'needs root (rpm --root chroots)', timeout: 10 * 60_000 },
  () => {
    let home: string;
    let keyFile: string;
    let key: SigningKey;
    let server: E2EServer;
    let clientHome: string;
    const pools = new FamilyHashPools(2);
    const rpms = new Map<string, string[]>();

    /** `verify --root ROOT --format json` against the server, with the generator key. */
    function verify(root: string, extra: string[] = [], home = clientHome): CliRun {
      return sysattestCli(
        [
          'verify',
          '--root',
          root,
          '--server',
          server.url,
          '--keyring',
          keyFile,
          '--format',
          'json',
          ...extra,
        ],
        { SYSATTEST_CLIENT_HOME: home, SYSATTEST_CONFIG: '' },
      );
    }

    /**
     * Tampers with `root` (`change`, undone after), verifies it and expects exit `status` and the
     * findings of class `cls`, each as `show` gives it (sorted with `sort`); then `more` checks.
     */
    function expectFindings(
      root: string,
      paths: string[],
      change: () => void,
      want: {
        status: number;
        cls: string;
        show: (f: VerifyReport['findings'][number]) => unknown;
        findings: unknown[];
        sort?: boolean;
        more?: (r: CliRun) => void;
      },
    ): Promise<void> {
      return tampered(root, paths, change, () => {
        const r = verify(root);
        assert.equal(r.status, want.status, JSON.stringify(r.report?.findings));
        const shown = findingsOf(r, want.cls).map(want.show);
        assert.deepEqual(want.sort === true ? shown.sort() : shown, want.findings);
        want.more?.(r);
      });
    }

    /**
     * A Fedora 41 root `name` (under the test's home) with `rpmFiles` installed by rpm in its
     * database in /usr/lib/sysimage/rpm (extra rpm flags in `rpmArgs`).
     */
    function rpmRoot(
      name: string,
      rpmFiles: string[],
      rpmArgs: string[] = [],
      osRelease = 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=41\n',
    ): string {
      const r = path.join(home, name);
      writeAccounts(r);
      fs.writeFileSync(path.join(r, 'etc/os-release'), osRelease);
      rpmAt(r, SYSIMAGE_RPM, [...rpmArgs, '-i', ...rpmFiles]);
      return r;
    }

    async function generateAndUpload(
      root: string,
      family: RpmApkFamily,
      platform: Platform,
      packages: { name: string; version: string; arch?: string }[],
    ): Promise<string[]> {
      const made = await manifestsFromRoot({
        root,
        family,
        platform,
        packages,
        key,
        outDir: path.join(home, `manifests-${family}`),
        pools,
        image: { id: 'e'.repeat(64) },
      });
      assert.deepEqual(made.failures, []);
      assert.deepEqual(made.digestMismatches, []);
      for (const m of made.manifests) await server.uploadManifest(m.file);
      return made.manifests.map((m) => path.relative(path.join(home, `manifests-${family}`), m.file));
    }

    /** A dnf cache of a createrepo_c repository of `files` in a scratch "image" root; its signed catalog. */
    async function uploadCatalog(name: string, files: string[]): Promise<void> {
      const repo = path.join(home, `repo-${name}`);
      fs.mkdirSync(repo);
      for (const f of files) fs.copyFileSync(f, path.join(repo, path.basename(f)));
      run('createrepo_c', ['--quiet', '--no-database', repo]);
      const image = path.join(home, `image-${name}`);
      const cache = path.join(image, 'var/cache/libdnf5', 'sa-0123456789abcdef');
      fs.mkdirSync(cache, { recursive: true });
      fs.cpSync(path.join(repo, 'repodata'), path.join(cache, 'repodata'), { recursive: true });
      const { signed, warnings } = await catalogFromRoot({
        root: image,
        family: 'rpm',
        platform: { distro: 'fedora', release: '41', arch: 'x86_64' },
        key,
        imageId: 'e'.repeat(64),
      });
      assert.deepEqual(warnings, []);
      await server.uploadCatalog(signed);
    }

    before(async () => {
      requireTool('rpmbuild', 'rpm');
      requireTool('createrepo_c', 'createrepo-c');
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-rpm-e2e-'));
      clientHome = path.join(home, 'client');
      const k = await generateSigningKey({ name: 'client rpm/apk e2e test' });
      key = await SigningKey.fromArmored(k.armoredSecretKey);
      keyFile = path.join(home, 'generator.asc');
      fs.writeFileSync(keyFile, k.armoredPublicKey);
      server = await startE2EServer(home, keyFile);
      const work = path.join(home, 'build');
      fs.mkdirSync(work);
      rpms.set('sa-tool', rpmbuild(work, 'sa-tool', SA_TOOL));
      rpms.set('sa-data', rpmbuild(work, 'sa-data', saData('1.0')));
      rpms.set('sa-data-1.1', rpmbuild(work, 'sa-data-1.1', saData('1.1')));
      rpms.set('sa-local', rpmbuild(work, 'sa-local', SA_LOCAL));
      rpms.set('sa-rm', rpmbuild(work, 'sa-rm', saRm(false)));
      rpms.set('sa-rm-ghosted', rpmbuild(work, 'sa-rm-ghosted', saRm(true)));
      rpms.set('sa-rm-hiding', rpmbuild(work, 'sa-rm-hiding', saRm(true, true)));
    });

    after(async () => {
      server?.stop();
      await pools.close();
      if (home !== undefined) fs.rmSync(home, { recursive: true, force: true });
    });

    describe('a Fedora 41 root made with rpmbuild and rpm --root', () => {
      let root: string;
      const platform: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };

      /** A Fedora 41 root with sa-tool and sa-data installed by rpm (extra rpm flags in `rpmArgs`). */
      const makeRpmRoot = (name: string, rpmArgs: string[] = []): string =>
        rpmRoot(
          name,
          [...(rpms.get('sa-tool') as string[]), ...(rpms.get('sa-data') as string[])],
          rpmArgs,
          'NAME="Fedora Linux"\nVERSION="41 (Container Image)"\nID=fedora\nVERSION_ID=41\nPLATFORM_ID="platform:f41"\n',
        );

      before(async () => {
        root = makeRpmRoot('fedora-root');
        const made = await generateAndUpload(root, 'rpm', platform, [
          { name: 'sa-tool', version: '2:1.0-1.fc41', arch: 'x86_64' },
          { name: 'sa-data', version: '1.0-1.fc41', arch: 'noarch' },
        ]);
        // The generator names the platform after the package's own architecture.
        assert.deepEqual(made.sort(), [
          'fedora/41/noarch/sa-data_1.0-1.fc41_noarch.json',
          'fedora/41/x86_64/sa-tool_2%3a1.0-1.fc41_x86_64.json',
        ]);
        await uploadCatalog('v1', [...(rpms.get('sa-tool') ?? []), ...(rpms.get('sa-data') ?? [])]);
      });

      it('the root really is an rpm root: sqlite database, %ghost and %doc as rpm records them', async () => {
        const db = await readRpmDatabase(root);
        assert.equal(db.format, 'sqlite');
        assert.deepEqual(db.packages.map((p) => `${p.name}-${p.version}.${p.architecture}`).sort(), [
          'sa-data-1.0-1.fc41.noarch',
          'sa-tool-2:1.0-1.fc41.x86_64',
        ]);
        const files = db.packages.find((p) => p.name === 'sa-tool')?.files ?? [];
        assert.equal(files.find((f) => f.path === '/usr/lib/sa-tool/state')?.ghost, true);
        assert.equal(files.find((f) => f.path === '/etc/sa-tool.conf')?.conffile, true);
        assert.equal(fs.existsSync(path.join(root, 'usr/lib/sa-tool/state')), false);
      });

      it('untouched: both packages verified (x86_64 and noarch), no findings, exit 0', () => {
        const r = verify(root);
        assert.equal(r.status, 0, `${r.stderr}\n${JSON.stringify(r.report?.findings)}`);
        const report = r.report as VerifyReport;
        assert.equal(report.platform, 'fedora/41/x86_64');
        assert.deepEqual(report.findings, []);
        assert.deepEqual(report.packages.map((p) => [p.name, p.arch, p.status]).sort(), [
          ['sa-data', 'noarch', 'verified'],
          ['sa-tool', 'x86_64', 'verified'],
        ]);
        // Every path of both packages but the %ghost: 7 of sa-tool, 2 of sa-data; the ghost
        // entry is counted, not flagged.
        assert.equal(report.summary.filesChecked, 10);
        // The signed catalog verified and lists both at their installed versions: nothing outdated.
        assert.deepEqual(
          report.catalogs.map((c) => [c.platform, c.status]),
          [['fedora/41/x86_64', 'verified']],
        );
        assert.deepEqual(report.packages.map((p) => p.newestVersion).sort(), ['1.0-1.fc41', '2:1.0-1.fc41']);
        const text = sysattestCli(['verify', '--root', root, '--server', server.url, '--keyring', keyFile], {
          SYSATTEST_CLIENT_HOME: clientHome,
          SYSATTEST_CONFIG: '',
        });
        assert.equal(text.status, 0);
        assert.match(text.stdout, /no findings/);
      });

      it('--packages takes rpm names and architectures (name:x86_64)', () => {
        const r = verify(root, ['--packages', 'sa-tool:x86_64']);
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(
          r.report?.packages.map((p) => p.name),
          ['sa-tool'],
        );
      });

      it("the signed manifest, made from the generator's own database, says the path is a %ghost", () => {
        const file = path.join(home, 'manifests-rpm/fedora/41/x86_64/sa-tool_2%3a1.0-1.fc41_x86_64.json');
        const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: { path: string }[] };
        assert.deepEqual(
          m.entries.find((e) => e.path === '/usr/lib/sa-tool/state'),
          { type: 'absent', path: '/usr/lib/sa-tool/state', reason: 'ghost' },
        );
      });

      it('a %ghost file made at run time is neither expected nor flagged', async () => {
        await tampered(
          root,
          ['/usr/lib/sa-tool/state'],
          () => fs.writeFileSync(path.join(root, 'usr/lib/sa-tool/state'), 'made at run time\n'),
          () => {
            const r = verify(root);
            assert.equal(r.status, 0, JSON.stringify(r.report?.findings));
            assert.deepEqual(r.report?.findings, []);
          },
        );
      });

      it('content changed (the binary): modified, exit 1', async () => {
        const file = path.join(root, 'usr/bin/sa-tool');
        const before = sha256(fs.readFileSync(file));
        await expectFindings(root, ['/usr/bin/sa-tool'], () => fs.appendFileSync(file, 'trojan'), {
          status: 1,
          cls: 'modified',
          show: (x) => [x.path, x.package, x.arch, x.expected],
          findings: [['/usr/bin/sa-tool', 'sa-tool', 'x86_64', before]],
          more: (r) => assert.equal(r.report?.summary.failures, 1),
        });
      });

      it('content changed in the noarch package: modified, exit 1', async () => {
        await expectFindings(
          root,
          ['/usr/share/sa-data/blob'],
          () => fs.writeFileSync(path.join(root, 'usr/share/sa-data/blob'), 'replaced'),
          {
            status: 1,
            cls: 'modified',
            show: (x) => [x.path, x.package, x.arch],
            findings: [['/usr/share/sa-data/blob', 'sa-data', 'noarch']],
          },
        );
      });

      it('setuid bit added to the binary: metadata (mode), exit 1; setuid dropped from the setuid file: same', async () => {
        await expectFindings(
          root,
          ['/usr/bin/sa-tool', '/usr/bin/sa-suid'],
          () => {
            fs.chmodSync(path.join(root, 'usr/bin/sa-tool'), 0o4755);
            fs.chmodSync(path.join(root, 'usr/bin/sa-suid'), 0o755);
          },
          {
            status: 1,
            cls: 'metadata',
            show: (x) => [x.path, x.attribute, x.expected, x.actual],
            sort: true,
            findings: [
              ['/usr/bin/sa-suid', 'mode', '4755', '0755'],
              ['/usr/bin/sa-tool', 'mode', '0755', '4755'],
            ],
            more: (r) =>
              assert.match(
                findingsOf(r, 'metadata').find((x) => x.path === '/usr/bin/sa-tool')?.detail ?? '',
                /setuid/,
              ),
          },
        );
      });

      it('file deleted: missing, exit 1 (the doc too: this root was installed with its docs)', async () => {
        await expectFindings(
          root,
          ['/usr/lib/sa-tool/plugin.so', '/usr/share/doc/sa-tool/README'],
          () => {
            fs.rmSync(path.join(root, 'usr/lib/sa-tool/plugin.so'));
            fs.rmSync(path.join(root, 'usr/share/doc/sa-tool/README'));
          },
          {
            status: 1,
            cls: 'missing',
            show: (f) => f.path,
            sort: true,
            findings: ['/usr/lib/sa-tool/plugin.so', '/usr/share/doc/sa-tool/README'],
          },
        );
      });

      it('symlink retargeted: metadata (target), exit 1', async () => {
        await expectFindings(
          root,
          ['/usr/bin/sa-t'],
          () => {
            fs.rmSync(path.join(root, 'usr/bin/sa-t'));
            fs.symlinkSync('/tmp/elsewhere', path.join(root, 'usr/bin/sa-t'));
          },
          {
            status: 1,
            cls: 'metadata',
            show: (x) => [x.path, x.attribute, x.expected, x.actual],
            findings: [['/usr/bin/sa-t', 'target', 'sa-tool', '/tmp/elsewhere']],
          },
        );
      });

      it('%config file edited: config-modified, listed but exit 0; a failure (1) with --include-config', async () => {
        await expectFindings(
          root,
          ['/etc/sa-tool.conf'],
          () => fs.appendFileSync(path.join(root, 'etc/sa-tool.conf'), 'x=2\n'),
          {
            status: 0,
            cls: 'config-modified',
            show: (x) => [x.path, x.failure],
            findings: [['/etc/sa-tool.conf', false]],
            more: () => {
              const strict = verify(root, ['--include-config']);
              assert.equal(strict.status, 1);
              assert.equal(findingsOf(strict, 'config-modified')[0]?.failure, true);
            },
          },
        );
      });

      it('an rpm no repository offers (not uploaded, not in the signed catalog): unverified not-in-catalog, exit 2', async () => {
        rpmAt(root, SYSIMAGE_RPM, ['-i', ...(rpms.get('sa-local') as string[])]);
        try {
          const r = verify(root);
          assert.equal(r.status, 2, r.stderr);
          const local = r.report?.packages.find((p) => p.name === 'sa-local');
          assert.deepEqual(
            [local?.status, local?.reason, local?.arch],
            ['unverified', 'not-in-catalog', 'noarch'],
          );
          assert.deepEqual(
            findingsOf(r, 'unverified').map((f) => f.package),
            ['sa-local'],
          );
          // The others are still checked.
          assert.equal(r.report?.summary.verified, 2);
        } finally {
          rpmAt(root, SYSIMAGE_RPM, ['-e', 'sa-local']);
        }
        assert.equal(verify(root).status, 0);
      });

      it('a newer version in the signed catalog: outdated (rpm version order), not a failure', async () => {
        // A later snapshot (its generatedAt has a one-second resolution) also offering sa-data 1.1.
        await new Promise((r) => setTimeout(r, 1100));
        await uploadCatalog('v2', [
          ...(rpms.get('sa-tool') ?? []),
          ...(rpms.get('sa-data') ?? []),
          ...(rpms.get('sa-data-1.1') ?? []),
        ]);
        // A client with nothing cached: the catalog snapshot comes with the lookup's answer (with
        // every manifest cached, no lookup is made, and so no snapshot is fetched).
        const r = verify(root, [], path.join(home, 'fresh-client'));
        assert.equal(r.status, 0, r.stderr);
        assert.deepEqual(
          findingsOf(r, 'outdated').map((f) => [f.package, f.actual, f.expected]),
          [['sa-data', '1.0-1.fc41', '1.1-1.fc41']],
        );
      });

      it('--scan-unowned: an unknown file in /usr/bin is unowned; %ghost paths and alternatives links are owned', async () => {
        const stock = findingsOf(verify(root, ['--scan-unowned']), 'unowned').map((f) => f.path as string);
        // rpm's own database files (a Fedora `rpm` package owns them as %ghost; this root has none).
        assert.ok(
          stock.every((p) => p.startsWith('/usr/lib/sysimage/rpm/')),
          stock.join(', '),
        );
        await tampered(
          root,
          ['/usr/bin/.dropped', '/usr/lib/sa-tool/state', '/usr/bin/sa-editor', '/var/lib/alternatives'],
          () => {
            fs.writeFileSync(path.join(root, 'usr/bin/.dropped'), '\x7fELF dropped', { mode: 0o755 });
            fs.writeFileSync(path.join(root, 'usr/lib/sa-tool/state'), 'run time\n');
            fs.symlinkSync('/etc/alternatives/sa-editor', path.join(root, 'usr/bin/sa-editor'));
            fs.mkdirSync(path.join(root, 'var/lib/alternatives'), { recursive: true });
            fs.writeFileSync(
              path.join(root, 'var/lib/alternatives/sa-editor'),
              'auto\n/usr/bin/sa-editor\n\n/usr/bin/sa-tool\n10\n',
            );
          },
          () => {
            const r = verify(root, ['--scan-unowned']);
            assert.equal(r.status, 1, r.stderr);
            const found = findingsOf(r, 'unowned').filter((f) => !stock.includes(f.path as string));
            assert.deepEqual(
              found.map((f) => [f.path, f.known, f.failure]),
              [['/usr/bin/.dropped', false, true]],
            );
          },
        );
      });

      describe('the same packages installed without their docs (rpm --excludedocs, as Fedora images do)', () => {
        let nodocs: string;
        before(() => {
          nodocs = makeRpmRoot('fedora-nodocs', ['--excludedocs']);
        });

        it('the doc rpm did not install is not expected: the local database says so; exit 0', async () => {
          const db = await readRpmDatabase(nodocs);
          const readme = db.packages
            .find((p) => p.name === 'sa-tool')
            ?.files.find((f) => f.path === '/usr/share/doc/sa-tool/README');
          assert.deepEqual([readme?.notInstalled, readme?.state], [true, 'notinstalled']);
          assert.equal(fs.existsSync(path.join(nodocs, 'usr/share/doc/sa-tool/README')), false);
          const r = verify(nodocs);
          assert.equal(r.status, 0, JSON.stringify(r.report?.findings));
          // (sa-data is outdated by now: the catalog snapshot of the test above offers 1.1.)
          assert.deepEqual(
            r.report?.findings.filter((f) => f.class !== 'outdated'),
            [],
          );
        });

        it('but a file put where the manifest ships one is still compared: modified, exit 1', async () => {
          await expectFindings(
            nodocs,
            ['/usr/share/doc/sa-tool/README'],
            () => {
              fs.mkdirSync(path.join(nodocs, 'usr/share/doc/sa-tool'), { recursive: true });
              fs.writeFileSync(path.join(nodocs, 'usr/share/doc/sa-tool/README'), 'not the doc\n');
            },
            { status: 1, cls: 'modified', show: (f) => f.path, findings: ['/usr/share/doc/sa-tool/README'] },
          );
        });
      });
    });

    describe('a machine whose rpm database was edited to call a path %ghost (rpm --justdb)', () => {
      const platform: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };
      let machine: string;

      before(async () => {
        // The generator's fresh install, which did not keep /usr/lib/sa-rm/cache.
        const gen = rpmRoot('fedora-sa-rm-generator', rpms.get('sa-rm') as string[]);
        fs.rmSync(path.join(gen, 'usr/lib/sa-rm/cache'));
        await generateAndUpload(gen, 'rpm', platform, [{ name: 'sa-rm', version: '1-1', arch: 'noarch' }]);
        // The machine: the same package, then its database rewritten with the same NEVR calling
        // that path %ghost (files untouched), as someone hiding a planted file would.
        // (sa-tool too: a root of noarch packages alone does not tell its architecture.)
        machine = rpmRoot('fedora-sa-rm-machine', [
          ...(rpms.get('sa-rm') as string[]),
          ...(rpms.get('sa-tool') as string[]),
        ]);
        fs.rmSync(path.join(machine, 'usr/lib/sa-rm/cache'));
        rpmRoot('fedora-sa-rm-machine', rpms.get('sa-rm-ghosted') as string[], ['--justdb', '--replacepkgs']);
      });

      it('the manifest says absent with no reason; the edited database says %ghost', async () => {
        const file = path.join(home, 'manifests-rpm/fedora/41/noarch/sa-rm_1-1_noarch.json');
        const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { entries: { path: string }[] };
        assert.deepEqual(
          m.entries.find((e) => e.path === '/usr/lib/sa-rm/cache'),
          { type: 'absent', path: '/usr/lib/sa-rm/cache' },
        );
        const db = await readRpmDatabase(machine);
        assert.deepEqual(db.packages.map((p) => `${p.name}-${p.version}`).sort(), [
          'sa-rm-1-1',
          'sa-tool-2:1.0-1.fc41',
        ]);
        const cache = db.packages
          .find((p) => p.name === 'sa-rm')
          ?.files.find((f) => f.path === '/usr/lib/sa-rm/cache');
        assert.equal(cache?.ghost, true);
        const clean = verify(machine);
        assert.equal(clean.status, 0, `${clean.stderr}\n${JSON.stringify(clean.report?.findings)}`);
      });

      it('a file planted at that path is unexpected, exit 1: the local %ghost excuses nothing', async () => {
        await expectFindings(
          machine,
          ['/usr/lib/sa-rm/cache'],
          () => fs.writeFileSync(path.join(machine, 'usr/lib/sa-rm/cache'), '\x7fELF planted'),
          {
            status: 1,
            cls: 'unexpected',
            show: (x) => [x.path, x.package, x.failure],
            findings: [['/usr/lib/sa-rm/cache', 'sa-rm', true]],
            more: (r) =>
              assert.match(
                findingsOf(r, 'unexpected')[0]?.detail ?? '',
                /local rpm database calls it %ghost/,
              ),
          },
        );
      });

      it('--scan-unowned: a binary the edited database claims for a verified package is still unowned', async () => {
        rpmRoot('fedora-sa-rm-machine', rpms.get('sa-rm-hiding') as string[], ['--justdb', '--replacepkgs']);
        const db = await readRpmDatabase(machine);
        const claimed = db.packages.find((p) => p.name === 'sa-rm')?.files.map((f) => f.path);
        assert.ok(claimed?.includes('/usr/bin/sa-dropper'), 'the local database now lists it');
        await tampered(
          machine,
          ['/usr/bin/sa-dropper'],
          () => {
            fs.mkdirSync(path.join(machine, 'usr/bin'), { recursive: true });
            fs.writeFileSync(path.join(machine, 'usr/bin/sa-dropper'), '\x7fELF dropped');
          },
          () => {
            const r = verify(machine, ['--scan-unowned']);
            assert.equal(r.status & 1, 1, JSON.stringify(r.report?.findings));
            // (This root has no `rpm` package, so rpm's own database files are unowned too.)
            const f = findingsOf(r, 'unowned').filter((x) => !x.path?.startsWith('/usr/lib/sysimage/rpm/'));
            assert.deepEqual(
              f.map((x) => [x.path, x.failure]),
              [['/usr/bin/sa-dropper', true]],
            );
          },
        );
      });
    });

    describe('a hand-made Alpine 3.20 root', () => {
      let root: string;
      const platform: Platform = { distro: 'alpine', release: '3.20', arch: 'x86_64' };

      before(async () => {
        root = path.join(home, 'alpine-root');
        makeApkRoot(root);
        const made = await generateAndUpload(root, 'apk', platform, [
          { name: 'sa-box', version: '1.36.1-r29' },
          { name: 'sa-doc', version: '1.0-r0' },
          { name: 'apk-tools', version: '2.14.4-r0' },
        ]);
        assert.deepEqual(made.sort(), [
          'alpine/3.20/noarch/sa-doc_1.0-r0_noarch.json',
          'alpine/3.20/x86_64/apk-tools_2.14.4-r0_x86_64.json',
          'alpine/3.20/x86_64/sa-box_1.36.1-r29_x86_64.json',
        ]);
        // The platform's signed catalog, from an image's cached APKINDEX (without one, every
        // run would say the server named no catalog snapshot: stale-catalog, coverage).
        const image = path.join(home, 'alpine-image');
        makeAlpineRoot(path.join(home, 'alpine-work'), image, undefined);
        const { signed } = await catalogFromRoot({
          root: image,
          family: 'apk',
          platform,
          key,
          imageId: 'e'.repeat(64),
        });
        await server.uploadCatalog(signed);
      });

      it('untouched: every package verified (x86_64 and noarch), no findings, exit 0', () => {
        const r = verify(root);
        assert.equal(r.status, 0, `${r.stderr}\n${JSON.stringify(r.report?.findings)}`);
        const report = r.report as VerifyReport;
        assert.equal(report.platform, 'alpine/3.20/x86_64');
        assert.deepEqual(report.findings, []);
        assert.deepEqual(report.packages.map((p) => [p.name, p.arch, p.status]).sort(), [
          ['apk-tools', 'x86_64', 'verified'],
          ['sa-box', 'x86_64', 'verified'],
          ['sa-doc', 'noarch', 'verified'],
        ]);
      });

      it('content changed: modified, exit 1', async () => {
        await expectFindings(
          root,
          ['/bin/sa-box'],
          () => fs.appendFileSync(path.join(root, 'bin/sa-box'), 'echo pwned\n'),
          {
            status: 1,
            cls: 'modified',
            show: (f) => [f.path, f.package],
            findings: [['/bin/sa-box', 'sa-box']],
          },
        );
      });

      it("a file under /etc edited: config-modified (apk's protected paths), exit 0; a failure (1) with --include-config", async () => {
        await expectFindings(
          root,
          ['/etc/sa-box.conf'],
          () => fs.appendFileSync(path.join(root, 'etc/sa-box.conf'), 'b=2\n'),
          {
            status: 0,
            cls: 'config-modified',
            show: (f) => [f.path, f.package, f.failure],
            findings: [['/etc/sa-box.conf', 'sa-box', false]],
            more: (r) => {
              assert.deepEqual(findingsOf(r, 'modified'), []);
              const strict = verify(root, ['--include-config']);
              assert.equal(strict.status, 1);
              assert.deepEqual(
                findingsOf(strict, 'config-modified').map((f) => [f.path, f.failure]),
                [['/etc/sa-box.conf', true]],
              );
            },
          },
        );
      });

      it('a repository key under /etc/apk replaced: modified, exit 1 (etc/apk is not configuration)', async () => {
        await expectFindings(
          root,
          ['/etc/apk/keys/sa-test.rsa.pub'],
          () => fs.writeFileSync(path.join(root, 'etc/apk/keys/sa-test.rsa.pub'), 'attacker key\n'),
          {
            status: 1,
            cls: 'modified',
            show: (f) => [f.path, f.package],
            findings: [['/etc/apk/keys/sa-test.rsa.pub', 'apk-tools']],
          },
        );
      });

      it('setuid dropped and a symlink retargeted: metadata, exit 1', async () => {
        await expectFindings(
          root,
          ['/bin/sa-ping', '/bin/sa-sh'],
          () => {
            fs.chmodSync(path.join(root, 'bin/sa-ping'), 0o711);
            fs.rmSync(path.join(root, 'bin/sa-sh'));
            fs.symlinkSync('/tmp/sh', path.join(root, 'bin/sa-sh'));
          },
          {
            status: 1,
            cls: 'metadata',
            show: (f) => [f.path, f.attribute, f.actual],
            sort: true,
            findings: [
              ['/bin/sa-ping', 'mode', '0711'],
              ['/bin/sa-sh', 'target', '/tmp/sh'],
            ],
          },
        );
      });

      it('a package the signed apk catalog does not list: unverified (not-in-catalog), exit 2', () => {
        const extra = path.join(home, 'alpine-extra');
        makeApkRoot(extra, true);
        const r = verify(extra);
        assert.equal(r.status, 2, r.stderr);
        const pkg = r.report?.packages.find((p) => p.name === 'sa-extra');
        assert.deepEqual([pkg?.status, pkg?.reason], ['unverified', 'not-in-catalog']);
        // The catalog does not list it: no contradiction, so coverage only.
        assert.deepEqual(findingsOf(r, 'server-conflict'), []);
        assert.equal(r.report?.summary.verified, 3);
      });
    });
  },
);
