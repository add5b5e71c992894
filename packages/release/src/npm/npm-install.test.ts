/**
 * The npm tarballs: `npm pack` of core, dashboard, client, server and generator, installed
 * together with `npm install -g` into a temporary prefix (the @sysattest packages are not on a
 * registry here, so all five tarballs are given to one install), then each program's
 * `--version`, and the client on this machine's root.
 *
 * `--ignore-scripts`: the only install script among the dependencies is better-sqlite3's
 * compile (minutes on this machine), needed by the server's SQLite store and by the client on
 * Node 20 for rpm databases only; none of what is run here loads it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SYSATTEST_VERSION } from '@sysattest/core';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const PACKAGES = ['core', 'dashboard', 'client', 'server', 'generator'] as const;
const PROGRAMS = { client: 'sysattest', server: 'sysattest-server', generator: 'sysattest-generator' };

function run(cmd: string, args: string[], cwd = repoRoot): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

describe('npm pack and npm install -g', { timeout: 10 * 60_000 }, () => {
  let dir: string;
  const tarballs = new Map<string, { file: string; files: string[] }>();

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-npm-'));
    for (const name of PACKAGES) {
      const [packed] = JSON.parse(
        run('npm', ['pack', `./packages/${name}`, '--pack-destination', dir, '--json', '--silent']),
      ) as { filename: string; files: { path: string }[] }[];
      assert.ok(packed);
      tarballs.set(name, { file: path.join(dir, packed.filename), files: packed.files.map((f) => f.path) });
    }
  });

  after(() => {
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('each tarball holds its built code and bin, not the tests, test kits or benches, and is publishable', () => {
    for (const name of PACKAGES) {
      const { file, files } = tarballs.get(name) as { file: string; files: string[] };
      assert.match(path.basename(file), new RegExp(`^sysattest-${name}-${SYSATTEST_VERSION}\\.tgz$`));
      assert.ok(
        files.includes('dist/index.js') || files.includes('dist/cli.js'),
        `${name}: ${files.slice(0, 5)}`,
      );
      assert.ok(!files.some((f) => /\.test\.(js|d\.ts)$/.test(f)), `${name} ships no test files`);
      const support = files.filter((f) => /^dist\/(testkit|bench)\//.test(f));
      assert.deepEqual(support, [], `${name} ships no test kits or benches`);
      assert.ok(!files.some((f) => f.startsWith('src/')), `${name} ships no sources`);
      const manifest = JSON.parse(
        fs.readFileSync(path.join(repoRoot, `packages/${name}/package.json`), 'utf8'),
      );
      assert.equal(manifest.private, undefined, `${name} is not private`);
      assert.equal(manifest.version, SYSATTEST_VERSION);
    }
    for (const [name, program] of Object.entries(PROGRAMS))
      assert.ok(tarballs.get(name)?.files.includes(`bin/${program}.js`), `${name} ships bin/${program}.js`);
  });

  it('installs into a prefix and every program runs', () => {
    const prefix = path.join(dir, 'prefix');
    run('npm', [
      'install',
      '--global',
      '--prefix',
      prefix,
      '--ignore-scripts',
      '--prefer-offline',
      '--no-audit',
      '--no-fund',
      ...PACKAGES.map((n) => tarballs.get(n)?.file as string),
    ]);
    for (const program of Object.values(PROGRAMS)) {
      const bin = path.join(prefix, 'bin', program);
      assert.equal(run(bin, ['--version']).trim(), SYSATTEST_VERSION, program);
    }
    // Beyond --version: the client reads this machine's platform with core's readers.
    assert.match(
      run(path.join(prefix, 'bin/sysattest'), ['platform', '--root', '/']),
      /^[a-z]+\/[^/\s]+\/[^/\s]+\n/,
    );
  });
});
