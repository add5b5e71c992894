import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SYSATTEST_VERSION } from '@sysattest/core';
import type { FetchedRuntime } from '../node-runtime.js';

/**
 * What every sysattest .deb is made of, declared once: a staging tree in a temporary directory,
 * the pinned Node runtime, the documentation and copyright, the control area (control, conffiles,
 * maintainer scripts) and `dpkg-deb --build`. The client's and the server's builders
 * (build-deb.ts, build-server-deb.ts) only say what goes into their tree.
 */

export interface BuiltDeb {
  file: string;
  bytes: number;
  installedSizeKiB: number;
  /** `dpkg-deb --contents`, one line per path. */
  contents: string[];
}

export interface BuildDebOptions {
  /** The repository, built (`tsc --build`). */
  repoRoot: string;
  /** Where the .deb goes (`release/`). */
  outDir: string;
  /** Where the fetched runtime is kept between builds (default `<outDir>/cache`). */
  cacheDir?: string;
  /** dpkg-deb's xz level (default 6, dpkg's own; tests use a faster one). */
  compressLevel?: number;
}

/** One package's control area, from its pure description (client-package.ts, server-package.ts). */
export interface ControlArea {
  /** DEBIAN/control for the tree's installed size. */
  control: (installedSizeKiB: number) => string;
  conffiles: string;
  maintainerScripts: Record<string, string>;
}

export function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export function put(root: string, inPackage: string, data: string | Buffer, mode: number): void {
  const file = path.join(root, inPackage);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(file, data);
  fs.chmodSync(file, mode);
}

/** Sum of the regular files' sizes, each rounded up to 1 KiB, as dpkg-gencontrol counts. */
export function installedSizeKiB(dir: string): number {
  let kib = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.parentPath.includes(`${path.sep}DEBIAN`) || entry.name === 'DEBIAN') continue;
    const st = fs.lstatSync(path.join(entry.parentPath, entry.name));
    kib += st.isFile() ? Math.ceil(st.size / 1024) : 1;
  }
  return kib;
}

/** Refuses to build anywhere but amd64: the pinned runtime and native modules are amd64's. */
export function requireAmd64(what: string): void {
  if (os.arch() !== 'x64') throw new Error(`the ${what} package is built for amd64 only (this is ${os.arch()})`);
}

/** Fills a staging tree with `fill`, then builds `<outDir>/<name>_<version>_amd64.deb` from it. */
export async function buildDeb(
  name: string,
  options: BuildDebOptions,
  fill: (root: string) => Promise<ControlArea>,
): Promise<BuiltDeb> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-deb-`));
  try {
    fs.chmodSync(root, 0o755);
    const area = await fill(root);
    // Every directory 0755, as dpkg expects of a package's own directories.
    for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true }))
      if (e.isDirectory()) fs.chmodSync(path.join(e.parentPath, e.name), 0o755);
    const size = installedSizeKiB(root);
    put(root, 'DEBIAN/control', area.control(size), 0o644);
    put(root, 'DEBIAN/conffiles', area.conffiles, 0o644);
    for (const [script, text] of Object.entries(area.maintainerScripts)) put(root, `DEBIAN/${script}`, text, 0o755);
    fs.chmodSync(path.join(root, 'DEBIAN'), 0o755);

    fs.mkdirSync(options.outDir, { recursive: true });
    const file = path.join(options.outDir, `${name}_${SYSATTEST_VERSION}_amd64.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', `-z${options.compressLevel ?? 6}`, '--build', root, file]);
    const contents = run('dpkg-deb', ['--contents', file]).trim().split('\n');
    return { file, bytes: fs.statSync(file).size, installedSizeKiB: size, contents };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** The pinned runtime as `<libDir>/node`. */
export function putRuntime(root: string, libDir: string, runtime: FetchedRuntime): void {
  fs.mkdirSync(path.join(root, libDir), { recursive: true });
  fs.copyFileSync(runtime.node, path.join(root, libDir, 'node'));
  fs.chmodSync(path.join(root, libDir, 'node'), 0o755);
}

/** README.md and CHANGELOG.md under /usr/share/doc/<name>; returns that directory. */
export function putDocs(root: string, repoRoot: string, name: string): string {
  const doc = `/usr/share/doc/${name}`;
  put(root, `${doc}/README.md`, fs.readFileSync(path.join(repoRoot, 'README.md')), 0o644);
  put(root, `${doc}/CHANGELOG.md`, fs.readFileSync(path.join(repoRoot, 'CHANGELOG.md')), 0o644);
  return doc;
}

/** Files of the repository's `deploy/` directory, each at `<dir>/<name>`. */
export function putDeployFiles(root: string, repoRoot: string, dir: string, names: readonly string[]): void {
  for (const n of names) put(root, path.join(dir, n), fs.readFileSync(path.join(repoRoot, 'deploy', n)), 0o644);
}

export interface CopyrightParts {
  /** Where the bundle is installed. */
  appDir: string;
  /** The bundle's License field and the lines (without indent) saying what it holds. */
  appLicense: string;
  appText: string[];
  /** Where the runtime is installed. */
  libDir: string;
  runtime: FetchedRuntime;
}

/** debian/copyright (machine-readable format 1.0): sysattest, the bundle, the runtime. */
export function copyright(parts: CopyrightParts): string {
  const nodeLicense = fs
    .readFileSync(parts.runtime.license, 'utf8')
    .trimEnd()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l}`))
    .join('\n');
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: sysattest',
    '',
    'Files: *',
    'Copyright: sysattest developers',
    'License: Apache-2.0',
    ' On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.',
    '',
    `Files: ${parts.appDir}/*`,
    'Copyright: sysattest developers, and the authors of the bundled modules',
    `License: ${parts.appLicense}`,
    ...parts.appText.map((l) => ` ${l}`),
    '',
    `Files: ${parts.libDir}/node`,
    `Copyright: Node.js contributors (Node.js ${parts.runtime.version})`,
    'License: Node.js',
    nodeLicense,
    '',
  ].join('\n');
}
