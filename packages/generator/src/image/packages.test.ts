import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { diffPackages, formatChange, packageListCommand, parsePackageList } from './packages.js';

describe('package lists', () => {
  it('parses dpkg-query output, keeping installed packages only', () => {
    const out = [
      'installed\tlibc6\tamd64\t2.36-9+deb12u10',
      'installed\tbase-files\tamd64\t12.4+deb12u11',
      'config-files\told-package\tamd64\t1.0-1',
      'installed\tlibc6\ti386\t2.36-9+deb12u10',
      'not-installed\tghost\tamd64\t',
      '',
    ].join('\n');
    assert.deepEqual(parsePackageList('dpkg', out), [
      { name: 'base-files', arch: 'amd64', version: '12.4+deb12u11' },
      { name: 'libc6', arch: 'amd64', version: '2.36-9+deb12u10' },
      { name: 'libc6', arch: 'i386', version: '2.36-9+deb12u10' },
    ]);
    assert.equal(packageListCommand('dpkg')[0], 'dpkg-query');
  });

  it('parses rpm and apk listings', () => {
    const rpm = [
      'bash\tx86_64\t5.2.26-3.fc41',
      'gpg-pubkey\t(none)\t0:e99d6ad1-64d2612c',
      'shadow-utils\tx86_64\t2:4.15.1-12.fc41',
    ].join('\n');
    assert.deepEqual(parsePackageList('rpm', rpm), [
      { name: 'bash', arch: 'x86_64', version: '5.2.26-3.fc41' },
      { name: 'shadow-utils', arch: 'x86_64', version: '2:4.15.1-12.fc41' },
    ]);
    const apk = [
      'WARNING: opening foo: No such file',
      'musl-1.2.5-r0',
      'ca-certificates-bundle-20240705-r0',
    ].join('\n');
    assert.deepEqual(parsePackageList('apk', apk, 'x86_64'), [
      { name: 'ca-certificates-bundle', arch: 'x86_64', version: '20240705-r0' },
      { name: 'musl', arch: 'x86_64', version: '1.2.5-r0' },
    ]);
  });

  it('diffs two lists into added, removed and changed packages', () => {
    const before = [
      { name: 'a', arch: 'amd64', version: '1' },
      { name: 'b', arch: 'amd64', version: '1' },
      { name: 'c', arch: 'amd64', version: '1' },
    ];
    const after = [
      { name: 'a', arch: 'amd64', version: '1' },
      { name: 'b', arch: 'amd64', version: '2' },
      { name: 'd', arch: 'all', version: '1' },
    ];
    const changes = diffPackages(before, after);
    assert.deepEqual(changes, [
      { name: 'b', arch: 'amd64', from: '1', to: '2' },
      { name: 'c', arch: 'amd64', from: '1', to: null },
      { name: 'd', arch: 'all', from: null, to: '1' },
    ]);
    assert.deepEqual(diffPackages(before, before), []);
    assert.deepEqual(changes.map(formatChange), ['  b:amd64 1 → 2', '- c:amd64 1', '+ d:all 1']);
  });
});
