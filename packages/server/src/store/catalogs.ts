import { queueBacklogIn } from './backlog.js';
import {
  newestVersions,
  versionSchemeForDistro,
  VersionError,
  type CatalogPackage,
  type VerifiedCatalog,
  type VersionScheme,
} from '@sysattest/core';
import { sql, type Insertable, type Transaction } from 'kysely';
import {
  chunks,
  inTransaction,
  iso,
  normaliseTime,
  reading,
  rowsPerStatement,
  type Db,
  type StoreContext,
} from './context.js';
import type { Database } from './database.js';
import { enqueueJobs } from './jobs.js';
import { ensurePlatformId, ensurePlatformIds, findPlatformIds, platformOf } from './platforms.js';
import { StoreError } from './store-error.js';

/** A stored catalog snapshot, without its bytes. */
export interface CatalogSnapshotInfo {
  id: number;
  platform: string;
  /** sha256 of the signed bytes, lower-case hex. */
  digest: string;
  /** When the generator read the repository indexes (ISO-8601, milliseconds). */
  generatedAt: string;
  signerFingerprint: string;
  packageCount: number;
  ingestedAt: string;
}

/** A stored catalog snapshot with the exact signed bytes, for a client to verify. */
export interface CatalogSnapshotDocument extends CatalogSnapshotInfo {
  bytes: Buffer;
  signature: string;
}

/** The newest version of one package moved (null: the latest snapshot does not list it). */
export interface NewestChange {
  name: string;
  arch: string;
  from: string | null;
  to: string | null;
}

export interface CatalogIngestResult {
  snapshot: CatalogSnapshotInfo;
  /** The same bytes were already stored: nothing changed. */
  duplicate: boolean;
  /** This snapshot is now the platform's latest (false for one that arrived late). */
  latest: boolean;
  /** Package versions seen for the first time. */
  added: number;
  /** Versions that the previous latest snapshot listed and this one (the new latest) does not. */
  withdrawn: number;
  /** Versions of this snapshot that were already known. */
  unchanged: number;
  /** Packages whose newest version moved (only when this snapshot became the latest). */
  newestChanged: NewestChange[];
  /** Generation jobs queued: new newest versions of tracked packages, and a whole-catalog backlog. */
  jobsQueued: number;
}

function schemeFor(distro: string): VersionScheme {
  try {
    return versionSchemeForDistro(distro);
  } catch (e) {
    if (e instanceof VersionError) throw new StoreError('UNSUPPORTED', e.message, { cause: e });
    throw e;
  }
}

const key2 = (a: string | number, b: string | number): string => `${a}\u0000${b}`;

/** The manifest platform of a package in a catalog: `all` packages live on `distro/release/all`. */
export function manifestPlatformName(catalogPlatform: string, arch: string): string {
  const [distro, release] = catalogPlatform.split('/');
  return `${distro}/${release}/${arch}`;
}

/**
 * Stores a verified catalog snapshot and folds it into the per-version history, in one
 * transaction:
 * - every listed version gets first_seen / last_seen (snapshot times);
 * - if it is the platform's latest snapshot (greatest generatedAt), versions it does not list are
 *   withdrawn, and each package's newest version is recomputed with the distribution's ordering;
 * - a snapshot older than the latest (arriving late) only widens first/last seen and records its
 *   own versions; it never un-withdraws a version nor moves "newest" backwards.
 * Invariant kept for every entry: withdrawn_at is null when the latest snapshot lists it, else the
 * time of the first snapshot after last_seen (which, by definition of last_seen, lacks it).
 * The same bytes again are a no-op (`duplicate`).
 */
export async function ingestCatalog(ctx: StoreContext, doc: VerifiedCatalog): Promise<CatalogIngestResult> {
  const catalog = doc.content;
  const platform = platformOf(catalog.platform);
  let newest: Map<string, CatalogPackage>;
  try {
    newest = newestVersions(catalog, schemeFor(platform.distro));
  } catch (e) {
    if (e instanceof VersionError)
      throw new StoreError('INVALID', `catalog ${catalog.platform}: ${e.message}`, { cause: e });
    throw e;
  }
  const time = normaliseTime(catalog.generatedAt);

  return inTransaction(ctx, async (trx) => {
    const now = ctx.now();
    const platformId = await ensurePlatformId(trx, catalog.platform, now);
    const existing = await trx
      .selectFrom('catalog_snapshots')
      .select(snapshotColumns)
      .where('digest', '=', doc.digest)
      .executeTakeFirst();
    if (existing !== undefined) {
      const latest = await latestSnapshotRow(trx, platformId);
      return {
        snapshot: snapshotInfo(existing, catalog.platform),
        duplicate: true,
        latest: latest?.id === existing.id,
        added: 0,
        withdrawn: 0,
        unchanged: 0,
        newestChanged: [],
        jobsQueued: 0,
      };
    }

    const previousTimes = (
      await trx
        .selectFrom('catalog_snapshots')
        .select('generated_at')
        .where('platform_id', '=', platformId)
        .execute()
    ).map((r) => r.generated_at);
    const latestBefore = previousTimes.reduce<string | undefined>(
      (a, b) => (a === undefined || b > a ? b : a),
      undefined,
    );
    // Ties go to the snapshot received last, as latestSnapshotRow orders them.
    const isLatest = latestBefore === undefined || time >= latestBefore;
    const times = [...previousTimes, time].sort();
    const latestTime = isLatest ? time : (latestBefore as string);
    /** The first snapshot time strictly after `t` (the snapshot that withdrew what was last seen at t). */
    const firstAfter = (t: string): string | null => times.find((x) => x > t) ?? null;

    const snapshot = await trx
      .insertInto('catalog_snapshots')
      .values({
        platform_id: platformId,
        digest: doc.digest,
        generated_at: time,
        signer_fingerprint: doc.signerFingerprint,
        signed_at: iso(doc.signedAt),
        package_count: catalog.packages.length,
        ingested_at: iso(now),
        signature: doc.signature,
        bytes: doc.bytes,
      })
      .returning(snapshotColumns)
      .executeTakeFirstOrThrow();

    const packages = await syncPackages(trx, platformId, catalog.packages, isLatest ? newest : undefined);
    const counts = await syncEntries(trx, platformId, catalog.packages, packages.ids, {
      time,
      isLatest,
      latestTime,
      firstAfter,
    });

    let jobsQueued = 0;
    if (isLatest && packages.changes.length > 0) {
      jobsQueued = await enqueueTrackedNewest(trx, ctx, platformId, catalog.platform, packages.changes);
    }
    if (isLatest && ctx.trackAll.has(catalog.platform)) {
      jobsQueued += await queueBacklogIn(trx, ctx, platformId, catalog.platform);
    }
    return {
      snapshot: snapshotInfo(snapshot, catalog.platform),
      duplicate: false,
      latest: isLatest,
      ...counts,
      newestChanged: packages.changes,
      jobsQueued,
    };
  });
}

/**
 * Creates the catalog_packages rows this snapshot needs and, for the latest snapshot (`newest`
 * given), updates every package's newest version. Returns ids by name+arch and the changes.
 */
async function syncPackages(
  trx: Transaction<Database>,
  platformId: number,
  listed: readonly CatalogPackage[],
  newest: Map<string, CatalogPackage> | undefined,
): Promise<{ ids: Map<string, number>; changes: NewestChange[] }> {
  const rows = await trx
    .selectFrom('catalog_packages')
    .select(['id', 'name', 'arch', 'newest_version'])
    .where('platform_id', '=', platformId)
    .execute();
  const byKey = new Map(rows.map((r) => [key2(r.name, r.arch), r]));
  const newestOf = (name: string, arch: string): string | null =>
    newest?.get(`${name}:${arch}`)?.version ?? null;

  const missing = new Map<string, { name: string; arch: string }>();
  for (const p of listed) {
    const k = key2(p.name, p.architecture);
    if (!byKey.has(k)) missing.set(k, { name: p.name, arch: p.architecture });
  }
  const changes: NewestChange[] = [];
  for (const batch of chunks([...missing.values()], rowsPerStatement(4))) {
    const inserted = await trx
      .insertInto('catalog_packages')
      .values(
        batch.map((p) => ({
          platform_id: platformId,
          name: p.name,
          arch: p.arch,
          newest_version: newestOf(p.name, p.arch),
        })),
      )
      .returning(['id', 'name', 'arch', 'newest_version'])
      .execute();
    for (const r of inserted) {
      byKey.set(key2(r.name, r.arch), r);
      if (r.newest_version !== null)
        changes.push({ name: r.name, arch: r.arch, from: null, to: r.newest_version });
    }
  }

  if (newest !== undefined) {
    const updates: { id: number; version: string | null }[] = [];
    for (const r of rows) {
      const to = newestOf(r.name, r.arch);
      if (to !== r.newest_version) {
        updates.push({ id: r.id, version: to });
        changes.push({ name: r.name, arch: r.arch, from: r.newest_version, to });
      }
    }
    // One statement per batch: `set newest_version = case id when … then … end`.
    for (const batch of chunks(updates, rowsPerStatement(3))) {
      await trx
        .updateTable('catalog_packages')
        .set({
          newest_version: sql<string | null>`case ${sql.ref('id')} ${sql.join(
            batch.map((u) => sql`when ${u.id} then ${u.version}`),
            sql` `,
          )} end`,
        })
        .where(
          'id',
          'in',
          batch.map((u) => u.id),
        )
        .execute();
    }
  }
  return { ids: new Map([...byKey].map(([k, r]) => [k, r.id])), changes };
}

interface SnapshotTimes {
  time: string;
  isLatest: boolean;
  latestTime: string;
  firstAfter: (t: string) => string | null;
}

async function syncEntries(
  trx: Transaction<Database>,
  platformId: number,
  listed: readonly CatalogPackage[],
  packageIds: Map<string, number>,
  { time, isLatest, latestTime, firstAfter }: SnapshotTimes,
): Promise<{ added: number; withdrawn: number; unchanged: number }> {
  const known = await trx
    .selectFrom('catalog_entries as e')
    .innerJoin('catalog_packages as p', 'p.id', 'e.package_id')
    .select(['e.id', 'e.package_id', 'e.version', 'e.first_seen', 'e.last_seen', 'e.withdrawn_at'])
    .where('p.platform_id', '=', platformId)
    .execute();
  const byKey = new Map(known.map((e) => [key2(e.package_id, e.version), e]));

  const inserts: Insertable<Database['catalog_entries']>[] = [];
  const seen = new Set<number>();
  type Change = { first_seen: string; last_seen: string; withdrawn_at: string | null };
  const updates = new Map<string, { set: Change; ids: number[] }>();
  const update = (id: number, set: Change): void => {
    const k = JSON.stringify(set);
    const group = updates.get(k) ?? { set, ids: [] };
    group.ids.push(id);
    updates.set(k, group);
  };

  for (const p of listed) {
    const packageId = packageIds.get(key2(p.name, p.architecture)) as number;
    const entry = byKey.get(key2(packageId, p.version));
    if (entry === undefined) {
      inserts.push({
        package_id: packageId,
        version: p.version,
        source_name: p.source.name,
        source_version: p.source.version,
        size: p.size,
        // An apk entry has no archive SHA-256 (APKINDEX records its C: checksum instead).
        archive_sha256: p.sha256 ?? null,
        filename: p.filename ?? null,
        first_seen: time,
        last_seen: time,
        withdrawn_at: isLatest ? null : firstAfter(time),
        apk_checksum: p.apkChecksum ?? null,
      });
      continue;
    }
    seen.add(entry.id);
    const firstSeen = time < entry.first_seen ? time : entry.first_seen;
    const lastSeen = time > entry.last_seen ? time : entry.last_seen;
    const withdrawnAt = lastSeen >= latestTime ? null : firstAfter(lastSeen);
    if (
      firstSeen !== entry.first_seen ||
      lastSeen !== entry.last_seen ||
      withdrawnAt !== entry.withdrawn_at
    ) {
      update(entry.id, { first_seen: firstSeen, last_seen: lastSeen, withdrawn_at: withdrawnAt });
    }
  }

  // Versions this snapshot does not list: withdrawn now if it is the latest; if it is older, it may
  // be the first snapshot after their last sighting, so their withdrawal moves back to it.
  let withdrawn = 0;
  for (const entry of known) {
    if (seen.has(entry.id)) continue;
    if (isLatest) {
      if (entry.withdrawn_at === null) {
        withdrawn++;
        update(entry.id, { first_seen: entry.first_seen, last_seen: entry.last_seen, withdrawn_at: time });
      }
    } else if (entry.last_seen < time && (entry.withdrawn_at === null || entry.withdrawn_at > time)) {
      update(entry.id, { first_seen: entry.first_seen, last_seen: entry.last_seen, withdrawn_at: time });
    }
  }

  for (const batch of chunks(inserts, rowsPerStatement(12))) {
    await trx.insertInto('catalog_entries').values(batch).execute();
  }
  for (const { set, ids } of updates.values()) {
    for (const batch of chunks(ids, rowsPerStatement(1))) {
      await trx.updateTable('catalog_entries').set(set).where('id', 'in', batch).execute();
    }
  }
  return { added: inserts.length, withdrawn, unchanged: seen.size };
}

/** Queues the new newest versions of tracked packages that have no manifest yet. */
async function enqueueTrackedNewest(
  trx: Transaction<Database>,
  ctx: StoreContext,
  platformId: number,
  platformName: string,
  changes: readonly NewestChange[],
): Promise<number> {
  const tracked = new Set(
    (
      await trx
        .selectFrom('tracked_packages')
        .select('name')
        .distinct()
        .where('platform_id', '=', platformId)
        .execute()
    ).map((r) => r.name),
  );
  const wanted = changes.filter(
    (c): c is NewestChange & { to: string } => c.to !== null && tracked.has(c.name),
  );
  if (wanted.length === 0) return 0;
  const targets = await ensurePlatformIds(
    trx,
    wanted.map((c) => manifestPlatformName(platformName, c.arch)),
    ctx.now(),
  );
  const items = wanted.map((c) => ({
    targetPlatformId: targets.get(manifestPlatformName(platformName, c.arch)) as number,
    name: c.name,
    version: c.to,
    arch: c.arch,
  }));
  return enqueueJobs(trx, ctx, platformId, items, 'tracked');
}

const snapshotColumns = [
  'id',
  'digest',
  'generated_at',
  'signer_fingerprint',
  'package_count',
  'ingested_at',
] as const;

type SnapshotRow = Pick<
  Database['catalog_snapshots'],
  'digest' | 'generated_at' | 'signer_fingerprint' | 'package_count' | 'ingested_at'
> & { id: number };

function snapshotInfo(r: SnapshotRow, platform: string): CatalogSnapshotInfo {
  return {
    id: r.id,
    platform,
    digest: r.digest,
    generatedAt: r.generated_at,
    signerFingerprint: r.signer_fingerprint,
    packageCount: r.package_count,
    ingestedAt: r.ingested_at,
  };
}

/** The platform's latest snapshot: greatest generatedAt, and among equal ones the last received. */
export async function latestSnapshotRow(db: Db, platformId: number): Promise<SnapshotRow | undefined> {
  return db
    .selectFrom('catalog_snapshots')
    .select(snapshotColumns)
    .where('platform_id', '=', platformId)
    .orderBy('generated_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
}

export async function latestCatalog(
  ctx: StoreContext,
  platform: string,
): Promise<CatalogSnapshotInfo | undefined> {
  platformOf(platform);
  return reading(async () => {
    const id = (await findPlatformIds(ctx.db, [platform])).get(platform);
    if (id === undefined) return undefined;
    const row = await latestSnapshotRow(ctx.db, id);
    return row === undefined ? undefined : snapshotInfo(row, platform);
  });
}

/** A stored snapshot by id or digest, with its bytes and signature. */
export async function getCatalogSnapshot(
  ctx: StoreContext,
  ref: { id: number } | { digest: string },
): Promise<CatalogSnapshotDocument | undefined> {
  return reading(async () => {
    const row = await ctx.db
      .selectFrom('catalog_snapshots as s')
      .innerJoin('platforms as p', 'p.id', 's.platform_id')
      .select([
        's.id',
        's.digest',
        's.generated_at',
        's.signer_fingerprint',
        's.package_count',
        's.ingested_at',
        's.bytes',
        's.signature',
        'p.name as platform',
      ])
      .$if('id' in ref, (q) => q.where('s.id', '=', (ref as { id: number }).id))
      .$if('digest' in ref, (q) => q.where('s.digest', '=', (ref as { digest: string }).digest))
      .executeTakeFirst();
    if (row === undefined) return undefined;
    return { ...snapshotInfo(row, row.platform), bytes: row.bytes, signature: row.signature };
  });
}

/** One package version as the catalogs have seen it. */
export interface CatalogEntryInfo {
  name: string;
  arch: string;
  version: string;
  source: { name: string; version: string };
  size: number;
  /** The repository index's SHA-256 of the package file; absent for Alpine (see apkChecksum). */
  archiveSha256?: string;
  /** Alpine: the APKINDEX `C:` checksum (`Q1` + base64 SHA-1 of the control segment, or `Q2`). */
  apkChecksum?: string;
  filename?: string;
  firstSeen: string;
  lastSeen: string;
  withdrawnAt?: string;
}

export interface CatalogPackageInfo {
  name: string;
  arch: string;
  /** Newest version in the latest snapshot; absent when the latest snapshot does not list it. */
  newestVersion?: string;
  /** Every version ever seen, withdrawn ones included. */
  versions: CatalogEntryInfo[];
}

/** What the catalogs of a platform say about one package name (every architecture). */
export async function catalogPackage(
  ctx: StoreContext,
  platform: string,
  name: string,
): Promise<CatalogPackageInfo[]> {
  platformOf(platform);
  return reading(async () => {
    const rows = await ctx.db
      .selectFrom('catalog_packages as p')
      .innerJoin('platforms as pl', 'pl.id', 'p.platform_id')
      .leftJoin('catalog_entries as e', 'e.package_id', 'p.id')
      .select([
        'p.id as package_id',
        'p.arch',
        'p.newest_version',
        'e.version',
        'e.source_name',
        'e.source_version',
        'e.size',
        'e.archive_sha256',
        'e.apk_checksum',
        'e.filename',
        'e.first_seen',
        'e.last_seen',
        'e.withdrawn_at',
      ])
      .where('pl.name', '=', platform)
      .where('p.name', '=', name)
      .orderBy('p.id')
      .orderBy('e.id')
      .execute();
    const out = new Map<number, CatalogPackageInfo>();
    for (const r of rows) {
      let p = out.get(r.package_id);
      if (p === undefined) {
        p = {
          name,
          arch: r.arch,
          versions: [],
          ...(r.newest_version === null ? {} : { newestVersion: r.newest_version }),
        };
        out.set(r.package_id, p);
      }
      if (r.version === null) continue;
      p.versions.push({
        name,
        arch: r.arch,
        version: r.version,
        source: { name: r.source_name as string, version: r.source_version as string },
        size: Number(r.size),
        ...(r.archive_sha256 === null ? {} : { archiveSha256: r.archive_sha256 }),
        ...(r.apk_checksum === null ? {} : { apkChecksum: r.apk_checksum }),
        ...(r.filename === null ? {} : { filename: r.filename }),
        firstSeen: r.first_seen as string,
        lastSeen: r.last_seen as string,
        ...(r.withdrawn_at === null ? {} : { withdrawnAt: r.withdrawn_at }),
      });
    }
    return [...out.values()];
  });
}
