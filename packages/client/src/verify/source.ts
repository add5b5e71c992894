import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import {
  MANIFEST_LIMITS,
  MAX_SIGNATURE_BYTES,
  isSysattestError,
  manifestFileName,
  type Platform,
  type SysattestError,
} from '@sysattest/core';

/**
 * Where manifests come from. A source is NOT trusted: everything it returns is verified against the
 * pinned keys before use (verify-machine.ts). The server transport implements this same interface.
 */
export interface ManifestRequest {
  name: string;
  version: string;
  /** The package's own architecture (`amd64`, `i386`, `all`). */
  arch: string;
}

/**
 * Why a `pending` package was not queued (a server's anonymous quota is used up, or it queues
 * work for token holders only): a later lookup, or one with a token, queues it.
 */
export type DeferredReason = 'quota' | 'token-required';

export type ManifestFetchResult = (
  | { status: 'ok'; bytes: Uint8Array; signature: string }
  | { status: 'pending'; deferred?: DeferredReason }
  | { status: 'not-in-catalog' | 'unknown-platform' }
) & {
  /**
   * The newest version of the package the source claims (from a catalog snapshot). Only a hint:
   * `outdated` is reported from a catalog snapshot whose signature verified (`catalogFor`).
   */
  newestVersion?: string;
};

/** One package's state at the source without its manifest: for a client whose cache may hold it. */
export type ManifestStatus = (
  | { status: 'ok'; /** sha256 of the manifest's signed bytes */ digest: string }
  | { status: 'pending'; deferred?: DeferredReason }
  | { status: 'not-in-catalog' | 'unknown-platform' }
) & { newestVersion?: string };

/** A signed catalog snapshot as a source offers it (unverified). */
export interface OfferedCatalog {
  digest: string;
  bytes: Uint8Array;
  signature: string;
}

export interface ManifestSource {
  /**
   * One result per item, in the order of `items`. `platform` is the machine's platform with the
   * architecture of the items (all items of one call share it; `all` packages come with arch `all`).
   * Rejects only when the source as a whole fails (unreachable server, unreadable directory).
   */
  fetch(platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestFetchResult[]>;
  /**
   * Optional, for a client with a cache: as fetch() but with each manifest's digest instead of
   * its bytes (the caller fetches, with fetch(), only the ones its cache lacks).
   */
  statuses?(platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestStatus[]>;
  /**
   * Optional, with catalog(): the signed catalog snapshots the answers so far came from (platform
   * id → digest), for the caller to verify before believing any "newest version"; a snapshot
   * already verified and cached is not fetched again. A source without them: no `outdated`.
   */
  snapshotDigests?(): Map<string, string>;
  /** One snapshot by digest, unverified; undefined when the source lacks it. */
  catalog?(digest: string): Promise<OfferedCatalog | undefined>;
}

/** A source failure that means "the server is not there" (exit 69) rather than a bug. */
export function isUnavailable(e: unknown): e is SysattestError {
  return isSysattestError(e) && (e as { exitCode?: unknown }).exitCode === 69;
}

/** Largest detached signature read from a `.asc` file. */
/** A signature file larger than verification accepts is not read at all. */
export const MAX_SIGNATURE_FILE_BYTES = MAX_SIGNATURE_BYTES;

/**
 * The generator's output layout on disk: `<dir>/<distro>/<release>/<arch>/<name>_<version>_<arch>.json`
 * with its detached armored signature next to it (`.json.asc`); `all` packages under `…/all/`.
 * A platform directory that does not exist is `unknown-platform`; a missing manifest (or signature)
 * is `not-in-catalog`.
 */
export class DirectoryManifestSource implements ManifestSource {
  constructor(readonly dir: string) {}

  async fetch(platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestFetchResult[]> {
    const results: ManifestFetchResult[] = [];
    for (const item of items) {
      if (item.arch.includes('/') || item.arch.startsWith('.')) {
        results.push({ status: 'unknown-platform' });
        continue;
      }
      const platformDir = path.join(this.dir, platform.distro, platform.release, item.arch);
      if (!(await isDirectory(platformDir))) {
        results.push({ status: 'unknown-platform' });
        continue;
      }
      const name = manifestFileName({ name: item.name, version: item.version, architecture: item.arch });
      // Names and versions come from the (untrusted) local package database: never leave the dir.
      if (name.includes('/') || name.includes('\0') || name.startsWith('.')) {
        results.push({ status: 'not-in-catalog' });
        continue;
      }
      const file = path.join(platformDir, name);
      const bytes = await readCapped(file, MANIFEST_LIMITS.maxBytes);
      const signature =
        bytes === undefined ? undefined : await readCapped(`${file}.asc`, MAX_SIGNATURE_FILE_BYTES);
      if (bytes === undefined || signature === undefined) {
        results.push({ status: 'not-in-catalog' });
        continue;
      }
      results.push({ status: 'ok', bytes, signature: signature.toString('utf8') });
    }
    return results;
  }
}

async function isDirectory(p: string): Promise<boolean> {
  try {
    return (await fs.stat(p)).isDirectory();
  } catch {
    return false;
  }
}

/**
 * A regular file's bytes, or undefined when it does not exist. Over the cap: the first cap+1 bytes
 * are returned, so verification refuses it on size without reading the rest.
 */
async function readCapped(file: string, maxBytes: number): Promise<Buffer | undefined> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, length, buf.length - length, null);
      if (bytesRead === 0 || length + bytesRead >= buf.length) {
        length += bytesRead;
        break;
      }
      length += bytesRead;
    }
    return buf.subarray(0, length);
  } finally {
    await fh.close();
  }
}
