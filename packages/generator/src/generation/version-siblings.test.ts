/**
 * Which siblings an exact old version needs on apt's command line, on catalog entries and
 * `apt-cache show` text shaped like bookworm's (systemd pins libsystemd0 and libsystemd-shared).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CatalogPackage } from '@sysattest/core';
import {
  aptSpec,
  conflictingSpec,
  isOlderThanOffered,
  parseDependencies,
  parseExactDepends,
  versionLockedSiblings,
} from './version-siblings.js';

const OLD = '252.38-1~deb12u1';
const NEW = '252.39-1~deb12u2';

function entry(name: string, version: string, architecture = 'amd64', source = 'systemd'): CatalogPackage {
  return { name, version, architecture, source: { name: source, version }, size: 1, sha256: '0'.repeat(64) };
}

function catalogOf(...entries: CatalogPackage[]): Map<string, CatalogPackage[]> {
  const out = new Map<string, CatalogPackage[]>();
  for (const e of entries) out.set(e.name, [...(out.get(e.name) ?? []), e]);
  return out;
}

const CATALOG = catalogOf(
  ...[OLD, NEW].flatMap((v) => [
    entry('systemd', v),
    entry('libsystemd0', v),
    entry('libsystemd-shared', v),
    entry('udev', v),
    entry('systemd-timesyncd', v),
  ]),
  entry('libsystemd-dev', OLD),
  entry('hello', '2.10-3', 'amd64', 'hello'),
);

const SHOW = `Package: systemd
Version: ${OLD}
Architecture: amd64
Depends: libacl1 (>= 2.2.23), libsystemd-shared (= ${OLD}), libsystemd0:any (= ${OLD}),
 mount, default-dbus-system-bus | dbus-system-bus, liba (= 1) | libb (= 1)
Pre-Depends: libc6 (>= 2.34)
Description: system and service manager

Package: hello
Version: 2.10-3
Depends: libc6 (>= 2.34)
`;

describe('version-locked siblings', () => {
  it('reads only plain `=` relations from apt-cache show, per name=version', () => {
    const exact = parseExactDepends(SHOW);
    assert.deepEqual(
      [...(exact.get(`systemd=${OLD}`) ?? [])],
      [
        ['libsystemd-shared', OLD],
        ['libsystemd0', OLD],
      ],
    );
    assert.deepEqual([...(exact.get('hello=2.10-3') ?? [])], []);
  });

  it('adds the installed same-source siblings and the `=` dependencies, at the version asked for', () => {
    const siblings = versionLockedSiblings({
      wanted: entry('systemd', OLD),
      exactDepends: parseExactDepends(SHOW).get(`systemd=${OLD}`) ?? new Map(),
      catalog: CATALOG,
      // libsystemd0 and udev are in the image at the newer version; libsystemd-shared is not.
      installed: new Map([
        ['libsystemd0:amd64', NEW],
        ['udev:amd64', NEW],
        ['hello:amd64', '2.10-3'],
      ]),
      nativeArch: 'amd64',
    });
    assert.deepEqual(
      siblings.map((p) => aptSpec(p, 'amd64')),
      [`libsystemd-shared:amd64=${OLD}`, `libsystemd0:amd64=${OLD}`, `udev:amd64=${OLD}`],
    );
  });

  it("follows a sibling's own locks: libnss-systemd pins systemd, which pins libsystemd-shared and libsystemd0", () => {
    const exact = parseExactDepends(SHOW);
    const siblings = versionLockedSiblings({
      wanted: entry('systemd-timesyncd', OLD),
      exactDepends: new Map([['systemd', OLD]]),
      dependsOf: (name, version) => exact.get(`${name}=${version}`),
      catalog: CATALOG,
      // A minimal image: no systemd at all, libsystemd0 newer.
      installed: new Map([['libsystemd0:amd64', NEW]]),
      nativeArch: 'amd64',
    });
    assert.deepEqual(
      siblings.map((p) => aptSpec(p, 'amd64')),
      [`libsystemd-shared:amd64=${OLD}`, `libsystemd0:amd64=${OLD}`, `systemd:amd64=${OLD}`],
    );
  });

  it('an unversioned dependency moves with the wanted version only when it is built from the same source', () => {
    const deps = parseDependencies(`Package: systemd-timesyncd
Version: ${OLD}
Depends: libc6 (>= 2.34), libsystemd-shared (= ${OLD}), systemd, hello
`);
    const siblings = versionLockedSiblings({
      wanted: entry('systemd-timesyncd', OLD),
      exactDepends: deps.get(`systemd-timesyncd=${OLD}`) ?? new Map(),
      dependsOf: (name, version) => parseDependencies(SHOW).get(`${name}=${version}`),
      catalog: CATALOG,
      installed: new Map([['libsystemd0:amd64', NEW]]),
      nativeArch: 'amd64',
    });
    // systemd at the old version (apt's candidate would be the newer one, locked to the newer
    // libsystemd-shared), and what it pins in turn; hello (another source) is apt's business.
    assert.deepEqual(
      siblings.map((p) => aptSpec(p, 'amd64')),
      [`libsystemd-shared:amd64=${OLD}`, `libsystemd0:amd64=${OLD}`, `systemd:amd64=${OLD}`],
    );
  });

  it('leaves out what the image already has at that version, other sources, and the package itself', () => {
    const siblings = versionLockedSiblings({
      wanted: entry('systemd-timesyncd', OLD),
      exactDepends: new Map([
        ['systemd', OLD],
        ['libsystemd0', OLD],
      ]),
      catalog: CATALOG,
      installed: new Map([
        ['libsystemd0:amd64', OLD],
        ['systemd-timesyncd:amd64', NEW],
        ['hello:amd64', '2.10-3'],
      ]),
      nativeArch: 'amd64',
    });
    assert.deepEqual(
      siblings.map((p) => p.name),
      ['systemd'],
    );
  });

  it('ignores an `=` dependency the lists do not offer (apt reports it itself)', () => {
    const siblings = versionLockedSiblings({
      wanted: entry('systemd', OLD),
      exactDepends: new Map([['libsystemd0', '1.0-gone']]),
      catalog: CATALOG,
      installed: new Map(),
      nativeArch: 'amd64',
    });
    assert.deepEqual(siblings, []);
  });

  it('an `all` sibling is matched against the image as `all` and installed under the native arch', () => {
    const catalog = catalogOf(
      entry('tool', '2'),
      entry('tool-data', '2', 'all', 'tool'),
      entry('tool-data', '3', 'all', 'tool'),
    );
    const siblings = versionLockedSiblings({
      wanted: entry('tool', '2', 'amd64', 'tool'),
      exactDepends: new Map(),
      catalog,
      installed: new Map([['tool-data:all', '3']]),
      nativeArch: 'amd64',
    });
    assert.deepEqual(
      siblings.map((p) => aptSpec(p, 'amd64')),
      ['tool-data:amd64=2'],
    );
  });

  it('only versions older than the newest offered need siblings', () => {
    const offered = CATALOG.get('systemd') ?? [];
    assert.equal(isOlderThanOffered(entry('systemd', OLD), offered), true);
    assert.equal(isOlderThanOffered(entry('systemd', NEW), offered), false);
  });

  it('two versions of one package in one batch are a conflict to split; repeats are not', () => {
    assert.equal(
      conflictingSpec([`systemd:amd64=${OLD}`, `libsystemd0:amd64=${OLD}`, `libsystemd0:amd64=${OLD}`]),
      undefined,
    );
    assert.equal(
      conflictingSpec([`libsystemd0:amd64=${OLD}`, 'hello:amd64=2.10-3', `libsystemd0:amd64=${NEW}`]),
      `libsystemd0:amd64 is needed at ${OLD} and at ${NEW}`,
    );
  });
});
