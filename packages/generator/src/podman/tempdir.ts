import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { GeneratorError } from '../errors.js';

/** Prefix of every temporary directory the generator makes (so leftovers are easy to spot). */
export const TEMP_PREFIX = 'sysattest-';

/**
 * Creates a fresh temporary directory `<parent>/sysattest-<what>-XXXXXX`. Mode 0755: tools that
 * drop privileges while working inside it (apt's `_apt` sandbox user under mmdebstrap) must be able
 * to enter it; nothing secret is ever written there.
 */
export async function makeTempDir(what: string, parent: string = os.tmpdir()): Promise<string> {
  await fs.mkdir(parent, { recursive: true });
  const dir = await fs.mkdtemp(path.join(parent, `${TEMP_PREFIX}${what}-`));
  await fs.chmod(dir, 0o755);
  return dir;
}

/** Decodes the octal escapes (`\040` for a space…) of a /proc/self/mountinfo field. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Mount points at or below `dir` in this process's mount namespace (deepest first). */
export async function mountsUnder(dir: string, mountinfo = '/proc/self/mountinfo'): Promise<string[]> {
  let text: string;
  try {
    text = await fs.readFile(mountinfo, 'utf8');
  } catch {
    return [];
  }
  const root = path.resolve(dir);
  const found: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const mountPoint = fields[4];
    if (mountPoint === undefined) continue;
    const mp = unescapeMountField(mountPoint);
    if (mp === root || mp.startsWith(`${root}/`)) found.push(mp);
  }
  return found.sort((a, b) => b.length - a.length);
}

/**
 * Removes a temporary directory tree, but never while something is mounted inside it: a killed
 * mmdebstrap (root mode) can leave /proc, /sys or /dev bind-mounted in its chroot, and a recursive
 * delete would then walk into the host's own /dev. In that case nothing is deleted and the error
 * says what to unmount. A directory that is already gone is fine.
 */
export async function removeTempDir(dir: string): Promise<void> {
  const mounts = await mountsUnder(dir);
  if (mounts.length > 0) {
    throw new GeneratorError(
      'STATE_IO',
      `refusing to delete ${dir}: ${mounts[mounts.length - 1]} is still mounted (${mounts.length} mount(s) inside; ` +
        `left by an interrupted mmdebstrap?); run: umount -R ${mounts[mounts.length - 1]} && rm -rf ${dir}`,
    );
  }
  await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
