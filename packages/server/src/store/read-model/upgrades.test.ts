import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { compareDpkgVersions } from '@sysattest/core';
import { newestChanges, type SeenVersion } from './upgrades.js';

const T1 = '2026-11-01T00:00:00.000Z';
const T2 = '2026-11-10T00:00:00.000Z';
const T3 = '2026-11-20T00:00:00.000Z';

describe('newest-version changes', () => {
  it('follow the newest version from snapshot to snapshot, by dpkg order', () => {
    const versions: SeenVersion[] = [
      { version: '1.0-1', firstSeen: T1, withdrawnAt: T2 },
      { version: '1.0-1+deb12u1', firstSeen: T2, withdrawnAt: T3 },
      { version: '1.0-1+deb12u2', firstSeen: T3, withdrawnAt: null },
    ];
    assert.deepEqual(newestChanges(versions, [T2, T3], compareDpkgVersions), [
      { at: T2, from: '1.0-1', to: '1.0-1+deb12u1' },
      { at: T3, from: '1.0-1+deb12u1', to: '1.0-1+deb12u2' },
    ]);
  });

  it('a new package has no previous version; an older version appearing is no upgrade', () => {
    assert.deepEqual(
      newestChanges([{ version: '2.0-1', firstSeen: T2, withdrawnAt: null }], [T2], compareDpkgVersions),
      [{ at: T2, to: '2.0-1' }],
    );
    const backport: SeenVersion[] = [
      { version: '2.0-1', firstSeen: T1, withdrawnAt: null },
      { version: '1:0.9-1', firstSeen: T1, withdrawnAt: null },
      { version: '1.5-1', firstSeen: T2, withdrawnAt: null },
    ];
    assert.deepEqual(
      newestChanges(backport, [T2], compareDpkgVersions),
      [],
      '1.5-1 < 1:0.9-1 (epoch) is not newest',
    );
  });
});
