import * as path from 'node:path';
import { SYSATTEST_VERSION } from '@sysattest/core';
import { fetchNodeRuntime, type FetchedRuntime } from '../node-runtime.js';
import { bundleServer } from '../server-bundle.js';
import {
  buildDeb,
  copyright,
  put,
  putDeployFiles,
  putDocs,
  putRuntime,
  requireAmd64,
  type BuildDebOptions,
  type BuiltDeb,
} from './deb-builder.js';
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
  requireAmd64('server');
  const { repoRoot, outDir } = options;
  const cacheDir = options.cacheDir ?? path.join(outDir, 'cache');
  const runtime = fetchNodeRuntime(cacheDir);
  return buildDeb(SERVER_PACKAGE, options, async (root) => {
    putRuntime(root, SERVER_LIB_DIR, runtime);
    const bundle = await bundleServer(
      repoRoot,
      runtime,
      path.join(root, SERVER_APP_DIR),
      path.join(root, SERVER_ASSETS_DIR),
      cacheDir,
    );
    for (const [launcher, script] of Object.entries(SERVER_LAUNCHERS)) put(root, launcher, serverLauncher(script), 0o755);
    putDeployFiles(root, repoRoot, UNIT_DIR, SERVER_UNIT_FILES);
    put(root, SERVER_CONFIG_FILE, `${JSON.stringify(DEFAULT_SERVER_CONFIG, null, 2)}\n`, 0o644);
    const doc = putDocs(root, repoRoot, SERVER_PACKAGE);
    putDeployFiles(root, repoRoot, `${doc}/examples`, SERVER_EXAMPLES);
    put(root, `${doc}/copyright`, serverCopyright(runtime, bundle.betterSqlite3), 0o644);
    return {
      control: (installedSizeKiB) =>
        serverControlFile({
          version: SYSATTEST_VERSION,
          architecture: 'amd64',
          installedSizeKiB,
          nodeVersion: `Node.js ${runtime.version}`,
        }),
      conffiles: serverConffiles(),
      maintainerScripts: serverMaintainerScripts(),
    };
  });
}

/** What the bundle and the native modules hold, for debian/copyright. */
function serverCopyright(runtime: FetchedRuntime, betterSqlite3: string): string {
  return copyright({
    appDir: SERVER_APP_DIR,
    appLicense: 'Apache-2.0 and MIT and ISC and BSD-3-Clause and LGPL-3.0+',
    appText: [
      'The bundle holds fastify and its plugins, pino, kysely, pg, commander, zod (MIT),',
      'prom-client (Apache-2.0) and OpenPGP.js (LGPL-3.0-or-later; on Debian systems in',
      '/usr/share/common-licenses/LGPL-3), unminified, so each can be replaced; their legal',
      `comments are in ${SERVER_APP_DIR}/*.LEGAL.txt. ${SERVER_APP_DIR}/node_modules holds`,
      `better-sqlite3 ${betterSqlite3} (MIT; SQLite itself is in the public domain), built for`,
      'this runtime, bindings and file-uri-to-path (MIT), @napi-rs/xattr (MIT).',
    ],
    libDir: SERVER_LIB_DIR,
    runtime,
  });
}
