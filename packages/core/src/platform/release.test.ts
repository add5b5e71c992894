import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlatformError } from '../errors.js';
import {
  packageFamily,
  parseAptSources,
  releaseFamily,
  releaseFromOsRelease,
  type ReleaseEvidence,
} from './release.js';

describe('releaseFromOsRelease', () => {
  const cases: Array<[string, ReleaseEvidence, string]> = [
    [
      'Debian stable',
      { osRelease: { ID: 'debian', VERSION_ID: '12', VERSION_CODENAME: 'bookworm' } },
      'bookworm',
    ],
    [
      'Debian without VERSION_CODENAME (jessie)',
      { osRelease: { ID: 'debian', VERSION_ID: '8', VERSION: '8 (jessie)' } },
      'jessie',
    ],
    [
      'Debian testing: codename, no VERSION_ID',
      {
        osRelease: { ID: 'debian', VERSION_CODENAME: 'trixie' },
        debianVersion: 'trixie/sid\n',
        aptSuites: ['trixie', 'trixie-security'],
      },
      'trixie',
    ],
    [
      'Debian unstable: apt sources name only sid',
      {
        osRelease: { ID: 'debian', VERSION_CODENAME: 'trixie' },
        debianVersion: 'trixie/sid\n',
        aptSuites: ['sid'],
      },
      'sid',
    ],
    [
      'Debian unstable with experimental',
      { osRelease: { ID: 'debian', VERSION_CODENAME: 'trixie' }, aptSuites: ['unstable', 'experimental'] },
      'sid',
    ],
    [
      'Debian testing with unstable pinned beside it stays testing',
      { osRelease: { ID: 'debian', VERSION_CODENAME: 'trixie' }, aptSuites: ['testing', 'unstable'] },
      'trixie',
    ],
    [
      'Debian testing without apt sources',
      { osRelease: { ID: 'debian', VERSION_CODENAME: 'trixie' } },
      'trixie',
    ],
    [
      'Debian with only debian_version x/sid',
      {
        osRelease: { ID: 'debian', PRETTY_NAME: 'Debian GNU/Linux trixie/sid' },
        debianVersion: 'trixie/sid\n',
      },
      'trixie',
    ],
    [
      'a stable Debian ignores sid in apt sources',
      { osRelease: { ID: 'debian', VERSION_ID: '12', VERSION_CODENAME: 'bookworm' }, aptSuites: ['sid'] },
      'bookworm',
    ],
    [
      'Raspbian (ID_LIKE=debian) keeps its codename',
      { osRelease: { ID: 'raspbian', ID_LIKE: 'debian', VERSION_CODENAME: 'bookworm' } },
      'bookworm',
    ],
    [
      'Ubuntu',
      { osRelease: { ID: 'ubuntu', ID_LIKE: 'debian', VERSION_ID: '24.04', VERSION_CODENAME: 'noble' } },
      'noble',
    ],
    [
      'Ubuntu with only UBUNTU_CODENAME',
      { osRelease: { ID: 'ubuntu', VERSION_ID: '20.04', UBUNTU_CODENAME: 'focal' } },
      'focal',
    ],
    [
      'Linux Mint: its own codename, by the ubuntu rule',
      {
        osRelease: {
          ID: 'linuxmint',
          ID_LIKE: 'ubuntu debian',
          VERSION_CODENAME: 'wilma',
          UBUNTU_CODENAME: 'noble',
        },
      },
      'wilma',
    ],
    ['Fedora', { osRelease: { ID: 'fedora', VERSION_ID: '41', VERSION_CODENAME: '' } }, '41'],
    [
      'Fedora Rawhide',
      { osRelease: { ID: 'fedora', VERSION_ID: '42', REDHAT_SUPPORT_PRODUCT_VERSION: 'rawhide' } },
      'rawhide',
    ],
    ['RHEL minor release → major', { osRelease: { ID: 'rhel', ID_LIKE: 'fedora', VERSION_ID: '9.4' } }, '9'],
    ['CentOS', { osRelease: { ID: 'centos', ID_LIKE: 'rhel fedora', VERSION_ID: '8' } }, '8'],
    ['Rocky', { osRelease: { ID: 'rocky', ID_LIKE: 'rhel centos fedora', VERSION_ID: '9.3' } }, '9'],
    [
      'an unknown RHEL rebuild, by ID_LIKE',
      { osRelease: { ID: 'navy', ID_LIKE: 'rhel fedora', VERSION_ID: '8.10' } },
      '8',
    ],
    [
      'Amazon Linux 2023 (ID_LIKE=fedora)',
      { osRelease: { ID: 'amzn', ID_LIKE: 'fedora', VERSION_ID: '2023' } },
      '2023',
    ],
    ['Alpine patch release → minor', { osRelease: { ID: 'alpine', VERSION_ID: '3.20.3' } }, '3.20'],
    ['Alpine 3.11.6', { osRelease: { ID: 'alpine', VERSION_ID: '3.11.6' } }, '3.11'],
    [
      'Alpine edge',
      { osRelease: { ID: 'alpine', VERSION_ID: '3.21_alpha20240807', PRETTY_NAME: 'Alpine Linux edge' } },
      'edge',
    ],
    [
      'another distro: VERSION_ID',
      { osRelease: { ID: 'opensuse-leap', ID_LIKE: 'suse opensuse', VERSION_ID: '15.6' } },
      '15.6',
    ],
    ['another distro: VERSION_CODENAME', { osRelease: { ID: 'foo', VERSION_CODENAME: 'bar' } }, 'bar'],
  ];
  for (const [what, evidence, release] of cases) {
    it(what, () => assert.equal(releaseFromOsRelease(evidence), release));
  }

  const failures: Array<[string, ReleaseEvidence, RegExp]> = [
    [
      'Debian with no codename anywhere',
      { osRelease: { ID: 'debian', VERSION_ID: '12' } },
      /no usable version field/,
    ],
    ['Ubuntu with no codename', { osRelease: { ID: 'ubuntu', VERSION_ID: '24.04' } }, /ubuntu rules/],
    ['Fedora without VERSION_ID', { osRelease: { ID: 'fedora' } }, /no usable version field/],
    [
      'Arch Linux (rolling, no version)',
      { osRelease: { ID: 'arch', BUILD_ID: 'rolling' } },
      /no usable version field/,
    ],
    [
      'a release that is not a valid component',
      { osRelease: { ID: 'foo', VERSION_ID: 'Version 1' } },
      /"Version 1".*not a valid/,
    ],
  ];
  for (const [what, evidence, message] of failures) {
    it(`fails clearly: ${what}`, () => {
      assert.throws(
        () => releaseFromOsRelease(evidence),
        (e: unknown) =>
          e instanceof PlatformError && e.code === 'PLATFORM_NOT_DETECTED' && message.test(e.message),
      );
    });
  }

  it('releaseFamily: ID first, then ID_LIKE in order', () => {
    assert.equal(releaseFamily({ ID: 'debian' }), 'debian');
    assert.equal(releaseFamily({ ID: 'pop', ID_LIKE: 'ubuntu debian' }), 'ubuntu');
    assert.equal(releaseFamily({ ID: 'ol', ID_LIKE: 'fedora' }), 'rhel');
    assert.equal(releaseFamily({ ID: 'nixos' }), 'other');
  });
});

describe('packageFamily', () => {
  it('gives each distro the package manager of its release family, and none to an unknown distro', () => {
    for (const distro of ['debian', 'ubuntu']) assert.equal(packageFamily(distro), 'dpkg');
    for (const distro of ['fedora', 'rhel', 'centos', 'rocky', 'almalinux', 'ol'])
      assert.equal(packageFamily(distro), 'rpm');
    assert.equal(packageFamily('alpine'), 'apk');
    // A platform's distro is its own ID, never a family's: a derivative is not guessed.
    for (const distro of ['plan9', 'linuxmint', 'other', '']) assert.equal(packageFamily(distro), undefined);
  });
});

describe('parseAptSources', () => {
  it('one-line format: deb lines only, options skipped, comments ignored', () => {
    const text = [
      '# deb http://example.invalid/debian oldstable main',
      'deb http://example.invalid/debian sid main contrib',
      'deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://example.invalid/debian experimental main',
      'deb-src http://example.invalid/debian trixie main',
      '   deb http://example.invalid/debian-security trixie-security main # trailing comment',
      'garbage',
    ].join('\n');
    assert.deepEqual(parseAptSources(text, 'list'), ['sid', 'experimental', 'trixie-security']);
  });

  it('deb822 format: Types must include deb; Enabled: no is skipped', () => {
    const text = [
      'Types: deb deb-src',
      'URIs: http://example.invalid/debian',
      'Suites: trixie trixie-updates',
      'Components: main',
      '',
      '# a comment',
      'Types: deb-src',
      'URIs: http://example.invalid/debian',
      'Suites: oldstable',
      '',
      'Types: deb',
      'Enabled: no',
      'Suites: bookworm',
      '',
      'Types: deb',
      'Suites:',
      ' sid',
      '',
    ].join('\n');
    assert.deepEqual(parseAptSources(text, 'sources'), ['trixie', 'trixie-updates', 'sid']);
  });
});
