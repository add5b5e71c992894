/**
 * One version (core's version.ts): every package.json and the dependencies between the
 * workspaces carry it, CHANGELOG.md's newest entry is it, each program prints it, and the
 * generator signs it into its manifests.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSATTEST_VERSION } from '@sysattest/core';
import { GENERATOR_VERSION } from '@sysattest/generator/dist/version.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

interface PackageJson {
  name: string;
  version: string;
  workspaces?: string[];
  [deps: string]: unknown;
}

const read = (file: string): PackageJson => JSON.parse(fs.readFileSync(path.join(repoRoot, file), 'utf8'));

describe('one version', () => {
  it('every package.json, and every dependency on a workspace, is at SYSATTEST_VERSION', () => {
    const root = read('package.json');
    assert.equal(root.version, SYSATTEST_VERSION, 'package.json');
    for (const ws of root.workspaces ?? []) {
      const pkg = read(`${ws}/package.json`);
      assert.equal(pkg.version, SYSATTEST_VERSION, `${ws}/package.json`);
      for (const kind of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
        for (const [name, range] of Object.entries((pkg[kind] ?? {}) as Record<string, string>))
          if (name.startsWith('@sysattest/'))
            assert.equal(range, SYSATTEST_VERSION, `${ws}: ${kind} ${name}`);
      }
    }
    const lock = read('package-lock.json') as PackageJson & {
      packages: Record<string, { version?: string }>;
    };
    for (const ws of root.workspaces ?? [])
      assert.equal(lock.packages[ws]?.version, SYSATTEST_VERSION, `lock: ${ws}`);
  });

  it("CHANGELOG.md's newest entry is this version", () => {
    const changelog = fs.readFileSync(path.join(repoRoot, 'CHANGELOG.md'), 'utf8');
    assert.equal(/^## (\S+)/m.exec(changelog)?.[1], SYSATTEST_VERSION);
  });

  it('all three programs print it, and the generator signs it into manifests', () => {
    assert.equal(GENERATOR_VERSION, SYSATTEST_VERSION);
    for (const bin of [
      'packages/client/bin/sysattest.js',
      'packages/server/bin/sysattest-server.js',
      'packages/generator/bin/sysattest-generator.js',
    ]) {
      const r = spawnSync(process.execPath, [path.join(repoRoot, bin), '--version'], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), SYSATTEST_VERSION, bin);
    }
  });
});
