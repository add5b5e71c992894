/**
 * `npm run package`: builds the client's Debian package under `release/` (git-ignored) from the
 * built repository, and says what it holds.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClientDeb } from './debian/build-deb.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const started = performance.now();
const deb = await buildClientDeb({ repoRoot, outDir: path.join(repoRoot, 'release') });
process.stdout.write(
  `${path.relative(process.cwd(), deb.file)}: ${(deb.bytes / 1024 / 1024).toFixed(1)} MiB, ` +
    `${(deb.installedSizeKiB / 1024).toFixed(1)} MiB installed, ${deb.contents.length} paths, ` +
    `built in ${((performance.now() - started) / 1000).toFixed(1)} s\n` +
    `install it with: apt install ./${path.relative(process.cwd(), deb.file)}\n`,
);
