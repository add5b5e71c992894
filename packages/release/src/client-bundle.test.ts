import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { refuseTestSupport } from './client-bundle.js';

describe('the client bundle leaves test support out', () => {
  it('refuses an input from a test kit or a bench of any package, by path or package name', () => {
    for (const input of [
      'packages/client/dist/testkit/e2e.js',
      'packages/core/dist/bench/lower-bound-worker.js',
      'node_modules/@sysattest/generator/dist/testkit/families.js',
      '../sysattest/packages/server/dist/testkit/store.js',
    ])
      assert.throws(() => refuseTestSupport(['packages/core/dist/index.js', input]), /would ship test support: .*/);
  });

  it('accepts production modules, including ones whose names merely mention a kit or a bench', () => {
    assert.doesNotThrow(() =>
      refuseTestSupport([
        'packages/core/dist/fs/hash-worker.js',
        'packages/client/dist/verify/verify-machine.js',
        'packages/generator/dist/testkit.js',
        'node_modules/commander/lib/bench/x.js',
      ]),
    );
  });
});
