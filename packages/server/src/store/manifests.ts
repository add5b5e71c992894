import { createHash } from 'node:crypto';
import type { VerifiedManifest } from '@sysattest/core';
import type { Transaction } from 'kysely';
import { chunks, inTransaction, iso, reading, rowsPerStatement, type StoreContext } from './context.js';
import type { Database } from './database.js';
import { completeJobsFor } from './jobs.js';
import { ensurePlatformId, platformOf } from './platforms.js';
import { StoreError } from './store-error.js';

export type ManifestIngestOutcome = 'stored' | 'duplicate';

/** A stored manifest's identity and evidence, without its bytes. */
export interface ManifestInfo {
  id: number;
  platform: string;
  name: string;
  version: string;
  arch: string;
  source: { name: string; version: string };
  /** sha256 of the signed bytes, lower-case hex. */
  digest: string;
  signerFingerprint: string;
  generatedAt: string;
  ingestedAt: string;
  /** Paths in the manifest, and how many of them have content (file, hardlink). */
  entryCount: number;
  fileCount: number;
}

/** A stored manifest with the exact signed bytes and the detached signature. */
export interface ManifestDocument extends ManifestInfo {
  bytes: Buffer;
  signature: string;
}

/** An upload refused because other bytes are stored for the same platform + package + version. */
export interface ManifestConflict {
  id: number;
  platform: string;
  name: string;
  version: string;
  arch: string;
  /** Digest of the refused bytes. */
  digest: string;
  /** Digest of the manifest that is stored (and stays). */
  storedDigest: string;
  signerFingerprint: string;
  firstReceivedAt: string;
  lastReceivedAt: string;
  /** How many times these exact bytes were uploaded. */
  attempts: number;
}

interface FileRow {
  path: string;
  pathKey: Buffer;
  sha256: Buffer;
  size: number;
}

/** The entries that have content, keyed for the paths and contents tables. */
function filesOf(doc: VerifiedManifest): FileRow[] {
  const files: FileRow[] = [];
  for (const e of doc.content.entries) {
    if (e.type !== 'file' && e.type !== 'hardlink') continue;
    files.push({
      path: e.path,
      pathKey: createHash('sha256').update(e.path, 'utf8').digest(),
      sha256: Buffer.from(e.sha256, 'hex'),
      size: e.size,
    });
  }
  return files;
}

/**
 * Stores a verified manifest, in one transaction: the exact bytes and signature, the reverse index
 * of its files, and the completion of any job waiting for it.
 * - 'stored': new;
 * - 'duplicate': these exact bytes are already stored (a no-op, apart from completing jobs);
 * - throws StoreError CONFLICT when other bytes are stored for the same platform + package +
 *   version + arch: the stored manifest is never replaced, and the refused upload is recorded in
 *   the conflicts table for the operator (that record is committed even though the call throws).
 */
export async function ingestManifest(
  ctx: StoreContext,
  doc: VerifiedManifest,
): Promise<ManifestIngestOutcome> {
  const m = doc.content;
  platformOf(m.platform);
  const files = filesOf(doc);
  const outcome = await inTransaction(ctx, async (trx) => {
    const now = ctx.now();
    const platformId = await ensurePlatformId(trx, m.platform, now);
    const identity = {
      platformId,
      name: m.package.name,
      version: m.package.version,
      arch: m.package.architecture,
    };
    const settle = async (stored: {
      id: number;
      digest: string;
    }): Promise<{ outcome: 'duplicate' } | { outcome: 'conflict'; storedDigest: string }> => {
      if (stored.digest === doc.digest) {
        await completeJobsFor(trx, ctx, { id: stored.id, ...identity });
        return { outcome: 'duplicate' };
      }
      await recordConflict(trx, doc, platformId, stored.id, iso(now));
      return { outcome: 'conflict', storedDigest: stored.digest };
    };

    const existing = await findStored(trx, identity);
    if (existing !== undefined) return settle(existing);

    const inserted = await trx
      .insertInto('manifests')
      .values({
        platform_id: platformId,
        name: m.package.name,
        version: m.package.version,
        arch: m.package.architecture,
        source_name: m.package.source.name,
        source_version: m.package.source.version,
        digest: doc.digest,
        signer_fingerprint: doc.signerFingerprint,
        signed_at: iso(doc.signedAt),
        generated_at: new Date(m.provenance.generatedAt).toISOString(),
        entry_count: m.entries.length,
        file_count: files.length,
        ingested_at: iso(now),
        signature: doc.signature,
        bytes: doc.bytes,
      })
      .onConflict((oc) => oc.columns(['platform_id', 'name', 'version', 'arch']).doNothing())
      .returning('id')
      .executeTakeFirst();
    if (inserted === undefined) {
      // Another transaction stored this package version between our read and our insert.
      const raced = await findStored(trx, identity);
      if (raced === undefined) throw new Error('manifest insert did nothing, yet no manifest is stored');
      return settle(raced);
    }

    await indexFiles(trx, inserted.id, files);
    await completeJobsFor(trx, ctx, { id: inserted.id, ...identity });
    return { outcome: 'stored' as const };
  });
  if (outcome.outcome === 'conflict') {
    throw new StoreError(
      'CONFLICT',
      `a different manifest is already stored for ${m.package.name} ${m.package.version} (${m.package.architecture}) ` +
        `on ${m.platform} (stored ${outcome.storedDigest}, refused ${doc.digest}); the upload is recorded for the operator`,
    );
  }
  return outcome.outcome;
}

async function findStored(
  trx: Transaction<Database>,
  k: { platformId: number; name: string; version: string; arch: string },
): Promise<{ id: number; digest: string } | undefined> {
  return trx
    .selectFrom('manifests')
    .select(['id', 'digest'])
    .where('platform_id', '=', k.platformId)
    .where('name', '=', k.name)
    .where('version', '=', k.version)
    .where('arch', '=', k.arch)
    .executeTakeFirst();
}

async function recordConflict(
  trx: Transaction<Database>,
  doc: VerifiedManifest,
  platformId: number,
  storedId: number,
  now: string,
): Promise<void> {
  const m = doc.content;
  await trx
    .insertInto('conflicts')
    .values({
      platform_id: platformId,
      name: m.package.name,
      version: m.package.version,
      arch: m.package.architecture,
      manifest_id: storedId,
      digest: doc.digest,
      signer_fingerprint: doc.signerFingerprint,
      first_received_at: now,
      last_received_at: now,
      attempts: 1,
      signature: doc.signature,
      bytes: doc.bytes,
    })
    .onConflict((oc) =>
      oc.column('digest').doUpdateSet((eb) => ({
        attempts: eb('conflicts.attempts', '+', 1),
        last_received_at: now,
      })),
    )
    .execute();
}

/**
 * Adds the manifest's files to the reverse index: each distinct path and sha256 is inserted once
 * (`on conflict do nothing`, keys sorted so concurrent ingests take locks in the same order), then
 * one (manifest, path, content) row per file.
 */
async function indexFiles(
  trx: Transaction<Database>,
  manifestId: number,
  files: readonly FileRow[],
): Promise<void> {
  if (files.length === 0) return;
  const pathIds = await idsForKeys(
    files.map((f) => ({ key: f.pathKey, row: { key: f.pathKey, path: f.path } })),
    (keys) => trx.selectFrom('paths').select(['id', 'key']).where('key', 'in', keys).execute(),
    (rows) =>
      trx
        .insertInto('paths')
        .values(rows)
        .onConflict((oc) => oc.column('key').doNothing())
        .returning(['id', 'key'])
        .execute(),
  );
  const contentIds = await idsForKeys(
    files.map((f) => ({ key: f.sha256, row: { sha256: f.sha256, size: f.size } })),
    (keys) =>
      trx.selectFrom('contents').select(['id', 'sha256 as key']).where('sha256', 'in', keys).execute(),
    (rows) =>
      trx
        .insertInto('contents')
        .values(rows)
        .onConflict((oc) => oc.column('sha256').doNothing())
        .returning(['id', 'sha256 as key'])
        .execute(),
  );
  const rows = files.map((f) => ({
    manifest_id: manifestId,
    path_id: pathIds.get(f.pathKey.toString('hex')) as number,
    content_id: contentIds.get(f.sha256.toString('hex')) as number,
  }));
  for (const batch of chunks(rows, rowsPerStatement(3))) {
    await trx.insertInto('manifest_files').values(batch).execute();
  }
}

/**
 * The id of every key (by hex), inserting the rows whose key is new: `insert … on conflict do
 * nothing returning` gives the new ids, one select the ids of the keys already stored. (Two
 * statements per batch at most; a concurrent transaction inserting the same key makes ours wait
 * for it, then find its row.)
 */
async function idsForKeys<R>(
  items: readonly { key: Buffer; row: R }[],
  find: (keys: Buffer[]) => Promise<{ id: number; key: Buffer }[]>,
  insert: (rows: R[]) => Promise<{ id: number; key: Buffer }[]>,
): Promise<Map<string, number>> {
  const unique = new Map<string, { key: Buffer; row: R }>();
  for (const item of items) unique.set(item.key.toString('hex'), item);
  const sorted = [...unique.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, v]) => v);
  const ids = new Map<string, number>();
  const remember = (rows: { id: number; key: Buffer }[]): void => {
    for (const r of rows) ids.set(Buffer.from(r.key).toString('hex'), r.id);
  };
  for (const batch of chunks(sorted, rowsPerStatement(2))) {
    remember(await insert(batch.map((b) => b.row)));
    const known = batch.filter((b) => !ids.has(b.key.toString('hex')));
    if (known.length > 0) remember(await find(known.map((b) => b.key)));
  }
  return ids;
}

const infoColumns = [
  'm.id',
  'p.name as platform',
  'm.name',
  'm.version',
  'm.arch',
  'm.source_name',
  'm.source_version',
  'm.digest',
  'm.signer_fingerprint',
  'm.generated_at',
  'm.ingested_at',
  'm.entry_count',
  'm.file_count',
] as const;

interface InfoRow {
  id: number;
  platform: string;
  name: string;
  version: string;
  arch: string;
  source_name: string;
  source_version: string;
  digest: string;
  signer_fingerprint: string;
  generated_at: string;
  ingested_at: string;
  entry_count: number;
  file_count: number;
}

function toInfo(r: InfoRow): ManifestInfo {
  return {
    id: r.id,
    platform: r.platform,
    name: r.name,
    version: r.version,
    arch: r.arch,
    source: { name: r.source_name, version: r.source_version },
    digest: r.digest,
    signerFingerprint: r.signer_fingerprint,
    generatedAt: r.generated_at,
    ingestedAt: r.ingested_at,
    entryCount: r.entry_count,
    fileCount: r.file_count,
  };
}

/** One stored manifest with its bytes, by platform + name + version + arch, or by digest. */
export async function getManifest(
  ctx: StoreContext,
  ref: { platform: string; name: string; version: string; arch: string } | { digest: string },
): Promise<ManifestDocument | undefined> {
  return reading(async () => {
    let q = ctx.db
      .selectFrom('manifests as m')
      .innerJoin('platforms as p', 'p.id', 'm.platform_id')
      .select([...infoColumns, 'm.bytes', 'm.signature']);
    if ('digest' in ref) {
      q = q.where('m.digest', '=', ref.digest);
    } else {
      q = q
        .where('p.name', '=', ref.platform)
        .where('m.name', '=', ref.name)
        .where('m.version', '=', ref.version)
        .where('m.arch', '=', ref.arch);
    }
    const r = await q.executeTakeFirst();
    return r === undefined ? undefined : { ...toInfo(r), bytes: r.bytes, signature: r.signature };
  });
}

/** Every stored version of a package on a platform (no bytes), oldest stored first. */
export async function listManifests(
  ctx: StoreContext,
  platform: string,
  name: string,
): Promise<ManifestInfo[]> {
  platformOf(platform);
  return reading(async () => {
    const rows = await ctx.db
      .selectFrom('manifests as m')
      .innerJoin('platforms as p', 'p.id', 'm.platform_id')
      .select(infoColumns)
      .where('p.name', '=', platform)
      .where('m.name', '=', name)
      .orderBy('m.id')
      .execute();
    return rows.map(toInfo);
  });
}

/** The recorded conflicts, newest first; with the refused bytes when `id` names one. */
export async function listConflicts(
  ctx: StoreContext,
  options: { limit?: number } = {},
): Promise<ManifestConflict[]> {
  const limit = options.limit ?? 100;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new StoreError('INVALID', 'limit must be an integer from 1 to 10000');
  }
  return reading(async () => {
    const rows = await ctx.db
      .selectFrom('conflicts as c')
      .innerJoin('platforms as p', 'p.id', 'c.platform_id')
      .innerJoin('manifests as m', 'm.id', 'c.manifest_id')
      .select([
        'c.id',
        'p.name as platform',
        'c.name',
        'c.version',
        'c.arch',
        'c.digest',
        'm.digest as stored_digest',
        'c.signer_fingerprint',
        'c.first_received_at',
        'c.last_received_at',
        'c.attempts',
      ])
      .orderBy('c.id', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({
      id: r.id,
      platform: r.platform,
      name: r.name,
      version: r.version,
      arch: r.arch,
      digest: r.digest,
      storedDigest: r.stored_digest,
      signerFingerprint: r.signer_fingerprint,
      firstReceivedAt: r.first_received_at,
      lastReceivedAt: r.last_received_at,
      attempts: r.attempts,
    }));
  });
}

/** The refused bytes and signature of a recorded conflict, for the operator to examine. */
export async function getConflictDocument(
  ctx: StoreContext,
  id: number,
): Promise<{ bytes: Buffer; signature: string } | undefined> {
  return reading(() =>
    ctx.db.selectFrom('conflicts').select(['bytes', 'signature']).where('id', '=', id).executeTakeFirst(),
  );
}
