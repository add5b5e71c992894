import { GeneratorError } from '../errors.js';
import type { ManifestSink, SignedManifest } from '../generation/manifest-sink.js';
import type { Leases } from './leases.js';
import type { WorkerLog } from './log.js';
import { ServerRefusal, type ClaimedJob, type ServerApi } from './server-api.js';

/**
 * The worker's end of generation: each signed manifest goes from memory to the server, for the
 * job that asked for it. One request per manifest: the upload stores it and, in the same
 * transaction, completes every job waiting for that package version (the server's
 * ingestManifest), so the job needs no `complete` of its own. The lease is checked locally
 * (Leases): a heartbeat is sent first only when the lease may have lapsed, and nothing is uploaded
 * for a job another worker holds now.
 */

/** The requests a job's report needs (ServerApi, or a stand-in in tests). */
export type JobApi = Pick<ServerApi, 'heartbeat' | 'uploadManifest' | 'complete' | 'fail'>;

export interface JobCounts {
  jobsDone: number;
  jobsFailed: number;
}

/** What reporting a job's end to the server takes. */
export interface JobReporting {
  api: JobApi;
  workerId: string;
  leases: Leases;
  log: WorkerLog;
  counts: JobCounts;
}

/** The server says the job is no longer this worker's (another holds it, or it is gone). */
export function isLeaseLost(e: unknown): e is ServerRefusal {
  return e instanceof ServerRefusal && (e.apiCode === 'LEASE_LOST' || e.status === 404);
}

function jobFields(job: ClaimedJob) {
  return { jobId: job.id, package: job.name, version: job.version, arch: job.arch };
}

/** Runs the job's requests; a LEASE_LOST refusal ends them (the job is another worker's now). */
async function whileOurs(r: JobReporting, job: ClaimedJob, requests: () => Promise<void>): Promise<void> {
  try {
    await requests();
  } catch (e) {
    if (!(e instanceof ServerRefusal && e.apiCode === 'LEASE_LOST')) throw e;
    r.log.warn('lease-lost', `job ${job.id}: ${e.message}`, jobFields(job));
  }
}

/** Tells the server the job failed (it retries it after a backoff, or gives up); counts and logs it. */
export function reportJobFailure(r: JobReporting, job: ClaimedJob, error: string): Promise<void> {
  return whileOurs(r, job, async () => {
    const answer = await r.api.fail(job.id, r.workerId, error);
    r.counts.jobsFailed++;
    r.log.warn('job-failed', `job ${job.id} failed (${answer.state} now): ${error}`, {
      ...jobFields(job),
      state: answer.state,
      attempts: answer.attempts,
    });
  });
}

export class UploadSink implements ManifestSink {
  private queue: Promise<void> = Promise.resolve();
  private stoppedBy: unknown;
  private readonly taken = new Set<number>();

  /**
   * `jobs`: the round's jobs, matched to manifests by name, version and architecture;
   * `finished`: called when the server has heard the end of a job (done, failed, or not ours).
   */
  constructor(
    private readonly r: JobReporting & { server: string },
    private readonly jobs: readonly ClaimedJob[],
    private readonly finished: (job: ClaimedJob) => void,
  ) {}

  /** Queues the manifest's upload (generation goes on meanwhile); resolves to where it will be. */
  async put(m: SignedManifest): Promise<string> {
    const { name, version, architecture } = m.manifest.package;
    const job = this.jobs.find(
      (j) => !this.taken.has(j.id) && j.name === name && j.version === version && j.arch === architecture,
    );
    if (job === undefined) {
      const what = `${name} ${version} (${architecture})`;
      throw new GeneratorError('OUTPUT_FAILED', `${what}: no job of this round asked for it; not uploaded`);
    }
    this.taken.add(job.id);
    this.queue = this.queue.then(() => this.uploadOnce(job, m));
    return `${this.r.server}/v1/manifests/${m.signed.digest}`;
  }

  /** Whether a manifest for the job was handed over. */
  took(jobId: number): boolean {
    return this.taken.has(jobId);
  }

  /**
   * Waits for the queued uploads. Resolves to the error that stopped them (a refused token, the
   * worker stopping, a surprise), after which nothing more was uploaded; undefined if none did.
   */
  async drained(): Promise<unknown> {
    await this.queue;
    return this.stoppedBy;
  }

  private async uploadOnce(job: ClaimedJob, m: SignedManifest): Promise<void> {
    if (this.stoppedBy !== undefined) return;
    try {
      await whileOurs(this.r, job, () => this.deliver(job, m));
      this.finished(job);
    } catch (e) {
      this.stoppedBy = e;
    }
  }

  private async deliver(job: ClaimedJob, m: SignedManifest): Promise<void> {
    const { api, log } = this.r;
    const fields = jobFields(job);
    if (!(await this.stillOurs(job))) {
      log.warn('lease-lost', `job ${job.id} was taken over by another worker; not uploading`, fields);
      return;
    }
    try {
      const answer = await api.uploadManifest(m.signed.bytes, m.signed.signature);
      log.info('manifest-uploaded', `uploaded ${job.name} ${job.version} (${answer.outcome})`, {
        ...fields,
        outcome: answer.outcome,
        platform: answer.platform,
        bytes: m.signed.bytes.length,
      });
      if (completedByUpload(job, answer)) return this.done(job, 'done');
    } catch (e) {
      if (!(e instanceof ServerRefusal) || e.isAuth) throw e;
      if (e.apiCode !== 'CONFLICT') return this.refused(job, e);
      // The server keeps the manifest it has; completing the job takes that one.
      log.warn(
        'manifest-conflict',
        `the server has other bytes for ${job.name} ${job.version}: ${e.message}`,
        fields,
      );
    }
    await this.complete(job);
  }

  /**
   * Whether the job may still be uploaded for: its lease surely runs (no request), else a
   * heartbeat says so. A heartbeat that fails otherwise (the server unreachable) does not stop
   * the upload, which waits for the server itself.
   */
  private async stillOurs(job: ClaimedJob): Promise<boolean> {
    const { leases, api, workerId } = this.r;
    if (leases.isLost(job.id)) return false;
    if (leases.surelyHeld(job.id)) return true;
    const sentAt = leases.sendTime();
    try {
      await api.heartbeat(job.id, workerId);
      leases.renewed(job.id, sentAt);
    } catch (e) {
      if (isLeaseLost(e)) leases.markLost(job.id);
    }
    return !leases.isLost(job.id);
  }

  /** Asks the server to complete the job, for when the upload's answer does not show it done. */
  private async complete(job: ClaimedJob): Promise<void> {
    const answer = await this.r.api.complete(job.id, this.r.workerId);
    this.done(job, answer.state);
  }

  private done(job: ClaimedJob, state: string): void {
    this.r.counts.jobsDone++;
    this.r.log.info('job-complete', `job ${job.id} done: ${job.name} ${job.version} (${job.arch})`, {
      ...jobFields(job),
      state,
    });
  }

  private async refused(job: ClaimedJob, e: ServerRefusal): Promise<void> {
    const answer = await this.r.api.fail(job.id, this.r.workerId, `upload refused: ${e.message}`);
    this.r.counts.jobsFailed++;
    this.r.log.error('job-failed', `job ${job.id}: the server refused the manifest: ${e.message}`, {
      ...jobFields(job),
      state: answer.state,
    });
  }
}

/**
 * Whether the upload's answer shows the job done: the server stored the manifest (or had these
 * exact bytes) for the job's own target platform and package, which completes the job in the
 * same transaction. Any other answer leaves it to `complete`, which checks and says why not.
 */
export function completedByUpload(
  job: Pick<ClaimedJob, 'targetPlatform' | 'name' | 'version' | 'arch'>,
  answer: { outcome: string; platform: string; name: string; version: string; arch: string },
): boolean {
  return (
    (answer.outcome === 'stored' || answer.outcome === 'duplicate') &&
    answer.platform === job.targetPlatform &&
    answer.name === job.name &&
    answer.version === job.version &&
    answer.arch === job.arch
  );
}
