import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { PlatformError } from '../errors.js';
import { detectPlatforms, formatPlatform } from './index.js';
import { fixturesDir } from '../testkit/pkgdb.js';

const FIXTURES = path.join(fixturesDir(), 'os-release');
const tmpRoots: string[] = [];

after(() => {
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary root with the given files (path → content) and symlinks (path → target). */
function makeRoot(files: Record<string, string>, symlinks: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-platform-'));
  tmpRoots.push(root);
  for (const [p, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), content);
  }
  for (const [p, target] of Object.entries(symlinks)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.symlinkSync(target, path.join(root, p));
  }
  return root;
}

/** A dpkg status file naming `dpkg` (and so the native architecture) and one other package. */
function dpkgStatus(arch: string): string {
  return [
    'Package: dpkg',
    'Status: install ok installed',
    `Architecture: ${arch}`,
    'Version: 1.22.6',
    '',
    'Package: libc6',
    'Status: install ok installed',
    'Architecture: i386',
    'Multi-Arch: same',
    'Version: 2.36-9',
    '',
    '',
  ].join('\n');
}

const BOOKWORM = 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n';

function notDetected(pattern: RegExp) {
  return (e: unknown) =>
    e instanceof PlatformError && e.code === 'PLATFORM_NOT_DETECTED' && pattern.test(e.message);
}

describe('detectPlatforms', () => {
  it('reads os-release through a relative symlink and the arch from dpkg (native from the dpkg package)', async () => {
    const root = makeRoot(
      {
        'usr/lib/os-release': BOOKWORM,
        'var/lib/dpkg/status': dpkgStatus('arm64'),
        'var/lib/dpkg/arch': 'arm64\ni386\narmhf\n',
      },
      { 'etc/os-release': '../usr/lib/os-release' },
    );
    const d = await detectPlatforms(root);
    assert.deepEqual(d.primary, { distro: 'debian', release: 'bookworm', arch: 'arm64' });
    assert.deepEqual(d.foreign.map(formatPlatform), ['debian/bookworm/i386', 'debian/bookworm/armhf']);
    assert.equal(d.osRelease.VERSION_ID, '12');
    assert.equal(d.archSource, 'dpkg');
  });

  it('an ABSOLUTE etc/os-release symlink resolves inside the root, not on the host', async () => {
    // The host's /usr/lib/os-release says ID=debian (or something else); the root's says otherwise.
    const root = makeRoot(
      { 'usr/lib/os-release': 'ID=sysattest-test-distro\nVERSION_ID=7.1\n' },
      { 'etc/os-release': '/usr/lib/os-release' },
    );
    const d = await detectPlatforms(root, { archHint: 'riscv64' });
    assert.deepEqual(d.primary, { distro: 'sysattest-test-distro', release: '7.1', arch: 'riscv64' });
    assert.equal(d.archSource, 'hint');
    assert.deepEqual(d.foreign, []);
  });

  it('an absolute var/lib/dpkg symlink resolves inside the root', async () => {
    const root = makeRoot(
      { 'etc/os-release': BOOKWORM, 'var/lib/dpkg-real/status': dpkgStatus('ppc64el') },
      { 'var/lib/dpkg': '/var/lib/dpkg-real' },
    );
    const d = await detectPlatforms(root);
    assert.equal(formatPlatform(d.primary), 'debian/bookworm/ppc64el');
  });

  it('falls back to usr/lib/os-release when etc/os-release is missing or dangling', async () => {
    const missing = makeRoot({ 'usr/lib/os-release': BOOKWORM, 'var/lib/dpkg/status': dpkgStatus('amd64') });
    assert.equal(formatPlatform((await detectPlatforms(missing)).primary), 'debian/bookworm/amd64');
    const dangling = makeRoot(
      { 'usr/lib/os-release': BOOKWORM, 'var/lib/dpkg/status': dpkgStatus('amd64') },
      { 'etc/os-release': '/nowhere/os-release' },
    );
    assert.equal(formatPlatform((await detectPlatforms(dangling)).primary), 'debian/bookworm/amd64');
  });

  it('etc/os-release wins over usr/lib/os-release', async () => {
    const root = makeRoot({
      'etc/os-release': 'ID=ubuntu\nVERSION_CODENAME=noble\n',
      'usr/lib/os-release': BOOKWORM,
      'var/lib/dpkg/status': dpkgStatus('amd64'),
    });
    assert.equal(formatPlatform((await detectPlatforms(root)).primary), 'ubuntu/noble/amd64');
  });

  it('the dpkg database wins over an arch hint', async () => {
    const root = makeRoot({ 'etc/os-release': BOOKWORM, 'var/lib/dpkg/status': dpkgStatus('s390x') });
    const d = await detectPlatforms(root, { archHint: 'amd64' });
    assert.equal(d.primary.arch, 's390x');
    assert.equal(d.archSource, 'dpkg');
  });

  it('tells Debian unstable from testing by the apt sources', async () => {
    const files = {
      'etc/os-release': 'ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME="Debian GNU/Linux trixie/sid"\n',
      'etc/debian_version': 'trixie/sid\n',
      'var/lib/dpkg/status': dpkgStatus('amd64'),
    };
    const sid = makeRoot({
      ...files,
      'etc/apt/sources.list.d/debian.sources':
        'Types: deb\nURIs: http://example.invalid/debian\nSuites: sid\nComponents: main\n',
    });
    assert.equal(formatPlatform((await detectPlatforms(sid)).primary), 'debian/sid/amd64');
    const testing = makeRoot({
      ...files,
      'etc/apt/sources.list': 'deb http://example.invalid/debian trixie main\n',
    });
    assert.equal(formatPlatform((await detectPlatforms(testing)).primary), 'debian/trixie/amd64');
  });

  it('fails clearly without os-release, or without an architecture', async () => {
    const empty = makeRoot({ 'etc/hostname': 'x\n' });
    await assert.rejects(
      detectPlatforms(empty),
      notDetected(/neither \/etc\/os-release nor \/usr\/lib\/os-release/),
    );
    const noDb = makeRoot({ 'etc/os-release': 'ID=fedora\nVERSION_ID=41\n' });
    await assert.rejects(
      detectPlatforms(noDb),
      notDetected(/architecture of fedora\/41.*no dpkg, rpm or apk database/),
    );
    const noId = makeRoot({ 'etc/os-release': 'VERSION_ID=1\n' });
    await assert.rejects(detectPlatforms(noId, { archHint: 'x86_64' }), notDetected(/no ID/));
    const badHint = makeRoot({ 'etc/os-release': 'ID=fedora\nVERSION_ID=41\n' });
    await assert.rejects(
      detectPlatforms(badHint, { archHint: 'X86 64' }),
      notDetected(/invalid architecture/),
    );
  });

  it('refuses an os-release that is not a regular file or is too large', async () => {
    const dir = makeRoot({ 'etc/os-release/x': 'ID=debian\n' });
    await assert.rejects(
      detectPlatforms(dir, { archHint: 'amd64' }),
      notDetected(/cannot read \/etc\/os-release/),
    );
    const big = makeRoot({ 'etc/os-release': `ID=debian\n#${'x'.repeat(70 * 1024)}\n` });
    await assert.rejects(detectPlatforms(big, { archHint: 'amd64' }), notDetected(/cannot read.*more than/));
  });

  // The real os-release files of other distributions, copied into a temporary root. They have no
  // package database here, so the architecture is given as a hint.
  const fixtures: Array<[string, string, string]> = [
    ['alpine', 'x86_64', 'alpine/3.11/x86_64'],
    ['centos', 'x86_64', 'centos/8/x86_64'],
    ['debian', 'amd64', 'debian/jessie/amd64'],
    ['fedora', 'x86_64', 'fedora/36/x86_64'],
    ['ubuntu', 'amd64', 'ubuntu/focal/amd64'],
  ];
  for (const [name, arch, expected] of fixtures) {
    it(`detects ${expected} from the ${name} fixture`, async () => {
      const root = makeRoot({});
      fs.mkdirSync(path.join(root, 'usr/lib'), { recursive: true });
      fs.copyFileSync(path.join(FIXTURES, name, 'os-release'), path.join(root, 'usr/lib/os-release'));
      fs.mkdirSync(path.join(root, 'etc'));
      fs.symlinkSync('../usr/lib/os-release', path.join(root, 'etc/os-release'));
      const d = await detectPlatforms(root, { archHint: arch });
      assert.equal(formatPlatform(d.primary), expected);
    });
  }

  // Real package databases (the shared fixtures) beside real os-release files: the architecture
  // comes from the database, not from a hint.
  const withDb: Array<[string, string, string, string, string]> = [
    // [os-release fixture, database fixture, path in the root, expected platform, archSource]
    ['centos', 'rpm/libuuid-bdb/Packages', 'var/lib/rpm/Packages', 'centos/8/x86_64', 'rpm'],
    [
      'fedora',
      'rpm/cbl-mariner-2.0/rpmdb.sqlite',
      'usr/lib/sysimage/rpm/rpmdb.sqlite',
      'fedora/36/x86_64',
      'rpm',
    ],
    ['alpine', 'apk/installed-14-packages', 'lib/apk/db/installed', 'alpine/3.11/x86_64', 'apk'],
  ];
  for (const [name, db, inRoot, expected, source] of withDb) {
    it(`detects ${expected} from the ${name} os-release and a real ${source} database`, async () => {
      const root = makeRoot({});
      fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
      fs.copyFileSync(path.join(FIXTURES, name, 'os-release'), path.join(root, 'etc/os-release'));
      fs.mkdirSync(path.dirname(path.join(root, inRoot)), { recursive: true });
      fs.copyFileSync(path.join(FIXTURES, '..', db), path.join(root, inRoot));
      const d = await detectPlatforms(root, { archHint: 'riscv64' });
      assert.equal(formatPlatform(d.primary), expected);
      assert.equal(d.archSource, source);
      assert.deepEqual(d.foreign, []);
    });
  }

  it('apk: etc/apk/arch names the architecture', async () => {
    const root = makeRoot({
      'etc/os-release': 'ID=alpine\nVERSION_ID=3.20.3\n',
      'etc/apk/arch': 'aarch64\n',
      'lib/apk/db/installed': 'P:musl\nV:1.2.5-r0\nA:aarch64\n\n',
    });
    const d = await detectPlatforms(root);
    assert.equal(formatPlatform(d.primary), 'alpine/3.20/aarch64');
  });

  it('rhel, rocky and almalinux releases are the major version', async () => {
    for (const [id, version, expected] of [
      ['rhel', '9.4', 'rhel/9/x86_64'],
      ['rocky', '9.3', 'rocky/9/x86_64'],
      ['almalinux', '8.10', 'almalinux/8/x86_64'],
      ['fedora', '41', 'fedora/41/x86_64'],
    ] as const) {
      const root = makeRoot({ 'etc/os-release': `ID=${id}\nVERSION_ID="${version}"\n` });
      fs.mkdirSync(path.join(root, 'var/lib/rpm'), { recursive: true });
      fs.copyFileSync(
        path.join(FIXTURES, '../rpm/libuuid-bdb/Packages'),
        path.join(root, 'var/lib/rpm/Packages'),
      );
      assert.equal(formatPlatform((await detectPlatforms(root)).primary), expected);
    }
  });

  const isDpkgHost = fs.existsSync('/var/lib/dpkg/status') && fs.existsSync('/etc/os-release');
  it(
    'detects this machine (/) as dpkg and the shell see it',
    { skip: !isDpkgHost && 'not a dpkg machine' },
    async () => {
      const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
      const [id = '', codename = ''] = execFileSync(
        'sh',
        ['-c', '. /etc/os-release; printf "%s\\n%s" "$ID" "$VERSION_CODENAME"'],
        {
          encoding: 'utf8',
        },
      ).split('\n');
      const foreign = execFileSync('dpkg', ['--print-foreign-architectures'], { encoding: 'utf8' })
        .split('\n')
        .filter((a) => a !== '');
      const d = await detectPlatforms('/');
      assert.deepEqual(d.primary, { distro: id, release: codename, arch });
      assert.deepEqual(
        d.foreign.map((p) => p.arch),
        foreign,
      );
    },
  );
});
