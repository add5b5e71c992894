/**
 * buildManifest's rules for paths a fresh install does not have, on the observations the hash
 * pool would give: which become `absent`, and the reason each carries (signed, so a client
 * excuses a %ghost path on the manifest's word, not on its own rpm database's); and which dpkg
 * diversions a manifest declares (only its own package's, so a client honours no other).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  manifestSchema,
  type Diversion,
  type FileObservation,
  type InstalledFile,
  type InstalledPackage,
  type Manifest,
  type ManifestEntry,
} from '@sysattest/core';
import { buildManifest } from './manifest-builder.js';

function fileObservation(path: string, content: string): FileObservation {
  return {
    status: 'ok',
    type: 'file',
    path,
    resolvedPath: path,
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: content.length,
    mtimeMs: 0,
    nlink: 1,
    dev: 1,
    ino: path.length,
    sha256: 'a'.repeat(64),
  };
}

/** The manifest of one package whose files are `files`; `onDisk` lists the paths that exist. */
function build(files: InstalledFile[], onDisk: string[]): ManifestEntry[] {
  const pkg: InstalledPackage = {
    name: 't',
    version: '1.0-1.fc41',
    architecture: 'x86_64',
    source: { name: 't', version: '1.0-1.fc41' },
    status: 'installed',
    files,
  };
  const { manifest } = buildManifest(pkg, {
    distroRelease: 'fedora/41',
    provenance: {
      generatedAt: '2026-11-25T12:00:00Z',
      generator: { name: 'sysattest-generator', version: '0.1.0' },
      keyFingerprint: 'A'.repeat(40),
      image: { id: 'e'.repeat(64) },
      installer: 'rpm 4.18.2',
    },
    accounts: { users: new Map([[0, 'root']]), groups: new Map([[0, 'root']]) },
    divertedLocation: (p) => p,
    observation: (p) => (onDisk.includes(p) ? fileObservation(p, 'x') : { status: 'missing', path: p }),
  });
  // What the generator signs must be a valid manifest.
  manifestSchema.parse(manifest);
  return manifest.entries;
}

describe('buildManifest: absent paths and why', () => {
  it('a %ghost is absent with reason ghost, whether or not the install made it', () => {
    const entries = build(
      [
        { path: '/var/log/t.log', ghost: true },
        { path: '/var/lib/t/made-by-scriptlet', ghost: true },
      ],
      ['/var/lib/t/made-by-scriptlet'],
    );
    assert.deepEqual(entries, [
      { type: 'absent', path: '/var/lib/t/made-by-scriptlet', reason: 'ghost' },
      { type: 'absent', path: '/var/log/t.log', reason: 'ghost' },
    ]);
  });

  it('a %config %ghost keeps both flags', () => {
    assert.deepEqual(build([{ path: '/etc/t.conf', ghost: true, conffile: true }], []), [
      { type: 'absent', path: '/etc/t.conf', conffile: true, reason: 'ghost' },
    ]);
  });

  it('a file rpm left out by design is absent with reason not-installed', () => {
    assert.deepEqual(build([{ path: '/usr/share/doc/t/README', notInstalled: true }], []), [
      { type: 'absent', path: '/usr/share/doc/t/README', reason: 'not-installed' },
    ]);
  });

  it('a shipped file the install removed is absent with no reason (a client flags it if it appears)', () => {
    const entries = build(
      [{ path: '/usr/bin/t' }, { path: '/usr/lib/t/removed-by-postinst' }],
      ['/usr/bin/t'],
    );
    assert.deepEqual(
      entries.map((e) => [e.path, e.type, e.type === 'absent' ? e.reason : undefined]),
      [
        ['/usr/bin/t', 'file', undefined],
        ['/usr/lib/t/removed-by-postinst', 'absent', undefined],
      ],
    );
    assert.equal('reason' in (entries[1] as object), false);
  });

  it('a config file (rpm %config, or apk under a protected path) is a file entry with conffile', () => {
    const entries = build([{ path: '/etc/t.conf', conffile: true }], ['/etc/t.conf']);
    assert.equal(entries[0]?.type, 'file');
    assert.equal(entries[0]?.conffile, true);
  });
});

describe('buildManifest: the dpkg diversions a package makes', () => {
  // The container's diversions file after the install, in dpkg's order (not sorted): dash's two
  // (as Debian bookworm's dash makes them), another package's, and a local one by the admin.
  const DATABASE: Diversion[] = [
    { from: '/usr/share/man/man1/sh.1.gz', to: '/usr/share/man/man1/sh.distrib.1.gz', by: 'dash' },
    { from: '/usr/bin/t-tool', to: '/usr/bin/t-tool.real', by: 'other' },
    { from: '/bin/sh', to: '/bin/sh.distrib', by: 'dash' },
    { from: '/usr/bin/local', to: '/usr/bin/local.orig', by: ':' },
  ];

  /** The manifest of Debian package `name` shipping `paths`, with `diversions` in the database. */
  function buildDebian(name: string, paths: string[], diversions?: Diversion[]): Manifest {
    const pkg: InstalledPackage = {
      name,
      version: '1-1',
      architecture: 'amd64',
      source: { name, version: '1-1' },
      status: 'installed',
      files: paths.map((path) => ({ path })),
    };
    // dpkg's rule (dpkg-divert(1)): another package's file at a diverted path lives at `to`.
    const divertedLocation = (p: string, pkgName: string): string => {
      const d = diversions?.find((x) => x.from === p);
      return d === undefined || d.by === pkgName ? p : d.to;
    };
    const { manifest } = buildManifest(pkg, {
      distroRelease: 'debian/bookworm',
      provenance: {
        generatedAt: '2026-11-25T12:00:00Z',
        generator: { name: 'sysattest-generator', version: '0.3.0' },
        keyFingerprint: 'A'.repeat(40),
        image: { id: 'e'.repeat(64) },
        installer: 'apt 2.6.1',
      },
      accounts: { users: new Map([[0, 'root']]), groups: new Map([[0, 'root']]) },
      divertedLocation,
      ...(diversions === undefined ? {} : { diversions }),
      observation: (p) => fileObservation(p, 'x'),
    });
    manifestSchema.parse(manifest);
    return manifest;
  }

  it("the package's own diversions, sorted by from, without the diverting package", () => {
    const m = buildDebian('dash', ['/bin/dash', '/usr/share/man/man1/dash.1.gz'], DATABASE);
    assert.deepEqual(m.diversions, [
      { from: '/bin/sh', to: '/bin/sh.distrib' },
      { from: '/usr/share/man/man1/sh.1.gz', to: '/usr/share/man/man1/sh.distrib.1.gz' },
    ]);
  });

  it("another package's or a local diversion is never in a manifest's diversions", () => {
    const m = buildDebian('other', ['/usr/bin/t-tool'], DATABASE);
    assert.deepEqual(m.diversions, [{ from: '/usr/bin/t-tool', to: '/usr/bin/t-tool.real' }]);
    // The local diversion's `:` names no package; the package shipping the path does not make it.
    const local = buildDebian('local', ['/usr/bin/local'], DATABASE);
    assert.equal('diversions' in local, false);
    assert.equal((local.entries[0] as { divertedTo?: string }).divertedTo, '/usr/bin/local.orig');
  });

  it('a package that diverts nothing has no diversions field; its diverted files keep divertedTo', () => {
    const m = buildDebian('bash', ['/bin/bash', '/usr/share/man/man1/sh.1.gz'], DATABASE);
    assert.equal('diversions' in m, false);
    assert.deepEqual(
      m.entries.map((e) => [e.path, e.type === 'absent' ? undefined : e.divertedTo]),
      [
        ['/bin/bash', undefined],
        ['/usr/share/man/man1/sh.1.gz', '/usr/share/man/man1/sh.distrib.1.gz'],
      ],
    );
  });

  it('no diversions given (rpm, apk) means no field', () => {
    assert.equal('diversions' in buildDebian('dash', ['/bin/dash']), false);
    assert.equal('diversions' in buildDebian('dash', ['/bin/dash'], []), false);
  });
});
