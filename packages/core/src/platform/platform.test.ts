import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PlatformError } from '../errors.js';
import { formatPlatform, isValidPlatformId, parsePlatform, validatePlatform } from './index.js';

describe('parsePlatform / formatPlatform', () => {
  const valid: Array<[string, [string, string, string]]> = [
    ['debian/bookworm/amd64', ['debian', 'bookworm', 'amd64']],
    ['debian/bookworm/all', ['debian', 'bookworm', 'all']],
    ['debian/sid/i386', ['debian', 'sid', 'i386']],
    ['ubuntu/noble/arm64', ['ubuntu', 'noble', 'arm64']],
    ['fedora/41/x86_64', ['fedora', '41', 'x86_64']],
    ['rhel/9/aarch64', ['rhel', '9', 'aarch64']],
    ['alpine/3.20/x86_64', ['alpine', '3.20', 'x86_64']],
    ['opensuse-leap/15.6/noarch', ['opensuse-leap', '15.6', 'noarch']],
    ['kali/kali-rolling/amd64', ['kali', 'kali-rolling', 'amd64']],
    ['a/1/c+d', ['a', '1', 'c+d']],
    [
      `${'d'.repeat(64)}/${'r'.repeat(64)}/${'a'.repeat(64)}`,
      ['d'.repeat(64), 'r'.repeat(64), 'a'.repeat(64)],
    ],
  ];
  for (const [id, [distro, release, arch]] of valid) {
    it(`accepts ${id.length > 40 ? 'the longest components' : id}`, () => {
      assert.deepEqual(parsePlatform(id), { distro, release, arch });
      assert.equal(formatPlatform({ distro, release, arch }), id);
      assert.equal(isValidPlatformId(id), true);
    });
  }

  // [id, what the message must name]
  const invalid: Array<[string, RegExp]> = [
    ['', /three parts/],
    ['debian', /three parts.*got 1/],
    ['debian/bookworm', /three parts.*got 2/],
    ['debian/bookworm/amd64/extra', /three parts.*got 4/],
    ['Debian/bookworm/amd64', /the distro "Debian"/],
    ['debian//amd64', /the release "" is empty/],
    ['debian/bookworm/', /the arch "" is empty/],
    ['debian/bookworm/AMD64', /the arch "AMD64"/],
    ['debian/book worm/amd64', /the release "book worm"/],
    ['-debian/bookworm/amd64', /the distro "-debian"/],
    ['debian/.hidden/amd64', /the release ".hidden"/],
    ['debian/../amd64', /the release ".."/],
    ['debian/bookworm/amd64\n', /the arch "amd64\\n"/],
    ['debian\\bookworm\\amd64', /three parts/],
    [`${'d'.repeat(65)}/bookworm/amd64`, /the distro .* longer than 64/],
    ['debian/bookworm/amd64'.repeat(20), /too long/],
    ['débian/bookworm/amd64', /the distro "débian"/],
  ];
  for (const [id, message] of invalid) {
    it(`refuses ${JSON.stringify(id.length > 40 ? `${id.slice(0, 40)}…` : id)}`, () => {
      assert.throws(
        () => parsePlatform(id),
        (e: unknown) =>
          e instanceof PlatformError && e.code === 'INVALID_PLATFORM' && message.test(e.message),
      );
      assert.equal(isValidPlatformId(id), false);
    });
  }

  it('formatPlatform and validatePlatform refuse a platform that would not parse back', () => {
    for (const p of [
      { distro: 'debian', release: 'bookworm/x', arch: 'amd64' },
      { distro: 'debian', release: 'bookworm', arch: '' },
      { distro: 'Debian', release: 'bookworm', arch: 'amd64' },
    ]) {
      assert.throws(() => formatPlatform(p), { code: 'INVALID_PLATFORM' });
      assert.throws(() => validatePlatform(p), { code: 'INVALID_PLATFORM' });
    }
  });

  it('refuses values that are not strings', () => {
    assert.throws(() => parsePlatform(42 as unknown as string), { code: 'INVALID_PLATFORM' });
    assert.throws(
      () => formatPlatform({ distro: 'debian', release: 12, arch: 'amd64' } as unknown as never),
      {
        code: 'INVALID_PLATFORM',
        message: /the release is not a string/,
      },
    );
  });
});
