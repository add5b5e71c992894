import {
  API_ROUTES,
  CATALOG_LIMITS,
  MANIFEST_LIMITS,
  base64Length,
  catalogDocumentSchema,
  formatPlatform,
  lookupAnswerSchema,
  manifestDocumentSchema,
  publicKeysAnswerSchema,
  reverseLookupAnswerSchema,
  routePath,
  type LookupAnswer,
  type LookupAnswerItem,
  type LookupRequest,
  type Platform,
  type ReverseLookupAnswer,
  type ReverseLookupHit,
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
 * answer's shape and sizes, with the protocol's schemas (core `protocol/`).
 */

/** A document fetched by digest: its base64 with room for the JSON around it. */
const documentAnswerBytes = (maxBytes: number): number => base64Length(maxBytes) + 1024 * 1024;

/** A lookup item that is not `ok`, with why a `pending` one was not queued. */
function notOk(
  status: 'pending' | 'not-in-catalog' | 'unknown-platform',
  deferred: DeferredReason | undefined,
): { status: 'pending'; deferred?: DeferredReason } | { status: 'not-in-catalog' | 'unknown-platform' } {
  if (status !== 'pending') return { status };
  return deferred === undefined ? { status } : { status, deferred };
}

export class HttpManifestSource implements ManifestSource {
  private readonly snapshots = new Map<string, { digest: string }>();
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
    const doc = await this.client.request(
      'GET',
      routePath(API_ROUTES.manifest, { digest }),
      manifestDocumentSchema,
      {
        allow404: true,
        maxBytes: documentAnswerBytes(MANIFEST_LIMITS.maxBytes),
      },
    );
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
  ): Promise<LookupAnswerItem[]> {
    if (items.length === 0) return [];
    this.lookups++;
    const body: LookupRequest = {
      platform: formatPlatform(platform),
      items: items.map(({ name, version, arch }) => ({ name, version, arch })),
      ...(documents ? {} : { documents: false }),
    };
    const answer = (await this.client.request('POST', API_ROUTES.lookup, lookupAnswerSchema, {
      body,
    })) as LookupAnswer;
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
    const doc = await this.client.request(
      'GET',
      routePath(API_ROUTES.catalog, { digest }),
      catalogDocumentSchema,
      {
        allow404: true,
        maxBytes: documentAnswerBytes(CATALOG_LIMITS.maxBytes),
      },
    );
    return doc === undefined
      ? undefined
      : { digest, bytes: Buffer.from(doc.catalog, 'base64'), signature: doc.signature };
  }

  /** Where each content hash is known from (`POST /v1/reverse-lookup`), in batches of 10,000. */
  async reverseLookup(
    hashes: readonly string[],
  ): Promise<Map<string, { hits: ReverseLookupHit[]; truncated: boolean }>> {
    const out = new Map<string, { hits: ReverseLookupHit[]; truncated: boolean }>();
    const unique = [...new Set(hashes)];
    for (let i = 0; i < unique.length; i += 10_000) {
      const batch = unique.slice(i, i + 10_000);
      const answer = (await this.client.request('POST', API_ROUTES.reverseLookup, reverseLookupAnswerSchema, {
        body: { sha256: batch },
      })) as ReverseLookupAnswer;
      for (const r of answer.results) out.set(r.sha256, { hits: r.hits, truncated: r.truncated === true });
    }
    return out;
  }
}

/** The keys a server offers (`GET /v1/keys`). Never trusted as such: `trust add --from-server` pins one only by fingerprint. */
export async function fetchServerKeys(
  client: ServerClient,
): Promise<{ fingerprint: string; armored: string }[]> {
  const answer = await client.request('GET', API_ROUTES.keys, publicKeysAnswerSchema, {
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
