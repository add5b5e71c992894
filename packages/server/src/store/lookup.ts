import {
  ARCH_INDEPENDENT,
  isValidPlatformComponent,
  PROTOCOL_LIMITS,
  type ReverseLookupHit,
} from '@sysattest/core';
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
import {
  chargeQueueQuota,
  checkQueuePolicy,
  queueAllowance,
  type DeferReason,
  type QueuePolicy,
} from './queue-quota.js';
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
  /**
   * A manifest is stored: its exact bytes and signature, or its digest alone (includeDocuments:
   * false, or the answer's document budget was spent: fetch it by digest).
   */
  | (LookupItemBase & { status: 'ok'; manifest: { digest: string; bytes?: Buffer; signature?: string } })
  /** In the catalog, no manifest yet: a generation job exists (queued by this or an earlier request). */
  | (LookupItemBase & { status: 'pending'; job: { id: number; state: JobState } })
  /**
   * In the catalog, no manifest and no job yet, and this lookup's queue policy did not let it
   * queue one (see queue-quota.ts): a later lookup with room (or a token) will.
   */
  | (LookupItemBase & { status: 'pending'; deferred: DeferReason })
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
  /** What the queue policy kept this lookup from writing (absent when it wrote all it needed). */
  deferred?: LookupDeferred;
  /** This lookup used the last of its client's quota for the window (once per window and client). */
  quotaReached?: true;
  /** `ok` items answered with their digest only because the document budget was spent. */
  documentsOmitted?: number;
}

export interface LookupDeferred {
  reason: DeferReason;
  /** Generation jobs not queued, and packages not tracked. */
  jobs: number;
  tracked: number;
}

export interface LookupOptions {
  /** Return manifest bytes and signatures (default true); false returns digests only. */
  includeDocuments?: boolean;
  /** Record the packages asked about as tracked (default true). */
  track?: boolean;
  /**
   * Most bytes of documents one answer carries, counted as their base64 text plus signatures
   * (default LOOKUP_LIMITS.documentBudget). Documents go in item order; once the next one does not
   * fit, the rest of the `ok` items carry their digest only. The first always goes, so an answer
   * is at most the budget plus one manifest.
   */
  documentBudget?: number;
  /** May this lookup queue jobs and track packages, and how many (default: open). */
  queue?: QueuePolicy;
}

/** The protocol's bounds, checked again by the store for callers other than the API. */
export const LOOKUP_LIMITS = {
  maxItems: PROTOCOL_LIMITS.lookupItems,
  maxFieldLength: PROTOCOL_LIMITS.fieldLength,
  maxHashes: PROTOCOL_LIMITS.reverseLookupHashes,
  defaultHitsPerHash: 1000,
  documentBudget: 64 * 1024 * 1024,
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
  refuseDuplicates(items);
}

/**
 * A package version asked twice is refused: a machine has each installed once, and the same
 * large manifest asked thousands of times in one small request was a way to make one answer
 * (and the server's memory) thousands of times larger than the request.
 */
function refuseDuplicates(items: readonly LookupItem[]): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const first = seen.get(itemKey(item));
    if (first !== undefined) {
      throw new StoreError(
        'INVALID',
        `lookup item ${i} repeats item ${first}: ${item.name} ${item.version} (${item.arch}); ` +
          'ask for each package version once',
      );
    }
    seen.set(itemKey(item), i);
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

/** A stored manifest an item names; `cost`: its bytes in an answer (base64 + signature), when asked. */
interface StoredManifest {
  id: number;
  digest: string;
  cost?: number;
}

interface Document {
  bytes: Buffer;
  signature: string;
}

interface Facts {
  platformIds: Map<string, number>;
  manifests: Map<string, StoredManifest>;
  snapshots: Map<number, CatalogSnapshotInfo>;
  packages: Map<string, { newest: string | null }>;
  /** Catalog entries by catalog platform id + item key. */
  entries: Map<string, { withdrawnAt: string | null }>;
  jobs: Map<string, KnownJob>;
  tracked: Set<string>;
  /** Items that needed a job the queue policy did not let this lookup queue, and why. */
  deferred: Map<string, DeferReason>;
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
    ...options,
    includeDocuments: options.includeDocuments ?? true,
    track: options.track ?? true,
    reason: 'client-request',
  });
}

export async function lookupWith(
  ctx: StoreContext,
  platform: string,
  items: readonly LookupItem[],
  options: {
    includeDocuments: boolean;
    track: boolean;
    reason: JobReason;
    documentBudget?: number;
    queue?: QueuePolicy;
  },
): Promise<LookupResult> {
  platformOf(platform);
  checkItems(items);
  const queue = options.queue ?? { kind: 'open' };
  checkQueuePolicy(queue);
  const budget = options.documentBudget ?? LOOKUP_LIMITS.documentBudget;
  if (!Number.isSafeInteger(budget) || budget < 0)
    throw new StoreError('INVALID', 'a document budget is a whole number of bytes');
  const placements = items.map((item) => place(platform, item));
  const facts = await reading(() => readFacts(ctx, platform, placements, options.includeDocuments));

  const wanted = plannedWrites(facts, placements, options.track);
  let deferred: LookupDeferred | undefined;
  let quotaReached = false;
  if (wanted.jobs.length > 0 || wanted.tracked.size > 0 || wanted.promote.length > 0) {
    const written =
      queue.kind === 'closed'
        ? heldBack(wanted)
        : await inTransaction(ctx, (trx) => writeRequests(trx, ctx, wanted, queue, options.reason));
    for (const [k, job] of written.jobs) facts.jobs.set(k, job);
    for (const p of written.deferredJobs) facts.deferred.set(p.key, written.reason);
    // Manifests uploaded while we were reading: answer with them.
    const byPlatform = groupBy(written.stored, (p) => facts.platformIds.get(p.manifestPlatform as string));
    for (const [platformId, group] of byPlatform) {
      const found = await reading(() => findManifests(ctx.db, platformId, group, options.includeDocuments));
      for (const [k, m] of found) facts.manifests.set(k, m);
    }
    deferred = deferredSummary(written);
    quotaReached = written.quotaReached;
  }

  const documents = options.includeDocuments
    ? await reading(() => loadDocuments(ctx, chooseDocuments(facts, placements, budget)))
    : new Map<number, Document>();
  const results = placements.map((p) => answer(facts, p, documents));
  const omitted = options.includeDocuments
    ? results.filter((r) => r.status === 'ok' && r.manifest.bytes === undefined).length
    : 0;
  const cpId = facts.platformIds.get(platform);
  const catalog = cpId === undefined ? undefined : facts.snapshots.get(cpId);
  return {
    platform,
    ...(catalog === undefined ? {} : { catalog }),
    foreignCatalogs: [...facts.snapshots.entries()].filter(([id]) => id !== cpId).map(([, s]) => s),
    items: results,
    ...(deferred === undefined ? {} : { deferred }),
    ...(quotaReached ? { quotaReached: true as const } : {}),
    ...(omitted === 0 ? {} : { documentsOmitted: omitted }),
  };
}

/** A job an item already has; `backlog`: queued below client requests (backlog.ts). */
interface KnownJob {
  id: number;
  state: JobState;
  backlog?: boolean;
}

/** What the answers need written: jobs for items in a catalog with neither manifest nor job, and tracking of packages not tracked yet. */
interface PlannedWrites {
  jobs: Placement[];
  /** Catalog platform id → package names, in the order the items named them. */
  tracked: Map<number, Set<string>>;
  /** Backlog jobs of items asked for, to move up. */
  promote: number[];
}

function plannedWrites(facts: Facts, placements: readonly Placement[], track: boolean): PlannedWrites {
  const jobs: Placement[] = [];
  const tracked = new Map<number, Set<string>>();
  const promote: number[] = [];
  for (const p of placements) {
    const cpId = p.catalogPlatform === undefined ? undefined : facts.platformIds.get(p.catalogPlatform);
    if (cpId === undefined || !facts.snapshots.has(cpId)) continue;
    if (!facts.packages.has(packageKey(cpId, p.item.name, p.item.arch))) continue;
    if (track && !facts.tracked.has(`${cpId}\u0000${p.item.name}`)) {
      const names = tracked.get(cpId) ?? new Set<string>();
      names.add(p.item.name);
      tracked.set(cpId, names);
    }
    const entry = facts.entries.get(`${cpId}\u0000${p.key}`);
    if (!facts.manifests.has(p.key) && entry?.withdrawnAt === null && !facts.jobs.has(p.key)) jobs.push(p);
    const job = facts.jobs.get(p.key);
    if (job?.backlog === true && job.state === 'pending') promote.push(job.id);
  }
  return { jobs, tracked, promote };
}

function deferredSummary(written: Written): LookupDeferred | undefined {
  const jobs = written.deferredJobs.length;
  if (jobs === 0 && written.deferredTracked === 0) return undefined;
  return { reason: written.reason, jobs, tracked: written.deferredTracked };
}

/**
 * The manifests whose bytes go in the answer: in item order while they fit the budget (the first
 * always), then none. Only their ids: the bytes are read afterwards, so a lookup never holds more
 * than the budget (plus one manifest) of documents, however many it names.
 */
function chooseDocuments(facts: Facts, placements: readonly Placement[], budget: number): number[] {
  const chosen: number[] = [];
  let spent = 0;
  for (const p of placements) {
    const m = facts.manifests.get(p.key);
    if (m === undefined) continue;
    const cost = m.cost ?? 0;
    if (chosen.length > 0 && spent + cost > budget) break;
    chosen.push(m.id);
    spent += cost;
  }
  return chosen;
}

/** The bytes and signatures of these manifests, by id. */
async function loadDocuments(ctx: StoreContext, ids: readonly number[]): Promise<Map<number, Document>> {
  const out = new Map<number, Document>();
  // The ids are few enough already (the budget chose them), so the batch is the parameter bound's.
  for (const batch of chunks(ids, rowsPerStatement(1))) {
    const rows = await ctx.db
      .selectFrom('manifests as m')
      .select(['m.id', documentBytes(ctx.dialect), 'm.signature'])
      .where('m.id', 'in', batch)
      .execute();
    for (const r of rows) {
      // SQLite gives a Buffer already (no copy); PostgreSQL the UTF-8 text (see documentBytes).
      const bytes = Buffer.isBuffer(r.document) ? r.document : Buffer.from(r.document);
      out.set(r.id, { bytes, signature: r.signature });
    }
  }
  return out;
}

function answer(facts: Facts, p: Placement, documents: ReadonlyMap<number, Document>): LookupItemResult {
  const { name, version, arch } = p.item;
  const cpId = p.catalogPlatform === undefined ? undefined : facts.platformIds.get(p.catalogPlatform);
  const known = cpId !== undefined && facts.snapshots.has(cpId);
  const newest = known ? facts.packages.get(packageKey(cpId, name, arch))?.newest : undefined;
  const base: LookupItemBase = { name, version, arch, ...(newest ? { newestVersion: newest } : {}) };
  const manifest = facts.manifests.get(p.key);
  if (manifest !== undefined) {
    const document = documents.get(manifest.id);
    return { ...base, status: 'ok', manifest: { digest: manifest.digest, ...document } };
  }
  if (!known) return { ...base, status: 'unknown-platform' };
  const entry = facts.entries.get(`${cpId}\u0000${p.key}`);
  const job = facts.jobs.get(p.key);
  if (entry !== undefined && entry.withdrawnAt === null && job !== undefined) {
    return { ...base, status: 'pending', job };
  }
  const deferred = facts.deferred.get(p.key);
  if (entry !== undefined && entry.withdrawnAt === null && deferred !== undefined) {
    return { ...base, status: 'pending', deferred };
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
  placements: readonly Placement[],
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
    deferred: new Map(),
  };

  // Manifests, per manifest platform.
  const byManifestPlatform = groupBy(placements, (p) =>
    p.manifestPlatform === undefined ? undefined : platformIds.get(p.manifestPlatform),
  );
  for (const [platformId, group] of byManifestPlatform) {
    for (const [k, m] of await findManifests(db, platformId, group, includeDocuments)) {
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

/**
 * The stored manifests of these items on platform `platformId`, by item key: ids and digests,
 * and with `withCost` what each would add to an answer (never the bytes themselves: see
 * chooseDocuments). Both databases give a bytea / blob's length without reading it.
 */
async function findManifests(
  db: Db,
  platformId: number,
  placements: readonly Placement[],
  withCost: boolean,
): Promise<Map<string, StoredManifest>> {
  const found = new Map<string, StoredManifest>();
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
      .select(['m.id', 'm.name', 'm.version', 'm.arch', 'm.digest'])
      .$if(withCost, (q) =>
        q.select([
          sql<number>`length(${sql.ref('m.bytes')})`.as('bytes_length'),
          sql<number>`length(${sql.ref('m.signature')})`.as('signature_length'),
        ]),
      )
      .execute();
    for (const r of rows) {
      const cost = withCost ? base64Length(Number(r.bytes_length)) + Number(r.signature_length) : undefined;
      found.set(itemKey(r), { id: r.id, digest: r.digest, ...(cost === undefined ? {} : { cost }) });
    }
  }
  return found;
}

const base64Length = (bytes: number): number => Math.ceil(bytes / 3) * 4;

/** The jobs of these items whose manifests go to platform `targetId`, by item key. */
async function findJobs(
  db: Db,
  targetId: number,
  placements: readonly Placement[],
): Promise<Map<string, KnownJob>> {
  const found = new Map<string, KnownJob>();
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
      .select(['j.id', 'j.state', 'j.name', 'j.version', 'j.arch', 'j.priority'])
      .execute();
    for (const r of rows)
      found.set(itemKey(r), { id: r.id, state: r.state as JobState, backlog: r.priority < 0 });
  }
  return found;
}

/** What writeRequests did, and what the queue policy kept it from doing. */
interface Written {
  jobs: Map<string, KnownJob>;
  /** Items whose manifest turned out to be stored by now (they need no job). */
  stored: Placement[];
  deferredJobs: Placement[];
  deferredTracked: number;
  reason: DeferReason;
  /** This lookup took the last of the quota's room (it wanted at least what was left, and something was left). */
  quotaReached: boolean;
}

/**
 * Queues the missing jobs and records newly tracked packages, as far as the queue policy allows
 * (in item order), and counts what it created against the client's quota: one transaction.
 */
async function writeRequests(
  trx: Transaction<Database>,
  ctx: StoreContext,
  wanted: PlannedWrites,
  policy: QueuePolicy,
  reason: JobReason,
): Promise<Written> {
  const allowance = await queueAllowance(trx, ctx, policy);
  await promoteJobs(trx, wanted.promote, iso(ctx.now()));
  const jobs = await queueJobs(trx, ctx, wanted.jobs, allowance.jobs, reason);
  const tracked = await trackPackages(trx, ctx, wanted.tracked, allowance.tracked);
  await chargeQueueQuota(trx, policy, allowance, { jobs: jobs.created, tracked: tracked.created });
  const filled = (left: number, wanted: number): boolean => left > 0 && wanted >= left;
  return {
    jobs: jobs.jobs,
    stored: jobs.stored,
    deferredJobs: jobs.deferred,
    deferredTracked: tracked.deferred,
    reason: policy.kind === 'closed' ? 'token-required' : 'quota',
    quotaReached:
      policy.kind === 'quota' &&
      (filled(allowance.jobs, jobs.queued + jobs.deferred.length) ||
        filled(allowance.tracked, tracked.wanted)),
  };
}

/** Backlog jobs a client asks for move up to a client request's priority (they create nothing). */
async function promoteJobs(trx: Transaction<Database>, ids: readonly number[], now: string): Promise<void> {
  for (const batch of chunks(ids, rowsPerStatement(1))) {
    await trx
      .updateTable('jobs')
      .set({ priority: 0, updated_at: now })
      .where('id', 'in', batch)
      .where('priority', '<', 0)
      .execute();
  }
}

/** A closed policy writes nothing, not even a platform row: everything wanted is deferred. */
function heldBack(wanted: PlannedWrites): Written {
  return {
    jobs: new Map(),
    stored: [],
    deferredJobs: wanted.jobs,
    deferredTracked: [...wanted.tracked.values()].reduce((n, names) => n + names.size, 0),
    reason: 'token-required',
    quotaReached: false,
  };
}

/**
 * Queues jobs for the first `allowed` of these items that still need one. Returns the jobs by item
 * key, the items whose manifest is stored by now, those left unqueued, and how many jobs are new.
 */
async function queueJobs(
  trx: Transaction<Database>,
  ctx: StoreContext,
  wanted: readonly Placement[],
  allowed: number,
  reason: JobReason,
): Promise<{
  jobs: Map<string, KnownJob>;
  stored: Placement[];
  queued: number;
  deferred: Placement[];
  created: number;
}> {
  const jobs = new Map<string, { id: number; state: JobState }>();
  if (wanted.length === 0 || allowed <= 0)
    return { jobs, stored: [], queued: 0, deferred: [...wanted], created: 0 };
  const ids = await ensurePlatformIds(
    trx,
    wanted.flatMap((p) => [p.catalogPlatform as string, p.manifestPlatform as string]),
    ctx.now(),
  );
  // A manifest stored since the reads needs no job. (On SQLite this transaction holds the write
  // lock, so the check is exact; on PostgreSQL an upload committing right now can still slip
  // in between, and claimJobs then finds the manifest and closes the job.)
  const stored = new Set<string>();
  for (const [targetId, group] of groupBy(wanted, (p) => ids.get(p.manifestPlatform as string))) {
    for (const [k] of await findManifests(trx, targetId, group, false)) stored.add(k);
  }
  const needed = wanted.filter((p) => !stored.has(p.key));
  const queued = needed.slice(0, allowed);
  let created = 0;
  for (const [buildId, group] of groupBy(queued, (p) => ids.get(p.catalogPlatform as string))) {
    created += await enqueueJobs(
      trx,
      ctx,
      buildId,
      group.map((p) => ({ targetPlatformId: ids.get(p.manifestPlatform as string) as number, ...p.item })),
      reason,
    );
  }
  // Read back every job (ours or a concurrent request's: the unique key kept exactly one).
  for (const [targetId, group] of groupBy(queued, (p) => ids.get(p.manifestPlatform as string))) {
    for (const [k, job] of await findJobs(trx, targetId, group)) jobs.set(k, job);
  }
  return {
    jobs,
    stored: wanted.filter((p) => stored.has(p.key)),
    queued: queued.length,
    deferred: needed.slice(queued.length),
    created,
  };
}

/** Tracks the first `allowed` of these packages (in the order asked); returns how many rows are new and how many were left out. */
async function trackPackages(
  trx: Transaction<Database>,
  ctx: StoreContext,
  wanted: ReadonlyMap<number, ReadonlySet<string>>,
  allowed: number,
): Promise<{ wanted: number; created: number; deferred: number }> {
  const all = [...wanted].flatMap(([platformId, names]) => [...names].map((name) => ({ platformId, name })));
  const kept = all.slice(0, allowed);
  const now = iso(ctx.now());
  let created = 0;
  for (const [platformId, group] of groupBy(kept, (t) => t.platformId)) {
    for (const batch of chunks(group.map((t) => t.name).sort(), rowsPerStatement(4))) {
      const result = await trx
        .insertInto('tracked_packages')
        .values(
          batch.map((name) => ({ platform_id: platformId, name, source: 'client-request', created_at: now })),
        )
        .onConflict((oc) => oc.columns(['platform_id', 'name', 'source']).doNothing())
        .executeTakeFirst();
      created += Number(result.numInsertedOrUpdatedRows ?? 0);
    }
  }
  return { wanted: all.length, created, deferred: all.length - kept.length };
}

/** Where a file content was found: one path of one package version (the protocol's type). */
export type { ReverseLookupHit };

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
