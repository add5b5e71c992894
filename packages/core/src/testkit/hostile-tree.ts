/**
 * Test support (not exported from the package): builds throw-away root trees with the hostile
 * shapes the fs tests need, and hooks into node:fs to make races deterministic.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';

export const isRoot = process.getuid?.() === 0;

/** A temporary directory (mode 0755 so an unprivileged child can walk it), removed by cleanup(). */
export function makeTempDir(prefix = 'sysattest-fs-'): { dir: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return { dir, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Writes a file under `root`, creating its directories. */
export function writeFile(root: string, rel: string, content: string | Buffer, mode?: number): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  if (mode !== undefined) fs.chmodSync(p, mode);
  return p;
}

/** Creates `rel` under `root` as a symlink to `target` (stored as is, never resolved). */
export function symlink(root: string, rel: string, target: string | Buffer): string {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.symlinkSync(target as string, p);
  return p;
}

/** mkfifo(1); false when it is not available. */
export function mkfifo(p: string): boolean {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  return spawnSync('mkfifo', [p]).status === 0;
}

/** mknod(1) for a character or block device; false when not permitted (not root, nodev…). */
export function mknod(p: string, kind: 'c' | 'b', major: number, minor: number): boolean {
  fs.mkdirSync(path.dirname(p), { recursive: true });
  return spawnSync('mknod', [p, kind, String(major), String(minor)]).status === 0;
}

/**
 * A standard hostile root:
 *  etc/passwd, etc/group, etc/shadow                 in-root files
 *  usr/bin/ls                                          a regular file
 *  bin -> usr/bin                                      usrmerge
 *  usr/bin/evil -> /etc/shadow                         absolute symlink (must stay in the root)
 *  usr/lib/climb -> ../../../../etc/passwd             relative climb (clamped at the root)
 *  lib -> /                                            intermediate component pointing at `/`
 *  loop/a -> b, loop/b -> a, loop/self -> self         loops
 *  chain/l0 -> l1 … l40 -> target, chain/target        41 symlinks (one over the limit)
 *  chain/m0 -> m1 … m39 -> target                      40 symlinks (exactly the limit)
 */
export function buildHostileRoot(root: string): void {
  writeFile(
    root,
    'etc/passwd',
    'root:x:0:0:root:/root:/bin/bash\nman:x:6:12:man:/var/cache/man:/usr/sbin/nologin\n',
  );
  writeFile(root, 'etc/group', 'root:x:0:\nman:x:12:\n');
  writeFile(root, 'etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  writeFile(root, 'usr/bin/ls', 'not really ls\n', 0o755);
  symlink(root, 'bin', 'usr/bin');
  symlink(root, 'usr/bin/evil', '/etc/shadow');
  symlink(root, 'usr/lib/climb', '../../../../etc/passwd');
  symlink(root, 'lib', '/');
  symlink(root, 'loop/a', 'b');
  symlink(root, 'loop/b', 'a');
  symlink(root, 'loop/self', 'self');
  writeFile(root, 'chain/target', 'end of the chain\n');
  for (let i = 0; i <= 40; i++) symlink(root, `chain/l${i}`, i === 40 ? 'target' : `l${i + 1}`);
  for (let i = 0; i <= 39; i++) symlink(root, `chain/m${i}`, i === 39 ? 'target' : `m${i + 1}`);
}

type FsExports = typeof fs;
const cjsFs = createRequire(import.meta.url)('node:fs') as FsExports;

/**
 * Replaces one node:fs function for the duration of `body` (ESM importers see it too, through
 * module.syncBuiltinESMExports()), then restores it. The replacement gets the original.
 */
export function withFsHook<K extends 'openSync' | 'readSync' | 'fstatSync' | 'lstatSync', R>(
  name: K,
  replacement: (original: FsExports[K]) => FsExports[K],
  body: () => R,
): R {
  const original = cjsFs[name];
  (cjsFs as Record<K, FsExports[K]>)[name] = replacement(original);
  syncBuiltinESMExports();
  try {
    return body();
  } finally {
    (cjsFs as Record<K, FsExports[K]>)[name] = original;
    syncBuiltinESMExports();
  }
}
