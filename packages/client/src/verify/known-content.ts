import {
  formatPlatform,
  parsePlatform,
  type FileObservation,
  type Platform,
  type ReverseLookupHit,
  type TrustedKeyring,
  type VerifiedManifest,
} from '@sysattest/core';
import type { ManifestCache } from '../cache/manifest-cache.js';
import { isArchIndependent } from './local-database.js';
import { isUnavailable, type ManifestSource } from './source.js';
import { verifyFor } from './trust-resolution.js';
import type { ContentClaim } from './unowned.js';

/**
 * Whether an unowned file's content is "known": the server's reverse lookup names package
 * versions and paths holding the same sha256, but that is an unsigned claim. A claim counts only
 * when the manifest it names is fetched, verified against the pinned keys, and lists that path
 * with that sha256. At most MAX_MANIFESTS manifests are fetched per run (the first hits of each
 * file); a claim beyond them stays an unbacked hint.
 */
export type { ReverseLookupHit };

export type ReverseLookup = (
  hashes: readonly string[],
) => Promise<Map<string, { hits: ReverseLookupHit[]; truncated: boolean }>>;

export interface KnownContentOptions {
  reverseLookup?: ReverseLookup;
  source?: ManifestSource;
  cache?: ManifestCache;
  keyring: TrustedKeyring;
  now?: Date;
  /** The machine's platform: the lookup platform of an arch-independent hit. */
  primary: Platform;
  notes: string[];
}

const MAX_MANIFESTS = 64;
const HITS_PER_FILE = 3;

/** Claims for the regular files observed, by sha256; undefined when nothing was looked up. */
export async function knownContent(
  observations: readonly FileObservation[],
  options: KnownContentOptions,
): Promise<Map<string, ContentClaim | null> | undefined> {
  const hashes = observations.flatMap((o) => (o.status === 'ok' && o.type === 'file' ? [o.sha256] : []));
  if (hashes.length === 0) return new Map();
  if (options.reverseLookup === undefined) {
    options.notes.push('unowned files not looked up: no server');
    return undefined;
  }
  let found: Awaited<ReturnType<ReverseLookup>>;
  try {
    found = await options.reverseLookup(hashes);
  } catch (e) {
    if (!isUnavailable(e)) throw e;
    options.notes.push(`unowned files not looked up: ${e.message}`);
    return undefined;
  }
  const manifests = await backingManifests(found, options);
  const claims = new Map<string, ContentClaim | null>();
  for (const [sha256, { hits, truncated }] of found) {
    if (hits.length === 0) continue;
    const first = hits[0] as ReverseLookupHit;
    const more = hits.length > 1 ? ` and ${hits.length - 1}${truncated ? '+' : ''} more` : '';
    const claim: ContentClaim = { claimed: `${describe(first)}${more}` };
    const backed = hits
      .slice(0, HITS_PER_FILE)
      .find((h) => manifests.get(keyOf(h))?.has(`${h.path}\0${sha256}`));
    if (backed !== undefined) claim.backedBy = describe(backed);
    claims.set(sha256, claim);
  }
  return claims;
}

function describe(h: ReverseLookupHit): string {
  return `${h.path} in ${h.name} ${h.version} (${h.platform})`;
}

function keyOf(h: ReverseLookupHit): string {
  return `${h.platform}\0${h.name}\0${h.version}\0${h.arch}`;
}

/**
 * The manifests the first hits name, each verified, as sets of `path\0sha256` of their file
 * entries (only the hashes asked about are kept).
 */
async function backingManifests(
  found: Map<string, { hits: ReverseLookupHit[] }>,
  options: KnownContentOptions,
): Promise<Map<string, Set<string>>> {
  const wanted = new Map<string, ReverseLookupHit>();
  for (const { hits } of found.values())
    for (const h of hits.slice(0, HITS_PER_FILE)) if (wanted.size < MAX_MANIFESTS) wanted.set(keyOf(h), h);
  const out = new Map<string, Set<string>>();
  for (const [key, hit] of wanted) {
    const manifest = await verifiedManifestOf(hit, options).catch((e: unknown) => {
      if (isUnavailable(e)) return undefined;
      throw e;
    });
    if (manifest === undefined) continue;
    const entries = new Set<string>();
    for (const e of manifest.content.entries)
      if ((e.type === 'file' || e.type === 'hardlink') && found.has(e.sha256))
        entries.add(`${e.path}\0${e.sha256}`);
    out.set(key, entries);
  }
  return out;
}

/** The manifest a hit names: from the cache, else fetched; verified either way. */
async function verifiedManifestOf(
  hit: ReverseLookupHit,
  options: KnownContentOptions,
): Promise<VerifiedManifest | undefined> {
  let manifestPlatform: Platform;
  try {
    manifestPlatform = parsePlatform(hit.platform);
  } catch {
    return undefined;
  }
  if (manifestPlatform.arch !== hit.arch) return undefined;
  const pkg = { name: hit.name, version: hit.version, architecture: hit.arch };
  const cached = await options.cache
    ?.get(manifestPlatform, { name: hit.name, version: hit.version, arch: hit.arch }, options.keyring)
    .catch(() => undefined);
  if (cached !== undefined) return cached;
  const lookup: Platform = {
    ...manifestPlatform,
    arch: isArchIndependent(hit.arch) ? options.primary.arch : hit.arch,
  };
  const [r] =
    (await options.source?.fetch(lookup, [{ name: hit.name, version: hit.version, arch: hit.arch }])) ?? [];
  if (r?.status !== 'ok') return undefined;
  const v = await verifyFor(pkg, manifestPlatform, r.bytes, r.signature, options);
  if (typeof v === 'string') {
    options.notes.push(
      `the manifest the server named for ${hit.name} ${hit.version} (${formatPlatform(manifestPlatform)}) was refused: ${v}`,
    );
    return undefined;
  }
  return v;
}
