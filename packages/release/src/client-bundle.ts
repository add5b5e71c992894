import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { build } from 'esbuild';

/**
 * The client as the Debian package installs it: one ES module file per thread entry point
 * (`sysattest.js`, and `hash-worker.js`, which core's hash pool starts from beside its own
 * module), with every JavaScript dependency inside, plus the one native module it needs,
 * @napi-rs/xattr, whose prebuilt N-API binary for linux-x64 glibc works on any Node release.
 * better-sqlite3 is left out: the packaged runtime (Node 24) reads rpm databases with node:sqlite.
 */
export interface BundleLayout {
  /** The files written, relative to the output directory. */
  files: string[];
}

const require = createRequire(import.meta.url);

/** The native packages copied beside the bundle, as `node_modules/<name>`. */
const NATIVE_PACKAGES = ['@napi-rs/xattr', '@napi-rs/xattr-linux-x64-gnu'] as const;

/** A module of a workspace package's test kits or benches, by real path or package name. */
const TEST_SUPPORT = /(^|\/)(packages|@sysattest)\/[^/]+\/dist\/(testkit|bench)\//;

/**
 * Test kits and benches (`dist/testkit/`, `dist/bench/` of any package) never ship: production
 * code does not import them (the import rule in eslint.config.js), and a bundle that reached one
 * anyway is refused here rather than installed on users' machines.
 */
export function refuseTestSupport(inputs: readonly string[]): void {
  const support = inputs.filter((f) => TEST_SUPPORT.test(f));
  if (support.length > 0) throw new Error(`the client bundle would ship test support: ${support.join(', ')}`);
}

/** Bundles the built client (`packages/client/dist`) into `outDir`. */
export async function bundleClient(repoRoot: string, outDir: string): Promise<BundleLayout> {
  fs.mkdirSync(outDir, { recursive: true });
  const { metafile } = await build({
    entryPoints: {
      sysattest: path.join(repoRoot, 'packages/client/bin/sysattest.js'),
      'hash-worker': path.join(repoRoot, 'packages/core/dist/fs/hash-worker.js'),
    },
    outdir: outDir,
    bundle: true,
    platform: 'node',
    target: 'node24',
    format: 'esm',
    external: ['@napi-rs/xattr', 'better-sqlite3'],
    // CommonJS dependencies (commander) call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __sysattestRequire } from 'node:module'; const require = __sysattestRequire(import.meta.url);",
    },
    legalComments: 'linked',
    logLevel: 'warning',
    metafile: true,
  });
  refuseTestSupport(Object.keys(metafile.inputs));
  // The bundle is ES modules under a .js name.
  fs.writeFileSync(path.join(outDir, 'package.json'), '{ "type": "module", "private": true }\n');
  const files = ['sysattest.js', 'hash-worker.js', 'package.json'];
  for (const name of ['sysattest.js.LEGAL.txt', 'hash-worker.js.LEGAL.txt'])
    if (fs.existsSync(path.join(outDir, name))) files.push(name);
  for (const name of NATIVE_PACKAGES) {
    const from = path.dirname(require.resolve(`${name}/package.json`, { paths: [repoRoot] }));
    const to = path.join(outDir, 'node_modules', name);
    fs.mkdirSync(to, { recursive: true });
    for (const f of fs.readdirSync(from)) {
      if (f === 'README.md' || f.endsWith('.d.ts')) continue;
      fs.copyFileSync(path.join(from, f), path.join(to, f));
      files.push(path.join('node_modules', name, f));
    }
  }
  return { files };
}
