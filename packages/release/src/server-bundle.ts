import * as fs from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import type { FetchedRuntime } from './node-runtime.js';
import { BETTER_SQLITE3_HELPERS, buildBetterSqlite3, copyPackage, packageDir } from './native-modules.js';

/**
 * The service as the server's Debian package installs it: `sysattest-server.js` and
 * `sysattest-generator.js` (the worker is the generator's `work` command), ES modules with every
 * JavaScript dependency inside and their shared code in chunks beside them, `hash-worker.js` (core's
 * hash pool starts it from beside its own module), and the native modules under node_modules:
 * better-sqlite3 compiled for the packaged runtime (native-modules.ts) and @napi-rs/xattr's
 * prebuilt N-API binary. The dashboard reads its assets from `../assets/` beside the bundle
 * directory (packages/dashboard's layout), so they go there.
 */
export interface ServerBundle {
  /** Files written under the app directory, relative to it. */
  files: string[];
  /** Files written under the assets directory, relative to it. */
  assets: string[];
  betterSqlite3: string;
}

const NATIVE_EXTERNALS = ['better-sqlite3', '@napi-rs/xattr'];

export async function bundleServer(
  repoRoot: string,
  runtime: FetchedRuntime,
  appDir: string,
  assetsDir: string,
  cacheDir: string,
): Promise<ServerBundle> {
  fs.mkdirSync(appDir, { recursive: true });
  await build({
    entryPoints: {
      'sysattest-server': path.join(repoRoot, 'packages/server/bin/sysattest-server.js'),
      'sysattest-generator': path.join(repoRoot, 'packages/generator/bin/sysattest-generator.js'),
      'hash-worker': path.join(repoRoot, 'packages/core/dist/fs/hash-worker.js'),
    },
    outdir: appDir,
    bundle: true,
    splitting: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    // pg-native: pg's optional libpq binding, never used (pg's JavaScript client is).
    external: [...NATIVE_EXTERNALS, 'pg-native'],
    // CommonJS dependencies (fastify, pino, commander…) call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __sysattestRequire } from 'node:module'; const require = __sysattestRequire(import.meta.url);",
    },
    legalComments: 'linked',
    logLevel: 'error',
  });
  fs.writeFileSync(path.join(appDir, 'package.json'), '{ "type": "module", "private": true }\n');
  const files = fs.readdirSync(appDir);

  const sqlite = buildBetterSqlite3(repoRoot, runtime, cacheDir);
  const modules: [string, string][] = [
    ['better-sqlite3', sqlite.dir],
    ...BETTER_SQLITE3_HELPERS.map((n): [string, string] => [n, packageDir(n, repoRoot)]),
    ['@napi-rs/xattr', packageDir('@napi-rs/xattr', repoRoot)],
    ['@napi-rs/xattr-linux-x64-gnu', packageDir('@napi-rs/xattr-linux-x64-gnu', repoRoot)],
  ];
  for (const [name, from] of modules) {
    for (const f of copyPackage(from, path.join(appDir, 'node_modules', name)))
      files.push(path.join('node_modules', name, f));
  }

  fs.mkdirSync(assetsDir, { recursive: true });
  const assetsFrom = path.join(repoRoot, 'packages/dashboard/assets');
  const assets = fs.readdirSync(assetsFrom);
  for (const a of assets) fs.copyFileSync(path.join(assetsFrom, a), path.join(assetsDir, a));
  return { files, assets, betterSqlite3: sqlite.version };
}
