import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SYSATTEST_VERSION } from '@sysattest/core';
import { bundleClient } from '../client-bundle.js';
import { fetchNodeRuntime } from '../node-runtime.js';
import {
  APP_DIR,
  CONFIG_FILE,
  DEFAULT_CLIENT_CONFIG,
  LAUNCHER,
  LIB_DIR,
  PACKAGE_NAME,
  UNIT_DIR,
  UNIT_FILES,
  conffiles,
  controlFile,
  launcherScript,
  maintainerScripts,
} from './client-package.js';

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

/** Builds `release/sysattest_<version>_amd64.deb` from the built repository. */
export async function buildClientDeb(options: BuildDebOptions): Promise<BuiltDeb> {
  const { repoRoot, outDir } = options;
  if (os.arch() !== 'x64')
    throw new Error(`the client package is built for amd64 only (this is ${os.arch()})`);
  const runtime = fetchNodeRuntime(options.cacheDir ?? path.join(outDir, 'cache'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-deb-'));
  try {
    fs.chmodSync(root, 0o755);
    // The runtime and the bundle.
    fs.mkdirSync(path.join(root, LIB_DIR), { recursive: true });
    fs.copyFileSync(runtime.node, path.join(root, LIB_DIR, 'node'));
    fs.chmodSync(path.join(root, LIB_DIR, 'node'), 0o755);
    await bundleClient(repoRoot, path.join(root, APP_DIR));
    put(root, LAUNCHER, launcherScript(), 0o755);
    // systemd units, the configuration, the documentation.
    for (const unit of UNIT_FILES)
      put(root, path.join(UNIT_DIR, unit), fs.readFileSync(path.join(repoRoot, 'deploy', unit)), 0o644);
    put(root, CONFIG_FILE, `${JSON.stringify(DEFAULT_CLIENT_CONFIG, null, 2)}\n`, 0o644);
    const doc = `/usr/share/doc/${PACKAGE_NAME}`;
    put(root, `${doc}/README.md`, fs.readFileSync(path.join(repoRoot, 'README.md')), 0o644);
    put(root, `${doc}/CHANGELOG.md`, fs.readFileSync(path.join(repoRoot, 'CHANGELOG.md')), 0o644);
    put(
      root,
      `${doc}/copyright`,
      copyright(fs.readFileSync(runtime.license, 'utf8'), runtime.version),
      0o644,
    );
    // Every directory 0755, as dpkg expects of a package's own directories.
    for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true }))
      if (e.isDirectory()) fs.chmodSync(path.join(e.parentPath, e.name), 0o755);

    // The control area.
    const size = installedSizeKiB(root);
    put(
      root,
      'DEBIAN/control',
      controlFile({
        version: SYSATTEST_VERSION,
        architecture: 'amd64',
        installedSizeKiB: size,
        nodeVersion: `Node.js ${runtime.version}`,
      }),
      0o644,
    );
    put(root, 'DEBIAN/conffiles', conffiles(), 0o644);
    for (const [name, text] of Object.entries(maintainerScripts())) put(root, `DEBIAN/${name}`, text, 0o755);
    fs.chmodSync(path.join(root, 'DEBIAN'), 0o755);

    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `${PACKAGE_NAME}_${SYSATTEST_VERSION}_amd64.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', `-z${options.compressLevel ?? 6}`, '--build', root, file]);
    const contents = run('dpkg-deb', ['--contents', file]).trim().split('\n');
    return { file, bytes: fs.statSync(file).size, installedSizeKiB: size, contents };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** debian/copyright (machine-readable format 1.0): sysattest, the runtime, what the bundle holds. */
function copyright(nodeLicense: string, nodeVersion: string): string {
  const indent = (text: string): string =>
    text
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
    `Files: ${APP_DIR}/*`,
    'Copyright: sysattest developers, and the authors of the bundled modules',
    'License: Apache-2.0 and MIT and LGPL-3.0+',
    ` The client bundle holds commander (MIT), zod (MIT) and OpenPGP.js (LGPL-3.0-or-later;`,
    ` on Debian systems in /usr/share/common-licenses/LGPL-3), unminified, so each can be`,
    ` replaced; ${APP_DIR}/node_modules holds @napi-rs/xattr (MIT). The bundle's legal`,
    ` comments are in ${APP_DIR}/*.LEGAL.txt.`,
    '',
    `Files: ${LIB_DIR}/node`,
    `Copyright: Node.js contributors (Node.js ${nodeVersion})`,
    'License: Node.js',
    indent(nodeLicense),
    '',
  ].join('\n');
}
