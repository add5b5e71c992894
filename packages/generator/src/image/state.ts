import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { isValidPlatformId, writeFileAtomic } from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import type { PackageChange } from './packages.js';

/**
 * The image fleet's state: `<generator home>/images.json`. One entry per platform with its
 * current image and the history of its generations. Written atomically (temporary file + rename)
 * under a lock file, validated on read.
 */

export const STATE_FORMAT = 'sysattest-generator-images';
export const STATE_VERSION = 1;
export const STATE_FILE_NAME = 'images.json';
/** A state file larger than this is refused (it holds a few KiB per platform). */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;

/** Where a generation's root filesystem came from. */
export type ImageSource =
  | { kind: 'mmdebstrap'; suite: string; variant: string; mirrors: string[] }
  | { kind: 'image'; ref: string; imageId: string }
  | { kind: 'rootfs'; path: string; bytes: number };

export interface GenerationRecord {
  generation: number;
  kind: 'build' | 'refresh';
  createdAt: string;
  /** podman image id (64 hex). */
  imageId: string;
  /** The generation's own tag (`…:bookworm-amd64-g3`). */
  tag: string;
  digest: string | null;
  packageCount: number | null;
  /** Set for builds. */
  source?: ImageSource;
  /** Packages changed since the previous generation; null when there was none to compare with. */
  changes: PackageChange[] | null;
  /** When the generation's image was removed from podman (pruned or `image rm --generation`). */
  removedAt: string | null;
}

export interface PlatformImage {
  platform: string;
  /** The moving tag naming the current generation (`localhost/sysattest/debian:bookworm-amd64`). */
  tag: string;
  imageId: string;
  digest: string | null;
  /** OCI architecture of the image (`amd64`, `arm64`). */
  architecture: string;
  builtAt: string;
  refreshedAt: string | null;
  generation: number;
  packageCount: number | null;
  source: ImageSource;
  /** Oldest first; the last entry is the current generation. */
  history: GenerationRecord[];
}

export interface ImageState {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  images: Record<string, PlatformImage>;
}

export function emptyState(): ImageState {
  return { format: STATE_FORMAT, version: STATE_VERSION, images: {} };
}

export function stateFilePath(home: string): string {
  return path.join(home, STATE_FILE_NAME);
}

// ---- validation ---------------------------------------------------------------------------------

class Invalid extends Error {}

function fail(where: string, problem: string): never {
  throw new Invalid(`${where} ${problem}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function expectString(v: unknown, where: string, opts: { nullable?: boolean; pattern?: RegExp } = {}): void {
  if (v === null && opts.nullable) return;
  if (typeof v !== 'string') fail(where, opts.nullable ? 'is not a string or null' : 'is not a string');
  if (opts.pattern && !opts.pattern.test(v))
    fail(where, `has an unexpected value ${JSON.stringify(v.slice(0, 80))}`);
}

function expectCount(v: unknown, where: string, opts: { nullable?: boolean; min?: number } = {}): void {
  if (v === null && opts.nullable) return;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < (opts.min ?? 0)) {
    fail(where, `is not an integer ≥ ${opts.min ?? 0}${opts.nullable ? ' or null' : ''}`);
  }
}

const IMAGE_ID = /^[0-9a-f]{64}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function validateSource(v: unknown, where: string): void {
  if (!isObject(v)) fail(where, 'is not an object');
  switch (v.kind) {
    case 'mmdebstrap':
      expectString(v.suite, `${where}.suite`);
      expectString(v.variant, `${where}.variant`);
      if (!Array.isArray(v.mirrors)) fail(`${where}.mirrors`, 'is not an array');
      v.mirrors.forEach((m, i) => expectString(m, `${where}.mirrors[${i}]`));
      return;
    case 'image':
      expectString(v.ref, `${where}.ref`);
      expectString(v.imageId, `${where}.imageId`, { pattern: IMAGE_ID });
      return;
    case 'rootfs':
      expectString(v.path, `${where}.path`);
      expectCount(v.bytes, `${where}.bytes`);
      return;
    default:
      fail(`${where}.kind`, 'is not mmdebstrap, image or rootfs');
  }
}

function validateChange(v: unknown, where: string): void {
  if (!isObject(v)) fail(where, 'is not an object');
  expectString(v.name, `${where}.name`);
  expectString(v.arch, `${where}.arch`);
  expectString(v.from, `${where}.from`, { nullable: true });
  expectString(v.to, `${where}.to`, { nullable: true });
}

function validateGeneration(v: unknown, where: string): void {
  if (!isObject(v)) fail(where, 'is not an object');
  expectCount(v.generation, `${where}.generation`, { min: 1 });
  if (v.kind !== 'build' && v.kind !== 'refresh') fail(`${where}.kind`, 'is not build or refresh');
  expectString(v.createdAt, `${where}.createdAt`, { pattern: TIME });
  expectString(v.imageId, `${where}.imageId`, { pattern: IMAGE_ID });
  expectString(v.tag, `${where}.tag`);
  expectString(v.digest, `${where}.digest`, { nullable: true });
  expectCount(v.packageCount, `${where}.packageCount`, { nullable: true });
  if (v.source !== undefined) validateSource(v.source, `${where}.source`);
  if (v.changes !== null) {
    if (!Array.isArray(v.changes)) fail(`${where}.changes`, 'is not an array or null');
    v.changes.forEach((c, i) => validateChange(c, `${where}.changes[${i}]`));
  }
  expectString(v.removedAt, `${where}.removedAt`, { nullable: true, pattern: TIME });
}

function validatePlatformImage(key: string, v: unknown, where: string): void {
  if (!isValidPlatformId(key)) fail(where, 'is not a platform id');
  if (!isObject(v)) fail(where, 'is not an object');
  if (v.platform !== key) fail(`${where}.platform`, 'does not match its key');
  expectString(v.tag, `${where}.tag`);
  expectString(v.imageId, `${where}.imageId`, { pattern: IMAGE_ID });
  expectString(v.digest, `${where}.digest`, { nullable: true });
  expectString(v.architecture, `${where}.architecture`);
  expectString(v.builtAt, `${where}.builtAt`, { pattern: TIME });
  expectString(v.refreshedAt, `${where}.refreshedAt`, { nullable: true, pattern: TIME });
  expectCount(v.generation, `${where}.generation`, { min: 1 });
  expectCount(v.packageCount, `${where}.packageCount`, { nullable: true });
  validateSource(v.source, `${where}.source`);
  if (!Array.isArray(v.history) || v.history.length === 0)
    fail(`${where}.history`, 'is not a non-empty array');
  v.history.forEach((g, i) => validateGeneration(g, `${where}.history[${i}]`));
  const last = v.history[v.history.length - 1] as GenerationRecord;
  if (last.generation !== v.generation || last.imageId !== v.imageId) {
    fail(`${where}.history`, 'does not end with the current generation');
  }
}

/** Throws a message naming the first field that is wrong. */
export function validateState(v: unknown): asserts v is ImageState {
  if (!isObject(v)) fail('the top level', 'is not an object');
  if (v.format !== STATE_FORMAT) fail('"format"', `is not ${JSON.stringify(STATE_FORMAT)}`);
  if (v.version !== STATE_VERSION) {
    fail(
      '"version"',
      `is ${JSON.stringify(v.version)}; this sysattest-generator reads version ${STATE_VERSION}`,
    );
  }
  if (!isObject(v.images)) fail('"images"', 'is not an object');
  for (const [key, image] of Object.entries(v.images))
    validatePlatformImage(key, image, `images[${JSON.stringify(key)}]`);
}

// ---- reading and writing ------------------------------------------------------------------------

function corrupt(file: string, problem: string, cause?: unknown): GeneratorError {
  return new GeneratorError(
    'STATE_CORRUPT',
    `the image state file ${file} is corrupt: ${problem}; fix it, or move it away to start over ` +
      `(podman's images are not touched)`,
    cause === undefined ? undefined : { cause },
  );
}

/** Reads and validates the state file; a missing file is an empty state. */
export async function readState(file: string): Promise<ImageState> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw new GeneratorError(
      'STATE_IO',
      `cannot read the image state file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  let text: string;
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw corrupt(file, 'it is not a regular file');
    if (st.size > MAX_STATE_BYTES)
      throw corrupt(file, `it is larger than ${MAX_STATE_BYTES / 1024 / 1024} MiB`);
    // Read at most the cap even if the file grows meanwhile.
    const buf = Buffer.alloc(Math.min(st.size, MAX_STATE_BYTES) + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_STATE_BYTES)
      throw corrupt(file, `it is larger than ${MAX_STATE_BYTES / 1024 / 1024} MiB`);
    text = buf.subarray(0, bytesRead).toString('utf8');
  } catch (e) {
    if (e instanceof GeneratorError) throw e;
    throw new GeneratorError(
      'STATE_IO',
      `cannot read the image state file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  } finally {
    await handle.close();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `it is not JSON (${(e as Error).message})`, e);
  }
  try {
    validateState(parsed);
  } catch (e) {
    if (e instanceof Invalid) throw corrupt(file, e.message, e);
    throw e;
  }
  return parsed;
}

/** Writes the state atomically: a temporary file in the same directory, fsync, rename. */
export async function writeState(file: string, state: ImageState): Promise<void> {
  validateState(state);
  try {
    await writeFileAtomic(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600, dirMode: 0o700 });
  } catch (e) {
    throw new GeneratorError(
      'STATE_IO',
      `cannot write the image state file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
}

// ---- locks --------------------------------------------------------------------------------------

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Holder pid of a lock file, or undefined when it cannot be read. */
function lockHolder(file: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An exclusive lock file holding the owner's pid. A lock whose process is gone is stale and
 * taken over. Waits up to `waitMs` (0: fail at once) for a live holder, then throws IMAGE_BUSY
 * with `busyMessage(pid)`.
 */
export async function acquireLock(
  file: string,
  opts: { waitMs?: number; busyMessage: (pid: number | undefined) => string },
): Promise<() => Promise<void>> {
  await fsp.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const deadline = Date.now() + (opts.waitMs ?? 0);
  for (;;) {
    try {
      const handle = await fsp.open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        if (lockHolder(file) === process.pid) await fsp.rm(file, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new GeneratorError('STATE_IO', `cannot create the lock file ${file}: ${(e as Error).message}`, {
          cause: e,
        });
      }
    }
    const holder = lockHolder(file);
    if (holder === undefined) {
      // Being written right now, or garbage: give the writer a moment, then treat it as stale.
      const age = Date.now() - ((await fsp.stat(file).catch(() => undefined))?.mtimeMs ?? 0);
      if (age > 5000) {
        await fsp.rm(file, { force: true });
        continue;
      }
    } else if (holder !== process.pid && !processAlive(holder)) {
      await fsp.rm(file, { force: true });
      continue;
    }
    if (Date.now() >= deadline) throw new GeneratorError('IMAGE_BUSY', opts.busyMessage(holder));
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Reads the state, applies `change`, writes it back, all under the state lock, so two generator
 * processes never lose each other's updates. Returns what `change` returned.
 */
export async function updateState<T>(
  file: string,
  change: (state: ImageState) => T | Promise<T>,
): Promise<T> {
  const release = await acquireLock(`${file}.lock`, {
    waitMs: 30_000,
    busyMessage: (pid) =>
      `the image state file ${file} has been locked for 30 s by process ${pid ?? '(unknown)'}; ` +
      `if no sysattest-generator is running, remove ${file}.lock`,
  });
  try {
    const state = await readState(file);
    const result = await change(state);
    await writeState(file, state);
    return result;
  } finally {
    await release();
  }
}
