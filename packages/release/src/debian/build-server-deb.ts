import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SYSATTEST_VERSION } from '@sysattest/core';
import { fetchNodeRuntime } from '../node-runtime.js';
import { bundleServer } from '../server-bundle.js';
import { installedSizeKiB, put, run, type BuildDebOptions, type BuiltDeb } from './build-deb.js';
import {
  DEFAULT_SERVER_CONFIG,
  SERVER_APP_DIR,
  SERVER_ASSETS_DIR,
  SERVER_CONFIG_FILE,
  SERVER_EXAMPLES,
  SERVER_LAUNCHERS,
  SERVER_LIB_DIR,
  SERVER_PACKAGE,
  SERVER_UNIT_FILES,
  serverConffiles,
  serverControlFile,
  serverLauncher,
  serverMaintainerScripts,
} from './server-package.js';

const UNIT_DIR = '/usr/lib/systemd/system';

/** Builds `release/sysattest-server_<version>_amd64.deb` from the built repository. */
export async function buildServerDeb(options: BuildDebOptions): Promise<BuiltDeb> {
  const { repoRoot, outDir } = options;
  if (os.arch() !== 'x64')
    throw new Error(`the server package is built for amd64 only (this is ${os.arch()})`);
  const cacheDir = options.cacheDir ?? path.join(outDir, 'cache');
  const runtime = fetchNodeRuntime(cacheDir);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-server-deb-'));
  try {
    fs.chmodSync(root, 0o755);
    fs.mkdirSync(path.join(root, SERVER_LIB_DIR), { recursive: true });
    fs.copyFileSync(runtime.node, path.join(root, SERVER_LIB_DIR, 'node'));
    fs.chmodSync(path.join(root, SERVER_LIB_DIR, 'node'), 0o755);
    const bundle = await bundleServer(
      repoRoot,
      runtime,
      path.join(root, SERVER_APP_DIR),
      path.join(root, SERVER_ASSETS_DIR),
      cacheDir,
    );
    for (const [launcher, script] of Object.entries(SERVER_LAUNCHERS)) put(root, launcher, serverLauncher(script), 0o755);
    for (const unit of SERVER_UNIT_FILES)
      put(root, path.join(UNIT_DIR, unit), fs.readFileSync(path.join(repoRoot, 'deploy', unit)), 0o644);
    put(root, SERVER_CONFIG_FILE, `${JSON.stringify(DEFAULT_SERVER_CONFIG, null, 2)}\n`, 0o644);
    const doc = `/usr/share/doc/${SERVER_PACKAGE}`;
    put(root, `${doc}/README.md`, fs.readFileSync(path.join(repoRoot, 'README.md')), 0o644);
    put(root, `${doc}/CHANGELOG.md`, fs.readFileSync(path.join(repoRoot, 'CHANGELOG.md')), 0o644);
    for (const example of SERVER_EXAMPLES)
      put(root, `${doc}/examples/${example}`, fs.readFileSync(path.join(repoRoot, 'deploy', example)), 0o644);
    put(
      root,
      `${doc}/copyright`,
      copyright(fs.readFileSync(runtime.license, 'utf8'), runtime.version, bundle.betterSqlite3),
      0o644,
    );
    for (const e of fs.readdirSync(root, { withFileTypes: true, recursive: true }))
      if (e.isDirectory()) fs.chmodSync(path.join(e.parentPath, e.name), 0o755);

    const size = installedSizeKiB(root);
    put(
      root,
      'DEBIAN/control',
      serverControlFile({
        version: SYSATTEST_VERSION,
        architecture: 'amd64',
        installedSizeKiB: size,
        nodeVersion: `Node.js ${runtime.version}`,
      }),
      0o644,
    );
    put(root, 'DEBIAN/conffiles', serverConffiles(), 0o644);
    for (const [name, text] of Object.entries(serverMaintainerScripts())) put(root, `DEBIAN/${name}`, text, 0o755);
    fs.chmodSync(path.join(root, 'DEBIAN'), 0o755);

    fs.mkdirSync(outDir, { recursive: true });
    const file = path.join(outDir, `${SERVER_PACKAGE}_${SYSATTEST_VERSION}_amd64.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', `-z${options.compressLevel ?? 6}`, '--build', root, file]);
    const contents = run('dpkg-deb', ['--contents', file]).trim().split('\n');
    return { file, bytes: fs.statSync(file).size, installedSizeKiB: size, contents };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/** debian/copyright: sysattest, the runtime, what the bundle and the native modules hold. */
function copyright(nodeLicense: string, nodeVersion: string, betterSqlite3: string): string {
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
    `Files: ${SERVER_APP_DIR}/*`,
    'Copyright: sysattest developers, and the authors of the bundled modules',
    'License: Apache-2.0 and MIT and ISC and BSD-3-Clause and LGPL-3.0+',
    ' The bundle holds fastify and its plugins, pino, kysely, pg, commander, zod (MIT),',
    ' prom-client (Apache-2.0) and OpenPGP.js (LGPL-3.0-or-later; on Debian systems in',
    ' /usr/share/common-licenses/LGPL-3), unminified, so each can be replaced; their legal',
    ` comments are in ${SERVER_APP_DIR}/*.LEGAL.txt. ${SERVER_APP_DIR}/node_modules holds`,
    ` better-sqlite3 ${betterSqlite3} (MIT; SQLite itself is in the public domain), built for`,
    ' this runtime, bindings and file-uri-to-path (MIT), @napi-rs/xattr (MIT).',
    '',
    `Files: ${SERVER_LIB_DIR}/node`,
    `Copyright: Node.js contributors (Node.js ${nodeVersion})`,
    'License: Node.js',
    indent(nodeLicense),
    '',
  ].join('\n');
}
