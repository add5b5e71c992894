/**
 * `npm run package`: builds the Debian packages under `release/` (git-ignored) from the built
 * repository: the client's (`sysattest`) and the service's (`sysattest-server`: server, generator
 * and worker), and says what each holds.
 */
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildClientDeb, type BuiltDeb } from './debian/build-deb.js';
import { buildServerDeb } from './debian/build-server-deb.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const outDir = path.join(repoRoot, 'release');

for (const build of [buildClientDeb, buildServerDeb]) {
  const started = performance.now();
  const deb: BuiltDeb = await build({ repoRoot, outDir });
  process.stdout.write(
    `${path.relative(process.cwd(), deb.file)}: ${(deb.bytes / 1024 / 1024).toFixed(1)} MiB, ` +
      `${(deb.installedSizeKiB / 1024).toFixed(1)} MiB installed, ${deb.contents.length} paths, ` +
      `built in ${((performance.now() - started) / 1000).toFixed(1)} s\n` +
      `install it with: apt install ./${path.relative(process.cwd(), deb.file)}\n`,
  );
}
