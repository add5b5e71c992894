import { ARCH_INDEPENDENT, isValidPlatformComponent } from '@sysattest/core';
import { sql, type Transaction } from 'kysely';
import { latestSnapshotRow, type CatalogSnapshotInfo } from './catalogs.js';
import {
  chunks,
  inTransaction,
  iso,
  reading,
  rowsPerStatement,
  type Db,
  type StoreContext,
} from './context.js';
import type { Database } from './database.js';
import { enqueueJobs, type JobReason, type JobState } from './jobs.js';
import { ensurePlatformIds, findPlatformIds, platformOf } from './platforms.js';
import { StoreError } from './store-error.js';

/** One installed package a client asks about. */
export interface LookupItem {
  name: string;
  version: string;
  arch: string;
}

export type LookupStatus = 'ok' | 'pending' | 'not-in-catalog' | 'unknown-platform';

interface LookupItemBase extends LookupItem {
  /**
   * Newest version of this package (same name and arch) in the latest catalog snapshot of its
   * platform; absent when that snapshot does not list the package or there is no catalog.
   */
  newestVersion?: string;
}

/** The answer for one item. */
export type LookupItemResult =
  /** A manifest is stored: its exact bytes and signature (omitted with includeDocuments: false). */
  | (LookupItemBase & { status: 'ok'; manifest: { digest: string; bytes?: Buffer; signature?: string } })
  /** In the catalog, no manifest yet: a generation job exists (queued by this or an earlier request). */
  | (LookupItemBase & { status: 'pending'; job: { id: number; state: JobState } })
  /**
   * The platform's catalog does not offer this version, so nothing is queued. `withdrawnAt`: the
   * repository offered it once and dropped it then (no manifest was made while it was offered).
   */
  | (LookupItemBase & { status: 'not-in-catalog'; withdrawnAt?: string })
  /** The server has no catalog for the item's platform. */
  | (LookupItemBase & { status: 'unknown-platform' });

export interface LookupResult {
  platform: string;
  /** The platform's latest catalog snapshot, which the newest versions and statuses come from. */
  catalog?: CatalogSnapshotInfo;
  /** Other architectures' snapshots used, for items of a foreign architecture (multiarch). */
  foreignCatalogs: CatalogSnapshotInfo[];
  /** One result per item given, in the same order. */
  items: LookupItemResult[];
}

export interface LookupOptions {
  /** Return manifest bytes and signatures (default true); false returns digests only. */
  includeDocuments?: boolean;
  /** Record the packages asked about as tracked (default true). */
  track?: boolean;
}

export const LOOKUP_LIMITS = {
  maxItems: 100_000,
  maxFieldLength: 256,
  maxHashes: 100_000,
  defaultHitsPerHash: 1000,
} as const;

const SHA256_HEX = /^[0-9a-f]{64}$/;

function checkItems(items: unknown): asserts items is LookupItem[] {
  if (!Array.isArray(items)) throw new StoreError('INVALID', 'lookup items must be an array');
  if (items.length > LOOKUP_LIMITS.maxItems) {
    throw new StoreError(
      'INVALID',
      `at most ${LOOKUP_LIMITS.maxItems} items per lookup, got ${items.length}`,
    );
  }
  items.forEach((item: unknown, i) => {
    const it = item as Partial<Record<keyof LookupItem, unknown>> | null;
    for (const field of ['name', 'version', 'arch'] as const) {
      const v = it?.[field];
      if (typeof v !== 'string' || v.length === 0 || v.length > LOOKUP_LIMITS.maxFieldLength) {
        throw new StoreError(
          'INVALID',
          `lookup item ${i}: ${field} must be a string of 1 to ${LOOKUP_LIMITS.maxFieldLength} characters`,
        );
      }
    }
  });
}

/**
 * A batch of composite keys as a derived table, `(values (?, ?, ?), …) as k`, whose columns both
 * databases name column1, column2, …. Joined to an indexed table, it makes SQLite and PostgreSQL
 * seek the index once per key. (A row-value `in (values …)` spanning two joined tables made
 * SQLite compare every key with every row.)
 */
function keyTable(rows: readonly (readonly string[])[]) {
  return sql<{ column1: string; column2: string; column3: string }>`(values ${sql.join(
    rows.map((r) => sql`(${sql.join(r)})`),
  )})`.as('k');
}

/**
 * The manifest bytes as `document`. PostgreSQL sends bytea hex-encoded, twice the size, to be
 * decoded in JavaScript: for a 750-package machine that was most of the lookup's time. A manifest
 * is UTF-8 JSON (core refuses anything else), so on PostgreSQL it travels as text
 * (`convert_from`, which checks the encoding) and Buffer.from(text) gives back the same bytes.
 */
function documentBytes(dialect: StoreContext['dialect']) {
  return dialect === 'postgres'
    ? sql<string>`convert_from(${sql.ref('m.bytes')}, 'UTF8')`.as('document')
    : sql<Buffer>`${sql.ref('m.bytes')}`.as('document');
}

function groupBy<T, K>(items: Iterable<T>, keyOf: (t: T) => K | undefined): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = keyOf(item);
    if (k === undefined) continue;
    const list = out.get(k);
    if (list === undefined) out.set(k, [item]);
    else list.push(item);
  }
  return out;
}

const itemKey = (i: LookupItem): string => `${i.name}\u0000${i.version}\u0000${i.arch}`;
const packageKey = (platformId: number, name: string, arch: string): string =>
  `${platformId}\u0000${name}\u0000${arch}`;

/** Where an item's manifest and catalog entry live, relative to the platform asked about. */
interface Placement {
  item: LookupItem;
  key: string;
  /** `distro/release/arch` of the item's manifest (undefined: the arch is no platform component). */
  manifestPlatform: string | undefined;
  /** The platform whose catalog lists it: the one asked about for `all` packages. */
  catalogPlatform: string | undefined;
}

function place(platform: string, item: LookupItem): Placement {
  const { distro, release } = platformOf(platform);
  const manifestPlatform = isValidPlatformComponent(item.arch)
    ? `${distro}/${release}/${item.arch}`
    : undefined;
  const catalogPlatform = ARCH_INDEPENDENT.has(item.arch) ? platform : manifestPlatform;
  return { item, key: itemKey(item), manifestPlatform, catalogPlatform };
}

interface Facts {
  platformIds: Map<string, number>;
  manifests: Map<string, { digest: string; bytes?: Buffer; signature?: string }>;
  snapshots: Map<number, CatalogSnapshotInfo>;
  packages: Map<string, { newest: string | null }>;
  /** Catalog entries by catalog platform id + item key. */
  entries: Map<string, { withdrawnAt: string | null }>;
  jobs: Map<string, { id: number; state: JobState }>;
  tracked: Set<string>;
}

/**
 * Answers a client's whole machine in one call: for each item `ok` (manifest bytes + signature),
 * `pending` (in the catalog, no manifest: a job is queued once, however many clients ask),
 * `not-in-catalog` (nothing queued) or `unknown-platform`; with newest versions and the catalog
 * snapshot they come from. Architecture-independent items (`all`) are looked up in the asked
 * platform's catalog and on the release's `…/all` manifest platform; an item of another
 * architecture (multiarch) on that architecture's platform.
 *
 * Reads are batched: a few thousand composite keys per statement, as a `values` table joined to
 * the indexed tables (see keyTable). The only writes — new jobs and newly tracked packages — happen in one transaction, and only when
 * there is something new to write, so a machine already known costs reads alone.
 */
export async function lookup(
  ctx: StoreContext,
  platform: string,
  items: readonly LookupItem[],
  options: LookupOptions = {},
): Promise<LookupResult> {
  return lookupWith(ctx, platform, items, {
    includeDocuments: options.includeDocuments ?? true,
    track: options.track ?? true,
    reason: 'client-request',
  });
}

export async function lookupWith(
  ctx: StoreContext,
  platform: string,
  items: readonly LookupItem[],
  options: { includeDocuments: boolean; track: boolean; reason: JobReason },
): Promise<LookupResult> {
  platformOf(platform);
  checkItems(items);
  const placements = new Map<string, Placement>();
  for (const item of items) {
    const p = place(platform, item);
    if (!placements.has(p.key)) placements.set(p.key, p);
  }
  const facts = await reading(() =>
    readFacts(ctx, platform, [...placements.values()], options.includeDocuments),
  );

  // What the answers need written: jobs for pending items that have none, tracking of new packages.
  const newJobs: Placement[] = [];
  const newTracked = new Map<number, Set<string>>();
  for (const p of placements.values()) {
    const cpId = p.catalogPlatform === undefined ? undefined : facts.platformIds.get(p.catalogPlatform);
    if (cpId === undefined || !facts.snapshots.has(cpId)) continue;
    const pkg = facts.packages.get(packageKey(cpId, p.item.name, p.item.arch));
    if (pkg === undefined) continue;
    if (options.track && !facts.tracked.has(`${cpId}\u0000${p.item.name}`)) {
      const names = newTracked.get(cpId) ?? new Set<string>();
      names.add(p.item.name);
      newTracked.set(cpId, names);
    }
    const entry = facts.entries.get(`${cpId}\u0000${p.key}`);
    if (
      !facts.manifests.has(p.key) &&
      entry !== undefined &&
      entry.withdrawnAt === null &&
      !facts.jobs.has(p.key)
    ) {
      newJobs.push(p);
    }
  }
  if (newJobs.length > 0 || newTracked.size > 0) {
    const written = await inTransaction(ctx, (trx) =>
      writeRequests(trx, ctx, newJobs, newTracked, options.reason),
    );
    for (const [k, job] of written.jobs) facts.jobs.set(k, job);
    // Manifests uploaded while we were reading: answer with them.
    const byPlatform = groupBy(written.stored, (p) => facts.platformIds.get(p.manifestPlatform as string));
    for (const [platformId, group] of byPlatform) {
      const found = await reading(() =>
        findManifests(ctx.db, ctx.dialect, platformId, group, options.includeDocuments),
      );
      for (const [k, m] of found) facts.manifests.set(k, m);
    }
  }

  const results = items.map((item) => answer(facts, placements.get(itemKey(item)) as Placement));
  const cpId = facts.platformIds.get(platform);
  const catalog = cpId === undefined ? undefined : facts.snapshots.get(cpId);
  return {
    platform,
    ...(catalog === undefined ? {} : { catalog }),
    foreignCatalogs: [...facts.snapshots.entries()].filter(([id]) => id !== cpId).map(([, s]) => s),
    items: results,
  };
}

function answer(facts: Facts, p: Placement): LookupItemResult {
  const { name, version, arch } = p.item;
  const cpId = p.catalogPlatform === undefined ? undefined : facts.platformIds.get(p.catalogPlatform);
  const known = cpId !== undefined && facts.snapshots.has(cpId);
  const newest = known ? facts.packages.get(packageKey(cpId, name, arch))?.newest : undefined;
  const base: LookupItemBase = { name, version, arch, ...(newest ? { newestVersion: newest } : {}) };
  const manifest = facts.manifests.get(p.key);
  if (manifest !== undefined) return { ...base, status: 'ok', manifest };
  if (!known) return { ...base, status: 'unknown-platform' };
  const entry = facts.entries.get(`${cpId}\u0000${p.key}`);
  const job = facts.jobs.get(p.key);
  if (entry !== undefined && entry.withdrawnAt === null && job !== undefined) {
    return { ...base, status: 'pending', job };
  }
  return {
    ...base,
    status: 'not-in-catalog',
    ...(entry?.withdrawnAt ? { withdrawnAt: entry.withdrawnAt } : {}),
  };
}

async function readFacts(
  ctx: StoreContext,
  platform: string,
  placements: Placement[],
  includeDocuments: boolean,
): Promise<Facts> {
  const { db } = ctx;
  const names = new Set<string>([platform]);
  for (const p of placements) {
    if (p.manifestPlatform !== undefined) names.add(p.manifestPlatform);
    if (p.catalogPlatform !== undefined) names.add(p.catalogPlatform);
  }
  const platformIds = await findPlatformIds(db, names);
  const facts: Facts = {
    platformIds,
    manifests: new Map(),
    snapshots: new Map(),
    packages: new Map(),
    entries: new Map(),
    jobs: new Map(),
    tracked: new Set(),
  };

  // Manifests, per manifest platform.
  const byManifestPlatform = groupBy(placements, (p) =>
    p.manifestPlatform === undefined ? undefined : platformIds.get(p.manifestPlatform),
  );
  for (const [platformId, group] of byManifestPlatform) {
    for (const [k, m] of await findManifests(db, ctx.dialect, platformId, group, includeDocuments)) {
      facts.manifests.set(k, m);
    }
  }

  // Catalogs, per catalog platform that has a snapshot.
  const byCatalogPlatform = groupBy(placements, (p) =>
    p.catalogPlatform === undefined ? undefined : platformIds.get(p.catalogPlatform),
  );
  const idToName = new Map([...platformIds].map(([n, id]) => [id, n]));
  for (const [platformId, group] of byCatalogPlatform) {
    const snapshot = await latestSnapshotRow(db, platformId);
    if (snapshot === undefined) continue;
    facts.snapshots.set(platformId, {
      id: snapshot.id,
      platform: idToName.get(platformId) as string,
      digest: snapshot.digest,
      generatedAt: snapshot.generated_at,
      signerFingerprint: snapshot.signer_fingerprint,
      packageCount: snapshot.package_count,
      ingestedAt: snapshot.ingested_at,
    });

    const packages = [...new Map(group.map((p) => [`${p.item.name}\u0000${p.item.arch}`, p.item])).values()];
    for (const batch of chunks(packages, rowsPerStatement(2))) {
      const rows = await db
        .selectFrom(keyTable(batch.map((i) => [i.name, i.arch])))
        .innerJoin('catalog_packages as p', (j) =>
          j
            .on('p.platform_id', '=', platformId)
            .onRef('p.name', '=', 'k.column1')
            .onRef('p.arch', '=', 'k.column2'),
        )
        .select(['p.name', 'p.arch', 'p.newest_version'])
        .execute();
      for (const r of rows)
        facts.packages.set(packageKey(platformId, r.name, r.arch), { newest: r.newest_version });
    }

    const wanted = group.filter(
      (p) =>
        !facts.manifests.has(p.key) && facts.packages.has(packageKey(platformId, p.item.name, p.item.arch)),
    );
    for (const batch of chunks(wanted, rowsPerStatement(3))) {
      const rows = await db
        .selectFrom(keyTable(batch.map((p) => [p.item.name, p.item.arch, p.item.version])))
        .innerJoin('catalog_packages as p', (j) =>
          j
            .on('p.platform_id', '=', platformId)
            .onRef('p.name', '=', 'k.column1')
            .onRef('p.arch', '=', 'k.column2'),
        )
        .innerJoin('catalog_entries as e', (j) =>
          j.onRef('e.package_id', '=', 'p.id').onRef('e.version', '=', 'k.column3'),
        )
        .select(['p.name', 'p.arch', 'e.version', 'e.withdrawn_at'])
        .execute();
      for (const r of rows)
        facts.entries.set(`${platformId}\u0000${itemKey(r)}`, { withdrawnAt: r.withdrawn_at });
    }

    const found = [...new Set(group.map((p) => p.item.name))];
    for (const batch of chunks(found, rowsPerStatement(1))) {
      const rows = await db
        .selectFrom('tracked_packages')
        .select('name')
        .where('platform_id', '=', platformId)
        .where('source', '=', 'client-request')
        .where('name', 'in', batch)
        .execute();
      for (const r of rows) facts.tracked.add(`${platformId}\u0000${r.name}`);
    }
  }

  // Jobs of the items that could be pending (in a catalog, no manifest), per manifest platform.
  const candidates = placements.filter((p) => {
    const cpId = p.catalogPlatform === undefined ? undefined : platformIds.get(p.catalogPlatform);
    return cpId !== undefined && facts.entries.has(`${cpId}\u0000${p.key}`);
  });
  for (const [targetId, group] of groupBy(candidates, (p) => platformIds.get(p.manifestPlatform as string))) {
    for (const [k, job] of await findJobs(db, targetId, group)) facts.jobs.set(k, job);
  }
  return facts;
}

/** The stored manifests of these items on platform `platformId`, by item key. */
async function findManifests(
  db: Db,
  dialect: StoreContext['dialect'],
  platformId: number,
  placements: readonly Placement[],
  includeDocuments: boolean,
): Promise<Map<string, { digest: string; bytes?: Buffer; signature?: string }>> {
  const found = new Map<string, { digest: string; bytes?: Buffer; signature?: string }>();
  for (const batch of chunks(placements, rowsPerStatement(3))) {
    const rows = await db
      .selectFrom(keyTable(batch.map((p) => [p.item.name, p.item.version, p.item.arch])))
      .innerJoin('manifests as m', (j) =>
        j
          .on('m.platform_id', '=', platformId)
          .onRef('m.name', '=', 'k.column1')
          .onRef('m.version', '=', 'k.column2')
          .onRef('m.arch', '=', 'k.column3'),
      )
      .select(['m.name', 'm.version', 'm.arch', 'm.digest'])
      .$if(includeDocuments, (q) => q.select([documentBytes(dialect), 'm.signature']))
      .execute();
    for (const r of rows) {
      found.set(itemKey(r), {
        digest: r.digest,
        ...(includeDocuments
          ? { bytes: Buffer.from(r.document as Buffer | string), signature: r.signature as string }
          : {}),
      });
    }
  }
  return found;
}

/** The jobs of these items whose manifests go to platform `targetId`, by item key. */
async function findJobs(
  db: Db,
  targetId: number,
  placements: readonly Placement[],
): Promise<Map<string, { id: number; state: JobState }>> {
  const found = new Map<string, { id: number; state: JobState }>();
  for (const batch of chunks(placements, rowsPerStatement(3))) {
    const rows = await db
      .selectFrom(keyTable(batch.map((p) => [p.item.name, p.item.version, p.item.arch])))
      .innerJoin('jobs as j', (j) =>
        j
          .on('j.target_platform_id', '=', targetId)
          .onRef('j.name', '=', 'k.column1')
          .onRef('j.version', '=', 'k.column2')
          .onRef('j.arch', '=', 'k.column3'),
      )
      .select(['j.id', 'j.state', 'j.name', 'j.version', 'j.arch'])
      .execute();
    for (const r of rows) found.set(itemKey(r), { id: r.id, state: r.state as JobState });
  }
  return found;
}

/**
 * Queues the missing jobs and records newly tracked packages. Returns the jobs by item key, and
 * the items whose manifest turned out to be stored by now (they need no job).
 */
async function writeRequests(
  trx: Transaction<Database>,
  ctx: StoreContext,
  newJobs: readonly Placement[],
  newTracked: ReadonlyMap<number, ReadonlySet<string>>,
  reason: JobReason,
): Promise<{ jobs: Map<string, { id: number; state: JobState }>; stored: Placement[] }> {
  const now = ctx.now();
  const created = new Map<string, { id: number; state: JobState }>();
  const stored = new Set<string>();
  if (newJobs.length > 0) {
    const ids = await ensurePlatformIds(
      trx,
      newJobs.flatMap((p) => [p.catalogPlatform as string, p.manifestPlatform as string]),
      now,
    );
    // A manifest stored since the reads needs no job. (On SQLite this transaction holds the write
    // lock, so the check is exact; on PostgreSQL an upload committing right now can still slip
    // in between, and claimJobs then finds the manifest and closes the job.)
    for (const [targetId, group] of groupBy(newJobs, (p) => ids.get(p.manifestPlatform as string))) {
      for (const [k] of await findManifests(trx, ctx.dialect, targetId, group, false)) stored.add(k);
    }
    const needed = newJobs.filter((p) => !stored.has(p.key));
    for (const [buildId, group] of groupBy(needed, (p) => ids.get(p.catalogPlatform as string))) {
      await enqueueJobs(
        trx,
        ctx,
        buildId,
        group.map((p) => ({ targetPlatformId: ids.get(p.manifestPlatform as string) as number, ...p.item })),
        reason,
      );
    }
    // Read back every job (ours or a concurrent request's: the unique key kept exactly one).
    for (const [targetId, group] of groupBy(needed, (p) => ids.get(p.manifestPlatform as string))) {
      for (const [k, job] of await findJobs(trx, targetId, group)) created.set(k, job);
    }
  }
  for (const [platformId, names] of newTracked) {
    for (const batch of chunks([...names].sort(), rowsPerStatement(4))) {
      await trx
        .insertInto('tracked_packages')
        .values(
          batch.map((name) => ({
            platform_id: platformId,
            name,
            source: 'client-request',
            created_at: iso(now),
          })),
        )
        .onConflict((oc) => oc.columns(['platform_id', 'name', 'source']).doNothing())
        .execute();
    }
  }
  return { jobs: created, stored: newJobs.filter((p) => stored.has(p.key)) };
}

/** Where a file content was found: one path of one package version. */
export interface ReverseLookupHit {
  platform: string;
  name: string;
  version: string;
  arch: string;
  path: string;
}

export interface ReverseLookupResult {
  sha256: string;
  hits: ReverseLookupHit[];
  /** More hits exist than `maxHitsPerHash` (the empty file is in thousands of packages). */
  truncated?: true;
}

/**
 * For each sha256 (lower-case hex), the package versions and paths whose stored manifests contain
 * it; results in input order. Batched: a few thousand hashes per statement, through the
 * contents → manifest_files index.
 */
export async function reverseLookup(
  ctx: StoreContext,
  hashes: readonly string[],
  options: { maxHitsPerHash?: number } = {},
): Promise<ReverseLookupResult[]> {
  if (!Array.isArray(hashes)) throw new StoreError('INVALID', 'hashes must be an array');
  if (hashes.length > LOOKUP_LIMITS.maxHashes) {
    throw new StoreError(
      'INVALID',
      `at most ${LOOKUP_LIMITS.maxHashes} hashes per reverse lookup, got ${hashes.length}`,
    );
  }
  hashes.forEach((h, i) => {
    if (typeof h !== 'string' || !SHA256_HEX.test(h)) {
      throw new StoreError('INVALID', `hash ${i} is not a sha256 in lower-case hex`);
    }
  });
  const cap = options.maxHitsPerHash ?? LOOKUP_LIMITS.defaultHitsPerHash;
  if (!Number.isInteger(cap) || cap < 1)
    throw new StoreError('INVALID', 'maxHitsPerHash must be a positive integer');

  const found = new Map<string, ReverseLookupHit[]>();
  const unique = [...new Set(hashes)];
  await reading(async () => {
    for (const batch of chunks(unique, rowsPerStatement(1))) {
      const rows = await ctx.db
        .selectFrom((eb) =>
          eb
            .selectFrom('manifest_files as f')
            .innerJoin('contents as c', 'c.id', 'f.content_id')
            .select((eb2) => [
              'c.sha256',
              'f.manifest_id',
              'f.path_id',
              eb2.fn
                .agg<number>('row_number')
                .over((o) => o.partitionBy('f.content_id').orderBy('f.manifest_id').orderBy('f.path_id'))
                .as('n'),
            ])
            .where(
              'c.sha256',
              'in',
              batch.map((h) => Buffer.from(h, 'hex')),
            )
            .as('f'),
        )
        .innerJoin('manifests as m', 'm.id', 'f.manifest_id')
        .innerJoin('platforms as pl', 'pl.id', 'm.platform_id')
        .innerJoin('paths as pa', 'pa.id', 'f.path_id')
        .select(['f.sha256', 'f.n', 'pl.name as platform', 'm.name', 'm.version', 'm.arch', 'pa.path'])
        .where('f.n', '<=', cap + 1)
        .orderBy('f.manifest_id')
        .orderBy('f.path_id')
        .execute();
      for (const r of rows) {
        const hex = Buffer.from(r.sha256).toString('hex');
        const list = found.get(hex) ?? [];
        list.push({ platform: r.platform, name: r.name, version: r.version, arch: r.arch, path: r.path });
        found.set(hex, list);
      }
    }
  });
  return hashes.map((sha256) => {
    const hits = found.get(sha256) ?? [];
    return hits.length > cap ? { sha256, hits: hits.slice(0, cap), truncated: true } : { sha256, hits };
  });
}
