import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';

/**
 * Replaces `file` with `data` so that a reader sees the old content or the new, never a part:
 * a fresh temporary file in the same directory (O_EXCL, created with `mode`), fsync, rename(2).
 * On failure the temporary file is removed and the old content is left as it was.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: { mode?: number; dirMode?: number } = {},
): Promise<void> {
  const mode = options.mode ?? 0o644;
  const dir = path.dirname(file);
  await fs.mkdir(dir, {
    recursive: true,
    ...(options.dirMode !== undefined ? { mode: options.dirMode } : {}),
  });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await fs.open(tmp, 'wx', mode);
    try {
      await handle.chmod(mode); // the umask must not loosen or tighten what was asked
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (e) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}
