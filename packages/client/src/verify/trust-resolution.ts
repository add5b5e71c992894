import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  SysattestError,
  formatPlatform,
  isSysattestError,
  isValidPlatformComponent,
  verifyManifest,
  type InstalledPackage,
  type Platform,
  type TrustedKeyring,
  type VerifiedManifest,
} from '@sysattest/core';
import type { ManifestCache } from '../cache/manifest-cache.js';
import type { Finding } from './compare.js';
import { collectGarbage } from './gc.js';
import { isArchIndependent } from './local-database.js';
import type { UnverifiedReason } from './report.js';
import {
  isUnavailable,
  type DeferredReason,
  type ManifestFetchResult,
  type ManifestRequest,
  type ManifestSource,
  type ManifestStatus,
} from './source.js';

/**
 * What is trusted for each installed package: a manifest that verified against the pinned keys,
 * or why there is none. The source (the server) is untrusted; its answers only choose what to
 * fetch, never what to skip when signed data says otherwise:
 *
 * | the source says                         | with a verified manifest cached        | without                            |
 * |-----------------------------------------|----------------------------------------|------------------------------------|
 * | ok, the cached digest                   | the cached manifest                    | –                                  |
 * | ok, another digest                      | fetched and verified: the new one (a   | fetched and verified               |
 * |                                         | note); not delivered or refused: the   |                                    |
 * |                                         | cached one + `server-conflict` (trust) |                                    |
 * | pending / not-in-catalog / unknown-     | the cached manifest                    | unverified                         |
 * | platform                                | (either way, not-in-catalog and unknown-platform are held against the       |
 * |                                         | verified catalogs later: catalog-snapshots.ts)                              |
 * | unreachable                             | the cached manifest                    | unverified (server-unreachable)    |
 * A manifest offered is verified before anything reads it, and refused (`bad-signature`) when it
 * is not the manifest of that package, version, architecture and platform.
 */
export type Resolution =
  | { kind: 'verified'; pkg: InstalledPackage; manifest: VerifiedManifest }
  | { kind: 'unverified'; pkg: InstalledPackage; reason: UnverifiedReason; why?: string }
  | { kind: 'refused'; pkg: InstalledPackage; reason: string };

export interface ResolverOptions {
  keyring: TrustedKeyring;
  source?: ManifestSource;
  cache?: ManifestCache;
  now?: Date;
  primary: Platform;
  /** The installed packages by architecture (one digests-only lookup per architecture). */
  byArch: ReadonlyMap<string, readonly InstalledPackage[]>;
}

/** A chunk of packages of one architecture. */
export interface Chunk {
  arch: string;
  pkgs: InstalledPackage[];
}

type SaidStatus = 'pending' | 'not-in-catalog' | 'unknown-platform';

/** What a `pending` deferred by the server means for the user. */
const DEFERRED_WHY: Record<DeferredReason, string> = {
  quota:
    "not queued yet: this address used up the server's queue quota for anonymous clients; a later run queues it",
  'token-required':
    'not queued: the server queues work for token holders only (set "token" in the client config)',
};

export class TrustResolver {
  /** The source's unsigned claims of each package's newest version (hints for the report). */
  readonly claims = new Map<InstalledPackage, string>();
  /** What the source answered for packages it gave no manifest for (checked against the catalogs). */
  readonly said = new Map<InstalledPackage, 'not-in-catalog' | 'unknown-platform'>();
  /** Contradictions of the source that were caught here (`server-conflict`). */
  readonly conflicts: Finding[] = [];
  readonly notes: string[] = [];
  /** The lookup platforms asked about. */
  readonly platforms = new Set<string>();
  /** Set once the source is unreachable: nothing more is asked. */
  unavailable: SysattestError | undefined;
  /** Packages checked with a cached manifest; manifests stored in the cache by this run. */
  fromCache = 0;
  stored = 0;
  private readonly statusRequests = new Map<
    string,
    Promise<Map<InstalledPackage, ManifestStatus> | undefined>
  >();
  private readonly verifying = new WeightedLimit(VERIFY_BUDGET_BYTES);

  constructor(private readonly options: ResolverOptions) {}

  /** Lookup platform (`all` packages are asked about on the native one) and manifest platform. */
  platformsOf(arch: string): { lookup: Platform; manifest: Platform } {
    const { primary } = this.options;
    return {
      lookup: { ...primary, arch: isArchIndependent(arch) ? primary.arch : arch },
      manifest: { ...primary, arch },
    };
  }

  /** Resolves one chunk: the cache first, then what the source offers, each verified. */
  async resolve({ arch, pkgs }: Chunk): Promise<Resolution[]> {
    if (!isValidPlatformComponent(arch)) {
      // No platform can be named after it (an rpm without an architecture): nothing to ask for.
      return pkgs.map((pkg) => ({
        kind: 'unverified',
        pkg,
        reason: 'unknown-platform',
        why: `architecture ${JSON.stringify(arch)}`,
      }));
    }
    const { lookup } = this.platformsOf(arch);
    this.platforms.add(formatPlatform(lookup));
    const statuses = this.options.cache === undefined ? undefined : await this.statusesOf(arch, lookup);
    const cached = await this.fromCacheFor(arch, pkgs);
    const out: Resolution[] = [];
    const toFetch: InstalledPackage[] = [];
    const flipped = new Map<InstalledPackage, VerifiedManifest>();
    pkgs.forEach((pkg, i) => {
      const m = cached[i];
      const said = statuses?.get(pkg);
      if (said?.newestVersion !== undefined) this.claims.set(pkg, said.newestVersion);
      if (m !== undefined && (said?.status !== 'ok' || said.digest === m.digest)) {
        // Still held against the signed catalogs: a lie is reported even when it skips nothing.
        if (said !== undefined && said.status !== 'ok' && said.status !== 'pending')
          this.said.set(pkg, said.status);
        out.push({ kind: 'verified', pkg, manifest: m });
        this.fromCache++;
      } else if (m !== undefined) {
        flipped.set(pkg, m);
        toFetch.push(pkg);
      } else if (said !== undefined && said.status !== 'ok') {
        out.push(this.unverifiedBySource(pkg, said));
      } else toFetch.push(pkg);
    });
    if (toFetch.length > 0) out.push(...(await this.fetchAll(arch, toFetch, flipped)));
    return out;
  }

  /**
   * Every package of one architecture asked about at once, digests only (a few requests per run,
   * not one per chunk: a warm run then waits for the server once). Undefined when the source
   * cannot answer that way or is unreachable (then `unavailable` is set).
   */
  private statusesOf(
    arch: string,
    platform: Platform,
  ): Promise<Map<InstalledPackage, ManifestStatus> | undefined> {
    let pending = this.statusRequests.get(arch);
    if (pending === undefined) {
      pending = this.askStatuses(this.options.byArch.get(arch) ?? [], arch, platform);
      this.statusRequests.set(arch, pending);
    }
    return pending;
  }

  private async askStatuses(
    pkgs: readonly InstalledPackage[],
    arch: string,
    platform: Platform,
  ): Promise<Map<InstalledPackage, ManifestStatus> | undefined> {
    const source = this.options.source;
    if (source?.statuses === undefined || this.unavailable !== undefined) return undefined;
    const statuses = source.statuses.bind(source);
    const out = new Map<InstalledPackage, ManifestStatus>();
    try {
      for (let i = 0; i < pkgs.length; i += STATUS_BATCH) {
        const part = pkgs.slice(i, i + STATUS_BATCH);
        const said = await askDistinct(part, arch, (items) => statuses(platform, items));
        part.forEach((p, j) => {
          const s = said[j];
          if (s !== undefined) out.set(p, s);
        });
      }
    } catch (e) {
      this.lost(e);
      return undefined;
    }
    return out;
  }

  /** The cached manifest of each package (sealed, else verified again), in order. */
  private async fromCacheFor(
    arch: string,
    pkgs: readonly InstalledPackage[],
  ): Promise<(VerifiedManifest | undefined)[]> {
    const cache = this.options.cache;
    if (cache === undefined) return [];
    const { manifest } = this.platformsOf(arch);
    return mapLimit(pkgs, CONCURRENCY, async (pkg) => {
      // Cache reads are synchronous: a turn of the event loop between them lets the hash pool
      // hand the threads their next batches (a chain of resolved promises would not).
      await nextTurn();
      const m = await cache
        .get(manifest, { name: pkg.name, version: pkg.version, arch }, this.options.keyring)
        .catch(() => undefined);
      if (m !== undefined && m.bytes.length > LARGE_MANIFEST_BYTES) collectGarbage();
      return m;
    });
  }

  /** Fetches, in groups, the manifests of `pkgs` and verifies each. */
  private async fetchAll(
    arch: string,
    pkgs: readonly InstalledPackage[],
    flipped: ReadonlyMap<InstalledPackage, VerifiedManifest>,
  ): Promise<Resolution[]> {
    const source = this.options.source;
    const out: Resolution[] = [];
    // In groups: an answer holds its manifests inline (base64 in JSON), so a smaller group keeps
    // the peak memory of a first run down; the groups of a chunk follow each other.
    for (let g = 0; g < pkgs.length; g += FETCH_GROUP) {
      const group = pkgs.slice(g, g + FETCH_GROUP);
      let fetched: (ManifestFetchResult | undefined)[] | undefined;
      if (source !== undefined && this.unavailable === undefined) {
        try {
          const lookup = this.platformsOf(arch).lookup;
          fetched = await askDistinct(group, arch, (items) => source.fetch(lookup, items));
        } catch (e) {
          this.lost(e);
        }
      }
      const asked = fetched !== undefined;
      const outcomes = await mapLimit(group, CONCURRENCY, (pkg, j) =>
        this.outcomeOf(pkg, arch, fetched?.[j], asked),
      );
      fetched = undefined;
      for (const [j, pkg] of group.entries()) {
        const cached = flipped.get(pkg);
        const r = this.settle(pkg, outcomes[j] as Resolution, cached);
        if (r.kind === 'verified' && r.manifest !== cached) await this.store(r.manifest);
        out.push(r);
      }
    }
    return out;
  }

  /** One fetched answer turned into a resolution (verifying the manifest offered). */
  private async outcomeOf(
    pkg: InstalledPackage,
    arch: string,
    r: ManifestFetchResult | undefined,
    asked: boolean,
  ): Promise<Resolution> {
    if (!asked) {
      return this.options.source === undefined
        ? { kind: 'unverified', pkg, reason: 'not-cached', why: 'offline, and not in the local cache' }
        : { kind: 'unverified', pkg, reason: 'server-unreachable' };
    }
    if (r?.newestVersion !== undefined) this.claims.set(pkg, r.newestVersion);
    if (r === undefined) return this.unverifiedBySource(pkg, { status: 'not-in-catalog' });
    if (r.status !== 'ok') return this.unverifiedBySource(pkg, r);
    // The answer it came in (its base64 text and parse) is garbage now: free it before a large
    // manifest's parse adds several times its size on top.
    const large = r.bytes.length > LARGE_MANIFEST_BYTES;
    if (large) collectGarbage();
    const verified = await this.verifying.run(r.bytes.length, () =>
      verifyFor(pkg, this.platformsOf(arch).manifest, r.bytes, r.signature, this.options),
    );
    // Verifying a large manifest leaves several times its size of garbage: collect it now.
    if (large) collectGarbage();
    return typeof verified === 'string'
      ? { kind: 'refused', pkg, reason: verified }
      : { kind: 'verified', pkg, manifest: verified };
  }

  /**
   * The resolution of a package whose cached manifest the source offered to replace (`cached`):
   * the new one when it verified, else the cached one, with the contradiction reported.
   */
  private settle(pkg: InstalledPackage, r: Resolution, cached: VerifiedManifest | undefined): Resolution {
    if (cached === undefined) return r;
    if (r.kind === 'verified') {
      this.notes.push(
        `${pkg.name} ${pkg.version}: the server now offers another signed manifest (${r.manifest.digest}) ` +
          `than the one cached (${cached.digest}); both verified, the new one is used`,
      );
      return r;
    }
    this.fromCache++;
    if (r.kind === 'unverified' && (r.reason === 'server-unreachable' || r.reason === 'not-cached')) {
      return { kind: 'verified', pkg, manifest: cached };
    }
    this.said.delete(pkg);
    const answered = r.kind === 'refused' ? `a manifest that was refused (${r.reason})` : r.reason;
    this.conflicts.push({
      class: 'server-conflict',
      package: pkg.name,
      arch: pkg.architecture,
      expected: cached.digest,
      actual: answered,
      detail:
        `${pkg.name} ${pkg.version}: the server offered another manifest than the verified one cached, ` +
        `then answered ${answered}; checked against the cached manifest`,
      failure: true,
    });
    return { kind: 'verified', pkg, manifest: cached };
  }

  private unverifiedBySource(
    pkg: InstalledPackage,
    said: { status: SaidStatus; deferred?: DeferredReason },
  ): Resolution {
    if (said.status !== 'pending') this.said.set(pkg, said.status);
    const why = said.deferred === undefined ? undefined : DEFERRED_WHY[said.deferred];
    return { kind: 'unverified', pkg, reason: said.status, ...(why === undefined ? {} : { why }) };
  }

  private async store(manifest: VerifiedManifest): Promise<void> {
    const cache = this.options.cache;
    if (cache === undefined) return;
    await cache
      .put(manifest, this.options.keyring)
      .then(() => this.stored++)
      .catch(() => undefined);
  }

  /** The source failed: unreachable is remembered (and noted); anything else is a bug. */
  private lost(e: unknown): void {
    if (!isUnavailable(e)) throw e;
    if (this.unavailable === undefined) this.notes.push(e.message);
    this.unavailable ??= e;
  }
}

/**
 * Asks about each distinct name/version of `list` once (a damaged database can list a package
 * twice, and a server refuses a lookup that repeats an item); the answers in `list`'s order.
 */
async function askDistinct<T>(
  list: readonly InstalledPackage[],
  arch: string,
  ask: (items: ManifestRequest[]) => Promise<T[]>,
): Promise<(T | undefined)[]> {
  const slot = new Map<string, number>();
  const items: ManifestRequest[] = [];
  const slots = list.map((p) => {
    const key = `${p.name}\0${p.version}`;
    let i = slot.get(key);
    if (i === undefined) {
      i = items.length;
      slot.set(key, i);
      items.push({ name: p.name, version: p.version, arch });
    }
    return i;
  });
  const answers = await ask(items);
  return slots.map((i) => answers[i]);
}

/**
 * Verifies a manifest offered for `pkg` on `platform` (its manifest platform): the signature
 * against the pinned keys, then that it is that package's manifest. Returns the verified
 * manifest, or why it was refused.
 */
export async function verifyFor(
  pkg: { name: string; version: string; architecture: string },
  platform: Platform,
  bytes: Uint8Array,
  signature: string,
  options: { keyring: TrustedKeyring; now?: Date },
): Promise<VerifiedManifest | string> {
  let manifest: VerifiedManifest;
  try {
    // The bytes were decoded for this call and are never changed: no copy (see adoptBytes).
    manifest = await verifyManifest(bytes, signature, options.keyring, {
      adoptBytes: true,
      ...(options.now ? { now: options.now } : {}),
    });
  } catch (e) {
    if (isSysattestError(e)) return `${e.code}: ${e.message}`;
    throw e;
  }
  const m = manifest.content;
  const platformId = formatPlatform(platform);
  if (
    m.platform !== platformId ||
    m.package.name !== pkg.name ||
    m.package.version !== pkg.version ||
    m.package.architecture !== pkg.architecture
  ) {
    return (
      `MANIFEST_MISMATCH: asked for ${pkg.name} ${pkg.version} (${platformId}), ` +
      `got a manifest for ${m.package.name} ${m.package.version} (${m.platform})`
    );
  }
  return manifest;
}

/** A manifest this large is followed by a garbage collection (see collectGarbage). */
const LARGE_MANIFEST_BYTES = 2 * 1024 * 1024;

/** Packages per fetch of manifests with their bytes inline (a first run). */
const FETCH_GROUP = 32;

/** Bytes of manifests verified at once: a parse holds several times its document's size. */
const VERIFY_BUDGET_BYTES = 8 * 1024 * 1024;

/** Packages per digests-only lookup (see statusesOf). */
const STATUS_BATCH = 2000;

/** Manifests verified (or cache entries read) at once: verification is mostly CPU, reads are I/O. */
const CONCURRENCY = 8;

/**
 * At most `capacity` units of work at once, by weight; one heavier than the capacity runs alone.
 * Used so that several large manifests are not parsed and validated at the same time.
 */
class WeightedLimit {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly capacity: number) {}

  async run<T>(weight: number, fn: () => Promise<T>): Promise<T> {
    const w = Math.min(Math.max(0, weight), this.capacity);
    while (this.used + w > this.capacity) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used += w;
    try {
      return await fn();
    } finally {
      this.used -= w;
      for (const wake of this.waiting.splice(0)) wake();
    }
  }
}

/** `fn` over `items` with at most `limit` running at once; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
