import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { VersionError } from '../errors.js';
import { apkVersionScheme } from './apk.js';
import { dpkgVersionScheme } from './dpkg.js';
import { rpmVersionScheme } from './rpm.js';
import * as versions from './index.js';
import {
  DISTRO_VERSION_SCHEMES,
  maxVersion,
  sortVersions,
  versionSchemeFor,
  versionSchemeForDistro,
  versionSchemeNameForDistro,
} from './registry.js';
import { VERSION_SCHEME_NAMES, isVersionSchemeName } from './scheme.js';

function unknownScheme(message: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof VersionError, `expected a VersionError, got ${String(e)}`);
    assert.equal(e.code, 'UNKNOWN_VERSION_SCHEME');
    assert.match(e.message, message);
    return true;
  };
}

describe('version scheme registry', () => {
  it('dpkg is implemented', () => {
    assert.equal(versionSchemeFor('dpkg'), dpkgVersionScheme);
  });

  it('rpm and apk are implemented', () => {
    assert.equal(versionSchemeFor('rpm'), rpmVersionScheme);
    assert.equal(versionSchemeFor('apk'), apkVersionScheme);
    assert.equal(versionSchemeFor('rpm').name, 'rpm');
    assert.equal(versionSchemeFor('apk').name, 'apk');
  });

  it('an unknown scheme name is refused with the list of known ones', () => {
    for (const name of ['deb', 'DPKG', '', 'constructor', '__proto__', 'x'.repeat(1000)]) {
      assert.equal(isVersionSchemeName(name), false);
      assert.throws(
        () => versionSchemeFor(name),
        unknownScheme(/^unknown version scheme ".*" \(known: dpkg, rpm, apk\)$/),
      );
    }
    assert.throws(
      () => versionSchemeFor('x'.repeat(1000)),
      (e: unknown) => (e as Error).message.length < 200,
    );
  });

  it('maps distributions to schemes', () => {
    for (const d of ['debian', 'ubuntu', 'raspbian', 'devuan', 'kali', 'linuxmint', 'Debian']) {
      assert.equal(versionSchemeNameForDistro(d), 'dpkg', d);
      assert.equal(versionSchemeForDistro(d), dpkgVersionScheme, d);
    }
    for (const d of [
      'fedora',
      'rhel',
      'centos',
      'rocky',
      'almalinux',
      'mariner',
      'azurelinux',
      'opensuse',
      'opensuse-leap',
      'sles',
      'amzn',
      'ol',
    ]) {
      assert.equal(versionSchemeNameForDistro(d), 'rpm', d);
      assert.equal(versionSchemeForDistro(d), rpmVersionScheme, d);
    }
    for (const d of ['alpine', 'postmarketos', 'wolfi']) {
      assert.equal(versionSchemeNameForDistro(d), 'apk', d);
      assert.equal(versionSchemeForDistro(d), apkVersionScheme, d);
    }
  });

  it('every distribution maps to a known scheme', () => {
    for (const [distro, scheme] of DISTRO_VERSION_SCHEMES) {
      assert.ok((VERSION_SCHEME_NAMES as readonly string[]).includes(scheme), `${distro} → ${scheme}`);
      assert.equal(distro, distro.toLowerCase());
    }
  });

  it('an unknown distribution gives a clear error', () => {
    for (const d of ['gentoo', '', 'debian/bookworm/amd64', 'toString', '__proto__']) {
      assert.throws(
        () => versionSchemeForDistro(d),
        unknownScheme(
          /^no version scheme is known for distribution ".*" \(known distributions: debian, ubuntu, .*alpine.*\)$/,
        ),
      );
    }
    assert.throws(() => versionSchemeForDistro(undefined as unknown as string), unknownScheme(/"undefined"/));
  });

  it('index.ts re-exports the API', () => {
    assert.equal(versions.versionSchemeFor, versionSchemeFor);
    assert.equal(versions.dpkgVersionScheme, dpkgVersionScheme);
    assert.equal(typeof versions.sortVersions, 'function');
    assert.equal(typeof versions.maxVersion, 'function');
    assert.equal(typeof versions.parseDpkgVersion, 'function');
  });
});

describe('sortVersions and maxVersion', () => {
  const input = [
    '1.0-1',
    '1:0.1',
    '1.0~rc1',
    '1.0',
    '0.9',
    '1.0-0',
    '1.0+dfsg-1',
    '1.0-1~bpo1',
    '1.10',
    '1.9',
  ];
  const sorted = [
    '0.9',
    '1.0~rc1',
    '1.0',
    '1.0-0',
    '1.0-1~bpo1',
    '1.0-1',
    '1.0+dfsg-1',
    '1.9',
    '1.10',
    '1:0.1',
  ];

  it('sorts oldest first, by scheme object or by name, without changing the input', () => {
    const copy = input.slice();
    assert.deepEqual(sortVersions(dpkgVersionScheme, input), sorted);
    assert.deepEqual(sortVersions('dpkg', new Set(input)), sorted);
    assert.deepEqual(input, copy);
  });

  it('keeps the input order of equal versions', () => {
    assert.deepEqual(sortVersions('dpkg', ['1.0-0', '2', '0:1.0', '1.0']), ['1.0-0', '0:1.0', '1.0', '2']);
  });

  it('maxVersion returns the newest, the first of equal newest ones, or undefined', () => {
    assert.equal(maxVersion('dpkg', input), '1:0.1');
    assert.equal(maxVersion(dpkgVersionScheme, ['1.0', '1.0-0', '0:1.0']), '1.0');
    assert.equal(maxVersion('dpkg', ['1.0~rc1']), '1.0~rc1');
    assert.equal(maxVersion('dpkg', []), undefined);
    assert.deepEqual(sortVersions('dpkg', []), []);
  });

  it('throws VersionError for versions that cannot be compared, even alone', () => {
    assert.throws(() => sortVersions('dpkg', ['1.0', '1.0-']), { code: 'INVALID_VERSION' });
    assert.throws(() => sortVersions('dpkg', ['1:']), { code: 'INVALID_VERSION' });
    assert.throws(() => maxVersion('dpkg', ['']), { code: 'INVALID_VERSION' });
    assert.throws(() => maxVersion('dpkg', ['1', '2', ':3']), { code: 'INVALID_VERSION' });
  });

  it('sorts rpm and apk versions by their own rules', () => {
    assert.deepEqual(sortVersions('rpm', ['1.0-1', '1:0.1-1', '1.0~rc1-1', '1.0^git1-1', '1.0-1.fc41']), [
      '1.0~rc1-1',
      '1.0-1',
      '1.0-1.fc41',
      '1.0^git1-1',
      '1:0.1-1',
    ]);
    assert.equal(maxVersion('apk', ['1.0-r1', '1.0_rc1-r0', '1.0_p1-r0', '1.0']), '1.0_p1-r0');
    assert.throws(() => sortVersions('apk', ['1.0', 'x']), { code: 'INVALID_VERSION' });
    assert.throws(() => maxVersion('rpm', ['']), { code: 'INVALID_VERSION' });
  });
});
