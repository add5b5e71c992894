import { JOB_REASONS, JOB_STATES, PROTOCOL_LIMITS } from '@sysattest/core';
import type { Selectable, SelectQueryBuilder, Transaction } from 'kysely';
import {
  addSeconds,
  chunks,
  inTransaction,
  iso,
  reading,
  rowsPerStatement,
  type Db,
  type StoreContext,
} from './context.js';
import type { Database } from './database.js';
import { findPlatformIds, platformOf } from './platforms.js';
import { StoreError } from './store-error.js';

/**
 * The generation queue. A job is one package version to make a manifest for, on the platform whose
 * image installs it (`platform`); the manifest lands on `targetPlatform` (the same, or the
 * release's `…/all` for architecture-independent packages).
 *
 * Life of a job: pending → (claimed) running → done, when its manifest is stored. A worker holds a
 * running job under a lease it renews with heartbeats; if the lease runs out (the worker died) the
 * job is claimable again. Every claim counts as an attempt; a failure puts the job back to pending
 * after an exponential backoff, and after `maxAttempts` claims it is dead (kept for the operator,
 * who may requeue it).
 */
export type JobState = (typeof JOB_STATES)[number];
export { JOB_STATES };
/** Why the job exists: a client asked for that version, a tracked package got a new newest version, or an operator queued it. */
export type JobReason = (typeof JOB_REASONS)[number];

export interface GenerationJob {
  id: number;
  /** The platform whose generator image builds it (what workers claim by). */
  platform: string;
  /** The platform of the manifest it makes. */
  targetPlatform: string;
  name: string;
  version: string;
  arch: string;
  reason: JobReason;
  state: JobState;
  /** Claims so far (including the current one while running). */
  attempts: number;
  /** When a pending job may next be claimed. */
  nextRunAt: string;
  leaseOwner?: string;
  leaseExpiresAt?: string;
  lastError?: string;
  /** The manifest that completed it. */
  manifestId?: number;
  createdAt: string;
  updatedAt: string;
  completedAt?: string;
}

/** Bounds on what a worker may ask for at once. */
/** The protocol's bounds, checked again by the store for callers other than the API. */
export const JOB_LIMITS = {
  maxClaim: PROTOCOL_LIMITS.claimJobs,
  maxLeaseSeconds: PROTOCOL_LIMITS.leaseSeconds,
  maxWorkerIdLength: PROTOCOL_LIMITS.workerIdLength,
  maxErrorLength: PROTOCOL_LIMITS.jobErrorLength,
  maxPlatforms: PROTOCOL_LIMITS.claimPlatforms,
} as const;

/** Runs `row lock, skip rows others hold` on PostgreSQL; SQLite has one writer and needs neither. */
function skipLocked<O>(
  ctx: StoreContext,
  q: SelectQueryBuilder<Database, 'jobs', O>,
): SelectQueryBuilder<Database, 'jobs', O> {
  return ctx.dialect === 'postgres' ? q.forUpdate().skipLocked() : q;
}

function lockRow<O>(
  ctx: StoreContext,
  q: SelectQueryBuilder<Database, 'jobs', O>,
): SelectQueryBuilder<Database, 'jobs', O> {
  return ctx.dialect === 'postgres' ? q.forUpdate() : q;
}

function selectJobs(db: Db) {
  return db
    .selectFrom('jobs as j')
    .innerJoin('platforms as p', 'p.id', 'j.platform_id')
    .innerJoin('platforms as t', 't.id', 'j.target_platform_id')
    .selectAll('j')
    .select(['p.name as platform', 't.name as target_platform']);
}

/** A jobs row with the names of its two platforms. */
export type StoredJobRow = Selectable<Database['jobs']> & { platform: string; target_platform: string };

export function toJob(r: StoredJobRow): GenerationJob {
  return {
    id: r.id,
    platform: r.platform,
    targetPlatform: r.target_platform,
    name: r.name,
    version: r.version,
    arch: r.arch,
    reason: r.reason as JobReason,
    state: r.state as JobState,
    attempts: r.attempts,
    nextRunAt: r.next_run_at,
    ...(r.lease_owner === null ? {} : { leaseOwner: r.lease_owner }),
    ...(r.lease_expires_at === null ? {} : { leaseExpiresAt: r.lease_expires_at }),
    ...(r.last_error === null ? {} : { lastError: r.last_error }),
    ...(r.manifest_id === null ? {} : { manifestId: r.manifest_id }),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.completed_at === null ? {} : { completedAt: r.completed_at }),
  };
}

async function jobsByIds(db: Db, ids: readonly number[]): Promise<GenerationJob[]> {
  if (ids.length === 0) return [];
  const rows = await selectJobs(db)
    .where('j.id', 'in', [...ids])
    .orderBy('j.id')
    .execute();
  return rows.map((r) => toJob(r as StoredJobRow));
}

export interface JobTarget {
  targetPlatformId: number;
  name: string;
  version: string;
  arch: string;
}

/**
 * Queues jobs (inside the caller's transaction); a package version that already has a job, in any
 * state, is left alone: the unique key plus `on conflict do nothing` makes this safe however many
 * callers race. Returns how many were new.
 */
export async function enqueueJobs(
  trx: Transaction<Database>,
  ctx: StoreContext,
  platformId: number,
  targets: readonly JobTarget[],
  reason: JobReason,
  priority = 0,
): Promise<number> {
  const now = iso(ctx.now());
  // A fixed order, so that two transactions inserting overlapping sets wait instead of deadlocking.
  const sorted = [...targets].sort(
    (a, b) =>
      a.targetPlatformId - b.targetPlatformId ||
      cmp(a.name, b.name) ||
      cmp(a.version, b.version) ||
      cmp(a.arch, b.arch),
  );
  let added = 0;
  for (const batch of chunks(sorted, rowsPerStatement(10))) {
    const rows = await trx
      .insertInto('jobs')
      .values(
        batch.map((t) => ({
          platform_id: platformId,
          target_platform_id: t.targetPlatformId,
          name: t.name,
          version: t.version,
          arch: t.arch,
          reason,
          state: 'pending',
          attempts: 0,
          next_run_at: now,
          created_at: now,
          updated_at: now,
          priority,
        })),
      )
      .onConflict((oc) => oc.columns(['target_platform_id', 'name', 'version', 'arch']).doNothing())
      .returning('id')
      .execute();
    added += rows.length;
  }
  return added;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Marks the jobs for a package version done, now that its manifest is stored (caller's transaction). */
export async function completeJobsFor(
  trx: Transaction<Database>,
  ctx: StoreContext,
  manifest: { id: number; platformId: number; name: string; version: string; arch: string },
): Promise<number> {
  const now = iso(ctx.now());
  const result = await trx
    .updateTable('jobs')
    .set({
      state: 'done',
      manifest_id: manifest.id,
      completed_at: now,
      updated_at: now,
      lease_owner: null,
      lease_expires_at: null,
    })
    .where('target_platform_id', '=', manifest.platformId)
    .where('name', '=', manifest.name)
    .where('version', '=', manifest.version)
    .where('arch', '=', manifest.arch)
    .where('state', '!=', 'done')
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}

function checkWorker(workerId: unknown): string {
  if (
    typeof workerId !== 'string' ||
    workerId.length === 0 ||
    workerId.length > JOB_LIMITS.maxWorkerIdLength
  ) {
    throw new StoreError(
      'INVALID',
      `a worker id must be a string of 1 to ${JOB_LIMITS.maxWorkerIdLength} characters`,
    );
  }
  return workerId;
}

function checkJobId(jobId: unknown): number {
  if (typeof jobId !== 'number' || !Number.isSafeInteger(jobId) || jobId < 1) {
    throw new StoreError('INVALID', `a job id must be a positive integer, not ${String(jobId)}`);
  }
  return jobId;
}

function checkInt(what: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new StoreError('INVALID', `${what} must be an integer from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}

/**
 * Claims up to `max` due jobs for the platforms a worker serves (and the `…/all` jobs of their
 * releases), each leased to `workerId` for `leaseSeconds`. Due: pending and past next_run_at, or
 * running with an expired lease (its worker is presumed dead). On PostgreSQL the candidates are
 * locked with `for update skip locked`, so concurrent claimers (any number of server processes)
 * never get the same job and never wait for each other; on SQLite the transaction holds the
 * database's write lock from its start.
 */
export async function claimJobs(
  ctx: StoreContext,
  workerId: string,
  platforms: readonly string[],
  max: number,
  leaseSeconds: number,
): Promise<GenerationJob[]> {
  checkWorker(workerId);
  if (!Array.isArray(platforms) || platforms.length === 0 || platforms.length > JOB_LIMITS.maxPlatforms) {
    throw new StoreError('INVALID', `claim for 1 to ${JOB_LIMITS.maxPlatforms} platforms`);
  }
  const allPlatforms = platforms.map((p) => {
    const { distro, release } = platformOf(p);
    return `${distro}/${release}/all`;
  });
  checkInt('max', max, 1, JOB_LIMITS.maxClaim);
  checkInt('leaseSeconds', leaseSeconds, 1, JOB_LIMITS.maxLeaseSeconds);

  return inTransaction(ctx, async (trx) => {
    const ids = [...(await findPlatformIds(trx, platforms)).values()];
    const allIds = [...(await findPlatformIds(trx, allPlatforms)).values()];
    if (ids.length === 0 && allIds.length === 0) return [];
    const now = ctx.now();
    const nowIso = iso(now);
    const mine = <O>(q: SelectQueryBuilder<Database, 'jobs', O>) =>
      q.where((eb) =>
        eb.or([
          ...(ids.length > 0 ? [eb('platform_id', 'in', ids)] : []),
          ...(allIds.length > 0 ? [eb('target_platform_id', 'in', allIds)] : []),
        ]),
      );

    // A lease that expired on the last allowed attempt: the job is dead, not claimable again.
    const exhausted = await skipLocked(
      ctx,
      mine(trx.selectFrom('jobs').select(['id', 'attempts']))
        .where('state', '=', 'running')
        .where('lease_expires_at', '<=', nowIso)
        .where('attempts', '>=', ctx.jobs.maxAttempts),
    ).execute();
    for (const batch of chunks(
      exhausted.map((r) => r.id),
      rowsPerStatement(1),
    )) {
      await trx
        .updateTable('jobs')
        .set({
          state: 'dead',
          last_error: `the lease expired on attempt ${ctx.jobs.maxAttempts} of ${ctx.jobs.maxAttempts}`,
          lease_owner: null,
          lease_expires_at: null,
          updated_at: nowIso,
        })
        .where('id', 'in', batch)
        .execute();
    }

    const due = await skipLocked(
      ctx,
      mine(trx.selectFrom('jobs').select('id'))
        .where((eb) =>
          eb.or([
            eb.and([eb('state', '=', 'pending'), eb('next_run_at', '<=', nowIso)]),
            eb.and([
              eb('state', '=', 'running'),
              eb('lease_expires_at', '<=', nowIso),
              eb('attempts', '<', ctx.jobs.maxAttempts),
            ]),
          ]),
        )
        .orderBy('priority', 'desc')
        .orderBy('next_run_at')
        .orderBy('id')
        .limit(max),
    ).execute();
    // A job whose manifest is already stored (it arrived while a lookup was queueing the job) is
    // done, not work.
    const stored = await storedManifestsOf(
      trx,
      due.map((r) => r.id),
    );
    for (const [jobId, manifestId] of stored) {
      await trx
        .updateTable('jobs')
        .set({ state: 'done', manifest_id: manifestId, completed_at: nowIso, updated_at: nowIso })
        .where('id', '=', jobId)
        .execute();
    }
    const claimed = due.map((r) => r.id).filter((id) => !stored.has(id));
    if (claimed.length === 0) return [];
    await trx
      .updateTable('jobs')
      .set((eb) => ({
        state: 'running',
        lease_owner: workerId,
        lease_seconds: leaseSeconds,
        lease_expires_at: iso(addSeconds(now, leaseSeconds)),
        attempts: eb('attempts', '+', 1),
        updated_at: nowIso,
      }))
      .where('id', 'in', claimed)
      .execute();
    return jobsByIds(trx, claimed);
  });
}

/** Of these jobs, those whose manifest is stored: job id → manifest id. */
async function storedManifestsOf(db: Db, jobIds: readonly number[]): Promise<Map<number, number>> {
  if (jobIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('jobs as j')
    .innerJoin('manifests as m', (join) =>
      join
        .onRef('m.platform_id', '=', 'j.target_platform_id')
        .onRef('m.name', '=', 'j.name')
        .onRef('m.version', '=', 'j.version')
        .onRef('m.arch', '=', 'j.arch'),
    )
    .select(['j.id', 'm.id as manifest_id'])
    .where('j.id', 'in', [...jobIds])
    .execute();
  return new Map(rows.map((r) => [r.id, r.manifest_id]));
}

/** The job, locked for this transaction, after checking it is running under `workerId`'s lease. */
async function heldJob(
  ctx: StoreContext,
  trx: Transaction<Database>,
  jobId: number,
  workerId: string,
): Promise<Selectable<Database['jobs']>> {
  const row = await lockRow(
    ctx,
    trx.selectFrom('jobs').selectAll().where('id', '=', jobId),
  ).executeTakeFirst();
  if (row === undefined) throw new StoreError('NOT_FOUND', `no job ${jobId}`);
  if (row.state !== 'running' || row.lease_owner !== workerId) {
    const holder =
      row.state === 'running' ? `is leased to ${JSON.stringify(row.lease_owner)}` : `is ${row.state}`;
    throw new StoreError('LEASE_LOST', `job ${jobId} ${holder}, not held by ${JSON.stringify(workerId)}`);
  }
  return row;
}

/**
 * Extends a running job's lease by the length it was claimed with. A lease that expired but was
 * not yet claimed by another worker is still the caller's and is renewed. LEASE_LOST otherwise.
 */
export async function heartbeat(ctx: StoreContext, jobId: number, workerId: string): Promise<GenerationJob> {
  checkJobId(jobId);
  checkWorker(workerId);
  return inTransaction(ctx, async (trx) => {
    const row = await heldJob(ctx, trx, jobId, workerId);
    const now = ctx.now();
    await trx
      .updateTable('jobs')
      .set({ lease_expires_at: iso(addSeconds(now, row.lease_seconds ?? 60)), updated_at: iso(now) })
      .where('id', '=', jobId)
      .execute();
    return (await jobsByIds(trx, [jobId]))[0] as GenerationJob;
  });
}

/**
 * The worker says the job is finished. Its manifest must already be stored (uploading it completes
 * the job; this confirms it): INVALID otherwise, so that a job can never be done without its
 * manifest. Completing a job that is already done is a no-op.
 */
export async function completeJob(
  ctx: StoreContext,
  jobId: number,
  workerId: string,
): Promise<GenerationJob> {
  checkJobId(jobId);
  checkWorker(workerId);
  return inTransaction(ctx, async (trx) => {
    const current = await lockRow(
      ctx,
      trx.selectFrom('jobs').select('state').where('id', '=', jobId),
    ).executeTakeFirst();
    if (current?.state === 'done') return (await jobsByIds(trx, [jobId]))[0] as GenerationJob;
    const row = await heldJob(ctx, trx, jobId, workerId);
    const manifest = await trx
      .selectFrom('manifests')
      .select('id')
      .where('platform_id', '=', row.target_platform_id)
      .where('name', '=', row.name)
      .where('version', '=', row.version)
      .where('arch', '=', row.arch)
      .executeTakeFirst();
    if (manifest === undefined) {
      throw new StoreError(
        'INVALID',
        `job ${jobId} (${row.name} ${row.version} ${row.arch}) cannot be completed: its manifest has not been uploaded`,
      );
    }
    await completeJobsFor(trx, ctx, {
      id: manifest.id,
      platformId: row.target_platform_id,
      name: row.name,
      version: row.version,
      arch: row.arch,
    });
    return (await jobsByIds(trx, [jobId]))[0] as GenerationJob;
  });
}

/** Seconds to wait before the next attempt after `attempts` failed claims. */
export function backoffSeconds(ctx: Pick<StoreContext, 'jobs'>, attempts: number): number {
  const { backoffBaseSeconds: base, backoffMaxSeconds: cap } = ctx.jobs;
  return Math.min(cap, base * 2 ** Math.max(0, attempts - 1));
}

/**
 * The worker could not make the manifest. The job goes back to pending after a backoff, or is dead
 * once it has had `maxAttempts` claims. `error` is kept (truncated) for the operator.
 */
export async function failJob(
  ctx: StoreContext,
  jobId: number,
  workerId: string,
  error: string,
): Promise<GenerationJob> {
  checkJobId(jobId);
  checkWorker(workerId);
  const message = String(error).slice(0, JOB_LIMITS.maxErrorLength);
  return inTransaction(ctx, async (trx) => {
    const row = await heldJob(ctx, trx, jobId, workerId);
    const now = ctx.now();
    const dead = row.attempts >= ctx.jobs.maxAttempts;
    await trx
      .updateTable('jobs')
      .set({
        state: dead ? 'dead' : 'pending',
        next_run_at: dead ? row.next_run_at : iso(addSeconds(now, backoffSeconds(ctx, row.attempts))),
        last_error: message,
        lease_owner: null,
        lease_expires_at: null,
        updated_at: iso(now),
      })
      .where('id', '=', jobId)
      .execute();
    return (await jobsByIds(trx, [jobId]))[0] as GenerationJob;
  });
}

/** Puts a job back in the queue now, with a fresh attempt count (operator action). Done jobs stay done. */
export async function requeueJob(ctx: StoreContext, jobId: number): Promise<GenerationJob> {
  checkJobId(jobId);
  return inTransaction(ctx, async (trx) => {
    const row = await lockRow(
      ctx,
      trx.selectFrom('jobs').select('state').where('id', '=', jobId),
    ).executeTakeFirst();
    if (row === undefined) throw new StoreError('NOT_FOUND', `no job ${jobId}`);
    if (row.state === 'done') throw new StoreError('INVALID', `job ${jobId} is done: its manifest is stored`);
    const now = iso(ctx.now());
    await trx
      .updateTable('jobs')
      .set({
        state: 'pending',
        attempts: 0,
        next_run_at: now,
        lease_owner: null,
        lease_expires_at: null,
        updated_at: now,
      })
      .where('id', '=', jobId)
      .execute();
    return (await jobsByIds(trx, [jobId]))[0] as GenerationJob;
  });
}

export async function getJob(ctx: StoreContext, jobId: number): Promise<GenerationJob | undefined> {
  checkJobId(jobId);
  return reading(async () => (await jobsByIds(ctx.db, [jobId]))[0]);
}

export interface JobFilter {
  /** Jobs built on this platform. */
  platform?: string;
  state?: JobState;
  /** Only jobs with a greater id (pagination). */
  afterId?: number;
  /** Default 100, at most 10,000. */
  limit?: number;
}

/** Jobs in id order (oldest first). */
export async function listJobs(ctx: StoreContext, filter: JobFilter = {}): Promise<GenerationJob[]> {
  const limit = checkInt('limit', filter.limit ?? 100, 1, 10_000);
  if (filter.platform !== undefined) platformOf(filter.platform);
  if (filter.state !== undefined && !JOB_STATES.includes(filter.state)) {
    throw new StoreError('INVALID', `unknown job state ${JSON.stringify(filter.state)}`);
  }
  return reading(async () => {
    const rows = await selectJobs(ctx.db)
      .$if(filter.platform !== undefined, (q) => q.where('p.name', '=', filter.platform as string))
      .$if(filter.state !== undefined, (q) => q.where('j.state', '=', filter.state as string))
      .$if(filter.afterId !== undefined, (q) => q.where('j.id', '>', filter.afterId as number))
      .orderBy('j.id')
      .limit(limit)
      .execute();
    return rows.map((r) => toJob(r as StoredJobRow));
  });
}
