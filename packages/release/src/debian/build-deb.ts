import * as path from 'node:path';
import { SYSATTEST_VERSION } from '@sysattest/core';
import { bundleClient } from '../client-bundle.js';
import { fetchNodeRuntime, type FetchedRuntime } from '../node-runtime.js';
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

export type { BuildDebOptions, BuiltDeb } from './deb-builder.js';

/** Builds `release/sysattest_<version>_amd64.deb` from the built repository. */
export async function buildClientDeb(options: BuildDebOptions): Promise<BuiltDeb> {
  requireAmd64('client');
  const { repoRoot, outDir } = options;
  const runtime = fetchNodeRuntime(options.cacheDir ?? path.join(outDir, 'cache'));
  return buildDeb(PACKAGE_NAME, options, async (root) => {
    putRuntime(root, LIB_DIR, runtime);
    await bundleClient(repoRoot, path.join(root, APP_DIR));
    put(root, LAUNCHER, launcherScript(), 0o755);
    putDeployFiles(root, repoRoot, UNIT_DIR, UNIT_FILES);
    put(root, CONFIG_FILE, `${JSON.stringify(DEFAULT_CLIENT_CONFIG, null, 2)}\n`, 0o644);
    const doc = putDocs(root, repoRoot, PACKAGE_NAME);
    put(root, `${doc}/copyright`, clientCopyright(runtime), 0o644);
    return {
      control: (installedSizeKiB) =>
        controlFile({
          version: SYSATTEST_VERSION,
          architecture: 'amd64',
          installedSizeKiB,
          nodeVersion: `Node.js ${runtime.version}`,
        }),
      conffiles: conffiles(),
      maintainerScripts: maintainerScripts(),
    };
  });
}

function clientCopyright(runtime: FetchedRuntime): string {
  return copyright({
    appDir: APP_DIR,
    appLicense: 'Apache-2.0 and MIT and LGPL-3.0+',
    appText: [
      'The client bundle holds commander (MIT), zod (MIT) and OpenPGP.js (LGPL-3.0-or-later;',
      'on Debian systems in /usr/share/common-licenses/LGPL-3), unminified, so each can be',
      `replaced; ${APP_DIR}/node_modules holds @napi-rs/xattr (MIT). The bundle's legal`,
      `comments are in ${APP_DIR}/*.LEGAL.txt.`,
    ],
    libDir: LIB_DIR,
    runtime,
  });
}
