/**
 * buildManifest's rules for paths a fresh install does not have, on the observations the hash
 * pool would give: which become `absent`, and the reason each carries (signed, so a client
 * excuses a %ghost path on the manifest's word, not on its own rpm database's).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  manifestSchema,
  type FileObservation,
  type InstalledFile,
  type InstalledPackage,
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
