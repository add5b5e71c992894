import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { FetchedRuntime } from './node-runtime.js';

/**
 * better-sqlite3 (the server's SQLite store) built for the packaged runtime. Its npm package
 * carries its C++ sources and SQLite's amalgamation; it is compiled here, on the machine that
 * builds the package, with npm's own node-gyp against the runtime's headers (from the same pinned
 * tarball, so nothing is downloaded), once per (better-sqlite3, runtime) pair, and kept under the
 * cache. The machine that installs the package compiles nothing.
 */
export interface NativeModule {
  /** The package directory, laid out as under node_modules: package.json, lib/, build/Release/*.node. */
  dir: string;
  version: string;
}

const require = createRequire(import.meta.url);

function packageDir(name: string, repoRoot: string): string {
  return path.dirname(require.resolve(`${name}/package.json`, { paths: [repoRoot] }));
}

/** npm's own node-gyp (npm runs it for every native module it builds). */
function nodeGyp(): string {
  const root = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' }).stdout.trim();
  const candidates = [
    path.join(root, 'npm/node_modules/node-gyp/bin/node-gyp.js'),
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  const found = candidates.find((c) => fs.existsSync(c));
  if (found === undefined) throw new Error(`npm's node-gyp not found (looked at ${candidates.join(', ')})`);
  return found;
}

function run(cmd: string, args: string[], cwd: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${(r.stderr || r.stdout || r.error?.message || '').slice(-4000)}`);
}

export function buildBetterSqlite3(repoRoot: string, runtime: FetchedRuntime, cacheDir: string): NativeModule {
  const src = packageDir('better-sqlite3', repoRoot);
  const { version } = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { version: string };
  const dir = path.resolve(cacheDir, `better-sqlite3-${version}-node-${runtime.version}`);
  const addon = path.join(dir, 'build/Release/better_sqlite3.node');
  if (fs.existsSync(addon)) return { dir, version };
  const staging = `${dir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  try {
    fs.cpSync(src, staging, { recursive: true, filter: (f) => path.relative(src, f) !== 'build' });
    run(
      process.execPath,
      [nodeGyp(), 'rebuild', '--release', `--nodedir=${path.resolve(runtime.dir)}`, '--jobs=2'],
      staging,
    );
    // Loaded by the runtime it was built for: the ABI is right and SQLite answers.
    run(runtime.node, ['-e', `new (require(${JSON.stringify(staging)}))(':memory:').prepare('select 1').get()`], staging);
    // Only what is loaded at run time: the JavaScript, the addon.
    const built = path.join(staging, 'build/Release/better_sqlite3.node');
    const keep = path.join(staging, 'better_sqlite3.node');
    fs.renameSync(built, keep);
    for (const f of ['build', 'deps', 'src', 'binding.gyp']) fs.rmSync(path.join(staging, f), { recursive: true, force: true });
    fs.mkdirSync(path.join(staging, 'build/Release'), { recursive: true });
    fs.renameSync(keep, path.join(staging, 'build/Release/better_sqlite3.node'));
  } catch (e) {
    fs.rmSync(staging, { recursive: true, force: true });
    throw e;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(staging, dir);
  return { dir, version };
}

/** The pure-JavaScript packages better-sqlite3 loads its addon with. */
export const BETTER_SQLITE3_HELPERS = ['bindings', 'file-uri-to-path'] as const;

/** Copies a package's files (not its README, types or nested node_modules) to `to`. */
export function copyPackage(from: string, to: string): string[] {
  const files: string[] = [];
  for (const e of fs.readdirSync(from, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const rel = path.relative(from, path.join(e.parentPath, e.name));
    if (rel.startsWith('node_modules') || /(^|\/)README|\.d\.ts$|\.md$/i.test(rel)) continue;
    fs.mkdirSync(path.join(to, path.dirname(rel)), { recursive: true });
    fs.copyFileSync(path.join(from, rel), path.join(to, rel));
    files.push(rel);
  }
  return files;
}

export { packageDir };
