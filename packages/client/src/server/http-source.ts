import { z } from 'zod';
import {
  CATALOG_LIMITS,
  MANIFEST_LIMITS,
  MAX_SIGNATURE_BYTES,
  formatPlatform,
  type Platform,
} from '@sysattest/core';
import type {
  DeferredReason,
  ManifestFetchResult,
  ManifestRequest,
  ManifestSource,
  ManifestStatus,
  OfferedCatalog,
} from '../verify/source.js';
import { ServerClient, ServerError } from './http-client.js';

/**
 * Manifests from a sysattest server (`POST /v1/lookup`), in batches. Everything it returns is
 * untrusted until verify-machine checks it against the pinned keys; this class only checks the
 * answer's shape and sizes.
 */
const base64 = (maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4 + 4)
    .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

const text = z.string().min(1).max(256);
const snapshotInfo = z.object({
  platform: z.string().max(200),
  digest: z.string().regex(/^[0-9a-f]{64}$/),
  generatedAt: z.string().max(64),
});

const lookupItem = z.object({
  name: text,
  version: text,
  arch: text,
  status: z.enum(['ok', 'pending', 'not-in-catalog', 'unknown-platform']),
  deferred: z.enum(['quota', 'token-required']).optional(),
  newestVersion: text.optional(),
  manifest: z
    .object({
      digest: z.string().regex(/^[0-9a-f]{64}$/),
      // Absent when asked with documents: false.
      bytes: base64(MANIFEST_LIMITS.maxBytes).optional(),
      signature: z.string().min(1).max(MAX_SIGNATURE_BYTES).optional(),
    })
    .optional(),
});

const lookupResponse = z.object({
  platform: z.string().max(200),
  catalog: snapshotInfo.optional(),
  foreignCatalogs: z.array(snapshotInfo).max(256).optional(),
  items: z.array(lookupItem),
});

const catalogResponse = z.object({
  catalog: base64(CATALOG_LIMITS.maxBytes),
  signature: z.string().min(1).max(MAX_SIGNATURE_BYTES),
});

const manifestResponse = z.object({
  manifest: base64(MANIFEST_LIMITS.maxBytes),
  signature: z.string().min(1).max(MAX_SIGNATURE_BYTES),
});

const reverseResponse = z.object({
  results: z.array(
    z.object({
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      hits: z
        .array(
          z.object({
            platform: z.string().max(200),
            name: text,
            version: text,
            arch: text,
            path: z.string().max(4096),
          }),
        )
        .max(100_000),
      truncated: z.literal(true).optional(),
    }),
  ),
});

const keysResponse = z.object({
  keys: z
    .array(
      z.object({
        fingerprint: z.string().regex(/^[0-9A-F]{40}$/),
        armored: z
          .string()
          .min(1)
          .max(1024 * 1024),
      }),
    )
    .max(1000),
});

export interface ReverseHit {
  platform: string;
  name: string;
  version: string;
  arch: string;
  path: string;
}

/** A lookup item that is not `ok`, with why a `pending` one was not queued. */
function notOk(
  status: 'pending' | 'not-in-catalog' | 'unknown-platform',
  deferred: DeferredReason | undefined,
): { status: 'pending'; deferred?: DeferredReason } | { status: 'not-in-catalog' | 'unknown-platform' } {
  if (status !== 'pending') return { status };
  return deferred === undefined ? { status } : { status, deferred };
}

export class HttpManifestSource implements ManifestSource {
  private readonly snapshots = new Map<string, z.infer<typeof snapshotInfo>>();
  /** Lookups made (for tests and the "almost no network" check). */
  lookups = 0;

  constructor(readonly client: ServerClient) {}

  async fetch(platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestFetchResult[]> {
    const answer = await this.lookup(platform, items, true);
    const out: ManifestFetchResult[] = [];
    for (const r of answer) {
      const newest = r.newestVersion === undefined ? {} : { newestVersion: r.newestVersion };
      const m = r.manifest;
      if (r.status !== 'ok') out.push({ ...notOk(r.status, r.deferred), ...newest });
      else if (m === undefined)
        throw new ServerError('SERVER_BAD_RESPONSE', `the server said ok for ${r.name} without a manifest`);
      else if (m.bytes !== undefined && m.signature !== undefined)
        out.push({ status: 'ok', bytes: Buffer.from(m.bytes, 'base64'), signature: m.signature, ...newest });
      else out.push({ ...(await this.manifestByDigest(m.digest)), ...newest });
    }
    return out;
  }

  /**
   * A manifest the lookup named by digest only (a server keeps an answer's size bounded and
   * names the rest): `GET /v1/manifests/{digest}`. Not there is `not-in-catalog`, which the
   * caller holds against the signed catalogs like any such answer.
   */
  private async manifestByDigest(digest: string): Promise<ManifestFetchResult> {
    const doc = await this.client.request('GET', `/v1/manifests/${digest}`, manifestResponse, {
      allow404: true,
      maxBytes: Math.ceil(MANIFEST_LIMITS.maxBytes / 3) * 4 + 1024 * 1024,
    });
    if (doc === undefined) return { status: 'not-in-catalog' };
    return { status: 'ok', bytes: Buffer.from(doc.manifest, 'base64'), signature: doc.signature };
  }

  /**
   * Each package's state and, for those with a manifest, only its digest (`documents: false`): what
   * a client with a cache asks first, every run (it also names the catalog snapshots, so
   * `outdated` is checked on runs that fetch no manifest at all).
   */
  async statuses(platform: Platform, items: readonly ManifestRequest[]): Promise<ManifestStatus[]> {
    const answer = await this.lookup(platform, items, false);
    return answer.map((r) => {
      const newest = r.newestVersion === undefined ? {} : { newestVersion: r.newestVersion };
      if (r.status !== 'ok') return { ...notOk(r.status, r.deferred), ...newest };
      if (r.manifest === undefined) {
        throw new ServerError('SERVER_BAD_RESPONSE', `the server said ok for ${r.name} without a digest`);
      }
      return { status: 'ok', digest: r.manifest.digest, ...newest };
    });
  }

  private async lookup(
    platform: Platform,
    items: readonly ManifestRequest[],
    documents: boolean,
  ): Promise<z.infer<typeof lookupItem>[]> {
    if (items.length === 0) return [];
    this.lookups++;
    const answer = (await this.client.request('POST', '/v1/lookup', lookupResponse, {
      body: {
        platform: formatPlatform(platform),
        items: items.map(({ name, version, arch }) => ({ name, version, arch })),
        ...(documents ? {} : { documents: false }),
      },
    })) as z.infer<typeof lookupResponse>;
    if (answer.items.length !== items.length) {
      throw new ServerError(
        'SERVER_BAD_RESPONSE',
        `the server ${this.client.where} answered ${answer.items.length} items for ${items.length} asked`,
      );
    }
    for (const s of [answer.catalog, ...(answer.foreignCatalogs ?? [])]) {
      if (s !== undefined) this.snapshots.set(s.platform, s);
    }
    answer.items.forEach((r, i) => {
      const asked = items[i] as ManifestRequest;
      if (r.name !== asked.name || r.version !== asked.version || r.arch !== asked.arch) {
        throw new ServerError(
          'SERVER_BAD_RESPONSE',
          `the server ${this.client.where} answered item ${i} for ${r.name} ${r.version} (${r.arch}), ` +
            `not ${asked.name} ${asked.version} (${asked.arch})`,
        );
      }
    });
    return answer.items;
  }

  /** The catalog snapshots the lookups so far named: platform id → digest (nothing fetched). */
  snapshotDigests(): Map<string, string> {
    return new Map([...this.snapshots].map(([platform, s]) => [platform, s.digest]));
  }

  /** One catalog snapshot by digest (`GET /v1/catalogs/{digest}`), unverified; undefined when the server lacks it. */
  async catalog(digest: string): Promise<OfferedCatalog | undefined> {
    const doc = await this.client.request('GET', `/v1/catalogs/${digest}`, catalogResponse, {
      allow404: true,
      maxBytes: Math.ceil(CATALOG_LIMITS.maxBytes / 3) * 4 + 1024 * 1024,
    });
    return doc === undefined
      ? undefined
      : { digest, bytes: Buffer.from(doc.catalog, 'base64'), signature: doc.signature };
  }

  /** Where each content hash is known from (`POST /v1/reverse-lookup`), in batches of 10,000. */
  async reverseLookup(
    hashes: readonly string[],
  ): Promise<Map<string, { hits: ReverseHit[]; truncated: boolean }>> {
    const out = new Map<string, { hits: ReverseHit[]; truncated: boolean }>();
    const unique = [...new Set(hashes)];
    for (let i = 0; i < unique.length; i += 10_000) {
      const batch = unique.slice(i, i + 10_000);
      const answer = (await this.client.request('POST', '/v1/reverse-lookup', reverseResponse, {
        body: { sha256: batch },
      })) as z.infer<typeof reverseResponse>;
      for (const r of answer.results) out.set(r.sha256, { hits: r.hits, truncated: r.truncated === true });
    }
    return out;
  }
}

/** The keys a server offers (`GET /v1/keys`). Never trusted as such: `trust add --from-server` pins one only by fingerprint. */
export async function fetchServerKeys(
  client: ServerClient,
): Promise<{ fingerprint: string; armored: string }[]> {
  const answer = await client.request('GET', '/v1/keys', keysResponse, {
    allow404: true,
    maxBytes: 16 * 1024 * 1024,
  });
  if (answer === undefined) {
    throw new ServerError(
      'SERVER_REFUSED',
      `the server ${client.where} does not offer its keys (GET /v1/keys)`,
    );
  }
  return answer.keys;
}
