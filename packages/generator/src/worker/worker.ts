import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import {
  detectPlatforms,
  formatPlatform,
  parsePlatform,
  type Platform,
  type SigningKey,
} from '@sysattest/core';
import { GeneratorError, isGeneratorError, type GeneratorErrorCode } from '../errors.js';
import { failureOf, type GenerationEvent, type GenerationFailure } from '../generation/results.js';
import {
  catalogForPlatform,
  distroDigestName,
  generateForPlatform,
  platformFamily,
} from '../generation/dispatch.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { pruneAptCache } from '../generation/apt-cache.js';
import { aptCacheDir } from '../paths.js';
import { loadSigningKey } from '../signing-key.js';
import { backoffDelayMs, sleep } from './backoff.js';
import type { WorkerSettings } from './config.js';
import type { WorkerLog } from './log.js';
import { Leases } from './leases.js';
import { ServerApi, ServerRefusal, Stopped, type ClaimedJob } from './server-api.js';
import { readWorkerState, workerStatePath, writeWorkerState, type WorkerState } from './state.js';
import { UploadSink, isLeaseLost, reportJobFailure, type JobReporting } from './upload-sink.js';

/**
 * The generator's service loop. Claims jobs for its platforms from the server (under a lease it
 * renews with heartbeats), builds the platform images it lacks, generates the manifests in fresh
 * containers with the generation code, uploads them signed and completes the jobs (or fails them
 * with the reason); syncs each platform's catalog on a schedule. A first SIGTERM/SIGINT stops
 * claiming and lets the current jobs finish; a second abandons them (containers removed, jobs
 * failed back to the queue; if even that cannot be said, their leases expire).
 */

/** Labels on every container a worker makes, so a later worker can remove a dead one's leftovers. */
const LABEL_HOST = 'sysattest.worker-host';
const LABEL_PID = 'sysattest.worker-pid';
/** A job whose version the image does not offer may need fresher apt lists: refresh at most this often. */
const STALE_IMAGE_REFRESH_MS = 10 * 60_000;
/** An image refreshed more recently than this is not refreshed again before a catalog sync. */
const FRESH_IMAGE_MS = 30 * 60_000;
/** Retry a failed image build or catalog sync after this long (or the catalog interval, if shorter). */
const RETRY_AFTER_FAILURE_MS = 10 * 60_000;

export interface WorkerSummary {
  jobsDone: number;
  jobsFailed: number;
  jobsAbandoned: number;
  catalogsSynced: number;
}

/** Why a job got no manifest. */
export interface JobFailure {
  code: GeneratorErrorCode;
  error: string;
}

/** The image does not offer the package or version (its apt lists may be older than the catalog). */
export function notOffered(f: JobFailure | undefined): boolean {
  return f?.code === 'UNKNOWN_PACKAGE' || f?.code === 'UNKNOWN_VERSION';
}

/** The job's failure among a run's, matched by package name and version. */
export function failureFor(job: ClaimedJob, failures: readonly GenerationFailure[]): JobFailure {
  const f = failures.find((x) => x.name === job.name && x.version === job.version);
  if (f !== undefined) return { code: f.code, error: f.message };
  return {
    code: 'GENERATION_FAILED',
    error: `${job.name} ${job.version} (${job.arch}): no manifest was produced`,
  };
}

export class GenerationWorker {
  readonly workerId: string;
  /** Aborted by the first stop request: no more claims, no more catalog syncs. */
  private readonly stopClaiming = new AbortController();
  /** Aborted by the second: the current generation is abandoned. */
  private readonly abandon = new AbortController();
  private stopRequests = 0;
  private readonly summary: WorkerSummary = {
    jobsDone: 0,
    jobsFailed: 0,
    jobsAbandoned: 0,
    catalogsSynced: 0,
  };
  private readonly host = os.hostname();
  private readonly retryAt = new Map<string, number>();
  private readonly lastRefresh = new Map<string, number>();
  private platforms: string[] = [];

  constructor(
    private readonly settings: WorkerSettings,
    private readonly log: WorkerLog,
  ) {
    this.workerId = `${settings.workerName}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  /** A stop request (signal). Returns true when the process should exit at once (third request). */
  requestStop(reason: string): boolean {
    this.stopRequests++;
    if (this.stopRequests === 1) {
      this.log.info(
        'stopping',
        `${reason}: no more claims; finishing the current job(s) (again to abandon them)`,
      );
      this.stopClaiming.abort();
    } else if (this.stopRequests === 2) {
      this.log.warn(
        'abandoning',
        `${reason}: abandoning the current job(s); removing containers (again to quit now)`,
      );
      this.abandon.abort(new GeneratorError('INTERRUPTED', `interrupted by ${reason}`));
    } else {
      return true;
    }
    return false;
  }

  async run(): Promise<WorkerSummary> {
    const ctx = await this.start();
    try {
      await this.serve(ctx);
    } catch (e) {
      if (!(e instanceof Stopped)) throw e;
    }
    this.log.info(
      'stopped',
      `stopped: ${this.summary.jobsDone} job(s) done, ${this.summary.jobsFailed} failed, ` +
        `${this.summary.jobsAbandoned} abandoned, ${this.summary.catalogsSynced} catalog(s) synced`,
      { ...this.summary },
    );
    return { ...this.summary };
  }

  /** Loads the key, checks podman, removes dead workers' leftovers and reads the state. */
  private async start(): Promise<RunContext> {
    const s = this.settings;
    this.platforms =
      s.platforms.length > 0 ? s.platforms : [formatPlatform((await detectPlatforms('/')).primary)];
    const key = await loadSigningKey(s.keyFile, s.passphraseFile);
    const podman = new Podman({ labels: { [LABEL_HOST]: this.host, [LABEL_PID]: String(process.pid) } });
    await podman.check();
    this.log.info(
      'worker-start',
      `worker ${this.workerId} serving ${this.platforms.join(', ')} for ${s.server}`,
      {
        workerId: this.workerId,
        platforms: this.platforms,
        keyFingerprint: key.fingerprint,
        catalogIntervalS: s.catalogIntervalMs === null ? null : s.catalogIntervalMs / 1000,
        leaseSeconds: s.leaseSeconds,
        home: s.home,
      },
    );
    await this.removeDeadWorkersContainers(podman);
    const fleet = new ImageFleet({
      home: s.home,
      podman,
      ...(s.imageNamespace ? { namespace: s.imageNamespace } : {}),
      onProgress: (m) => this.log.info('image-progress', m),
    });
    const stateFile = workerStatePath(s.home);
    const { state, problem } = await readWorkerState(stateFile);
    if (problem) this.log.warn('state-unreadable', `${problem}; starting with no catalog sync history`);
    const api = this.serverApi(this.abandon.signal);
    const claims = this.serverApi(AbortSignal.any([this.stopClaiming.signal, this.abandon.signal]));
    const leases = new Leases(s.leaseSeconds * 1000);
    return { key, podman, fleet, api, claims, leases, state, stateFile };
  }

  private serverApi(signal: AbortSignal): ServerApi {
    const s = this.settings;
    return new ServerApi({
      baseUrl: s.server,
      token: s.token,
      log: this.log,
      signal,
      reconnectMaxMs: s.reconnectMaxDelayMs,
    });
  }

  /** Rounds of: images, due catalogs, a claim, the claimed jobs; until stopped (or idle, if asked). */
  private async serve(ctx: RunContext): Promise<void> {
    const s = this.settings;
    let failures = 0;
    while (!this.stopClaiming.signal.aborted) {
      const ready = await this.ensureImages(ctx);
      await this.syncDueCatalogs(ctx, ready);
      if (this.stopClaiming.signal.aborted) return;
      if (ready.length === 0) {
        if (s.exitWhenIdle) throw new GeneratorError('IMAGE_NOT_FOUND', 'no platform image could be built');
        await sleep(s.pollIntervalMs, this.stopClaiming.signal);
        continue;
      }
      const jobs = await this.claim(ctx, ready);
      if (jobs.length === 0) {
        if (s.exitWhenIdle) return;
        // Up to a quarter more, so that idle workers do not poll in lockstep.
        await sleep(s.pollIntervalMs * (1 + Math.random() / 4), this.stopClaiming.signal);
        continue;
      }
      try {
        await this.processJobs(ctx, ready, jobs);
        failures = 0;
        await this.pruneAptCaches(ready);
        // Again after each round, not only at start: a worker killed while podman was creating
        // its container leaves that container after this worker's first sweep.
        await this.removeDeadWorkersContainers(ctx.podman);
      } catch (e) {
        await this.afterFailedRound(e, ++failures);
      }
    }
  }

  private async claim(ctx: RunContext, ready: string[]): Promise<ClaimedJob[]> {
    const s = this.settings;
    const sentAt = ctx.leases.sendTime();
    const jobs = await ctx.claims.claim(
      this.workerId,
      ready,
      // Two batches per lane: a lane installs the second while the first is hashed and uploaded.
      Math.min(1000, 2 * s.batchSize * s.concurrency),
      s.leaseSeconds,
    );
    ctx.leases.claimed(
      jobs.map((j) => j.id),
      sentAt,
    );
    if (jobs.length > 0) {
      this.log.info('claimed', `claimed ${jobs.length} job(s)`, {
        jobIds: jobs.map((j) => j.id),
        packages: jobs.map((j) => `${j.name}=${j.version}`),
      });
    }
    return jobs;
  }

  /**
   * A surprise in one round (a refused request, a disk error) must not end the service: the
   * round's unfinished jobs go back to the queue when their leases expire. A stop, a refused
   * token, or any failure when running until idle does end it.
   */
  private async afterFailedRound(e: unknown, failures: number): Promise<void> {
    if (e instanceof Stopped || (e instanceof ServerRefusal && e.isAuth) || this.settings.exitWhenIdle)
      throw e;
    const wait = backoffDelayMs(failures, { baseMs: 1000, maxMs: this.settings.reconnectMaxDelayMs });
    this.log.error('round-failed', `${(e as Error).message}; continuing in ${(wait / 1000).toFixed(0)} s`, {
      retryInMs: wait,
    });
    await sleep(wait, this.stopClaiming.signal);
  }

  // ---- images -----------------------------------------------------------------------------------

  /** The platforms whose image is ready, building the ones that lack it. */
  private async ensureImages(ctx: RunContext): Promise<string[]> {
    const ready: string[] = [];
    for (const platform of this.platforms) {
      if (this.stopClaiming.signal.aborted) break;
      const image = await ctx.fleet.getImage(platform);
      if (image !== undefined && (await ctx.podman.imageExists(image.imageId))) {
        ready.push(platform);
        continue;
      }
      if ((this.retryAt.get(`image:${platform}`) ?? 0) > Date.now()) continue;
      const started = Date.now();
      this.log.info('image-build', `building the ${platform} image (it has none)`, { platform });
      try {
        await ctx.fleet.buildImage(platform, { force: image !== undefined, signal: this.abandon.signal });
        this.log.info(
          'image-built',
          `built the ${platform} image in ${((Date.now() - started) / 1000).toFixed(0)} s`,
          {
            platform,
            durationMs: Date.now() - started,
          },
        );
        ready.push(platform);
      } catch (e) {
        if (this.abandon.signal.aborted) throw new Stopped();
        if (this.settings.exitWhenIdle) throw e;
        this.retryAt.set(`image:${platform}`, Date.now() + RETRY_AFTER_FAILURE_MS);
        this.log.error('image-build-failed', `cannot build the ${platform} image: ${(e as Error).message}`, {
          platform,
          retryInS: RETRY_AFTER_FAILURE_MS / 1000,
        });
      }
    }
    return ready;
  }

  private async refreshImage(ctx: RunContext, platform: string, why: string): Promise<void> {
    const started = Date.now();
    this.log.info('image-refresh', `refreshing the ${platform} image (${why})`, { platform });
    const r = await ctx.fleet.refreshImage(platform, {
      ...(this.settings.network ? { network: this.settings.network } : {}),
      signal: this.abandon.signal,
    });
    this.lastRefresh.set(platform, Date.now());
    this.log.info(
      'image-refreshed',
      `refreshed ${platform}: ${r.generation.changes?.length ?? 0} package(s) changed`,
      {
        platform,
        generation: r.generation.generation,
        changes: r.generation.changes?.length ?? 0,
        durationMs: Date.now() - started,
      },
    );
  }

  // ---- catalogs ---------------------------------------------------------------------------------

  private async syncDueCatalogs(ctx: RunContext, ready: string[]): Promise<void> {
    const interval = this.settings.catalogIntervalMs;
    if (interval === null) return;
    for (const platform of ready) {
      if (this.stopClaiming.signal.aborted) return;
      const last = ctx.state.catalogs[platform];
      const due = last === undefined || Date.parse(last.syncedAt) + interval <= Date.now();
      if (!due || (this.retryAt.get(`catalog:${platform}`) ?? 0) > Date.now()) continue;
      try {
        await this.syncCatalog(ctx, platform);
      } catch (e) {
        if (e instanceof Stopped || this.abandon.signal.aborted) throw new Stopped();
        if (e instanceof ServerRefusal && e.isAuth) throw e;
        if (this.settings.exitWhenIdle) throw e;
        const wait = Math.min(interval, RETRY_AFTER_FAILURE_MS);
        this.retryAt.set(`catalog:${platform}`, Date.now() + wait);
        this.log.error('catalog-sync-failed', `catalog sync of ${platform} failed: ${(e as Error).message}`, {
          platform,
          retryInS: wait / 1000,
        });
      }
    }
  }

  private async syncCatalog(ctx: RunContext, platform: string): Promise<void> {
    const started = Date.now();
    this.log.info('catalog-sync', `syncing the ${platform} catalog`, { platform });
    const family = platformFamily(parsePlatform(platform));
    // apt images are refreshed into a new image generation first; dnf and apk refresh their
    // repository metadata in the catalog's own throwaway container instead (catalogForPlatform).
    if (family === 'dpkg' && this.settings.refreshBeforeCatalog) {
      const current = await imageOf(ctx.fleet, platform);
      const age = Date.now() - Date.parse(current.refreshedAt ?? current.builtAt);
      // An image built or refreshed moments ago has fresh apt lists: refreshing again buys nothing.
      if (!(age >= 0 && age < FRESH_IMAGE_MS)) await this.refreshImage(ctx, platform, 'catalog sync');
    }
    const image = await imageOf(ctx.fleet, platform);
    const r = await catalogForPlatform({
      platform: parsePlatform(platform),
      image,
      podman: ctx.podman,
      key: ctx.key,
      ...(this.settings.network ? { network: this.settings.network } : {}),
      signal: this.abandon.signal,
      refresh: family !== 'dpkg' && this.settings.refreshBeforeCatalog,
    });
    for (const w of r.warnings) this.log.warn('catalog-warning', w, { platform });
    const answer = await ctx.api.uploadCatalog(r.signed.bytes, r.signed.signature);
    ctx.state.catalogs[platform] = {
      syncedAt: new Date().toISOString(),
      digest: r.signed.digest,
      packages: r.catalog.packages.length,
    };
    await writeWorkerState(ctx.stateFile, ctx.state);
    this.summary.catalogsSynced++;
    this.log.info(
      'catalog-uploaded',
      `uploaded the ${platform} catalog: ${r.catalog.packages.length} package versions` +
        (answer.duplicate ? ' (the server had it)' : `, ${answer.jobsQueued ?? 0} job(s) queued`),
      {
        platform,
        digest: r.signed.digest,
        packages: r.catalog.packages.length,
        duplicate: answer.duplicate,
        jobsQueued: answer.jobsQueued,
        durationMs: Date.now() - started,
      },
    );
  }

  // ---- jobs -------------------------------------------------------------------------------------

  /**
   * Keeps each Debian platform's download cache under `aptCacheMaxBytes` (apt-cache.ts). A cache
   * another worker's container is using is left for the next round; a failure is logged, never
   * fatal: the cache only saves downloads.
   */
  private async pruneAptCaches(platforms: string[]): Promise<void> {
    const max = this.settings.aptCacheMaxBytes;
    if (max === null) return;
    for (const platform of platforms) {
      if (platformFamily(parsePlatform(platform)) !== 'dpkg') continue;
      const dir = aptCacheDir(this.settings.home, platform);
      try {
        const r = await pruneAptCache(dir, max, { signal: this.abandon.signal });
        const fields = { platform, ...r, maxBytes: max };
        if (r.deleted > 0)
          this.log.info(
            'apt-cache-pruned',
            `${platform}: deleted ${r.deleted} cached .deb(s), ${mib(r.freedBytes)} freed`,
            fields,
          );
        else if (r.busy)
          this.log.debug('apt-cache-busy', `${platform}: the download cache is in use; pruned later`, fields);
      } catch (e) {
        this.log.warn('apt-cache-prune-failed', (e as Error).message, { platform });
      }
    }
  }

  private async processJobs(ctx: RunContext, ready: string[], jobs: ClaimedJob[]): Promise<void> {
    const held = new Map(jobs.map((j) => [j.id, j]));
    const finished = (job: ClaimedJob) => {
      held.delete(job.id);
      ctx.leases.release(job.id);
    };
    const beat = setInterval(
      () => void this.heartbeat(ctx, held),
      Math.max(1000, (this.settings.leaseSeconds * 1000) / 3),
    );
    try {
      for (const [platform, group] of groupByBuildPlatform(jobs, ready)) {
        for (const round of roundsOfDistinctNames(group)) {
          if (this.abandon.signal.aborted) break;
          const failures = await this.generate(ctx, platform, round, finished);
          for (const job of round.filter((j) => held.has(j.id))) {
            const error = failures.get(job.id)?.error ?? 'no manifest was produced';
            await reportJobFailure(this.reporting(ctx), job, error);
            finished(job);
          }
        }
      }
    } catch (e) {
      if (!(e instanceof Stopped) && !this.abandon.signal.aborted) throw e;
    } finally {
      clearInterval(beat);
      if (held.size > 0) await this.giveBack([...held.values()]);
    }
    if (this.abandon.signal.aborted) throw new Stopped();
  }

  private reporting(ctx: RunContext): JobReporting & { server: string } {
    return {
      api: ctx.api,
      workerId: this.workerId,
      leases: ctx.leases,
      log: this.log,
      counts: this.summary,
      server: this.settings.server,
    };
  }

  /** Renews the leases of the jobs held (and learns which are lost), one attempt each. */
  private async heartbeat(ctx: RunContext, held: Map<number, ClaimedJob>): Promise<void> {
    for (const job of held.values()) {
      if (ctx.leases.isLost(job.id)) continue;
      const sentAt = ctx.leases.sendTime();
      try {
        await ctx.api.heartbeat(job.id, this.workerId);
        ctx.leases.renewed(job.id, sentAt);
      } catch (e) {
        const fields = { jobId: job.id };
        if (isLeaseLost(e)) {
          ctx.leases.markLost(job.id);
          const message = `job ${job.id} (${job.name} ${job.version}) is no longer ours: ${e.message}`;
          this.log.warn('lease-lost', message, fields);
        } else {
          const message = `heartbeat for job ${job.id} failed: ${(e as Error).message}`;
          this.log.debug('heartbeat-failed', message, fields);
        }
      }
    }
  }

  /**
   * Generates a round of jobs (distinct package names) on the platform's image. Each manifest goes
   * to the server through the upload sink as soon as it is signed, while the other batches still
   * run; the failures returned are those of the jobs that got no manifest.
   */
  private async generate(
    ctx: RunContext,
    platform: string,
    jobs: ClaimedJob[],
    finished: (job: ClaimedJob) => void,
    retried = false,
  ): Promise<Map<number, JobFailure>> {
    const image = await imageOf(ctx.fleet, platform);
    const started = Date.now();
    for (const j of jobs) {
      this.log.info('job-start', `generating ${j.name} ${j.version} (${j.arch}) on ${platform}`, {
        jobId: j.id,
        platform,
        package: j.name,
        version: j.version,
        arch: j.arch,
        attempt: j.attempts,
      });
    }
    const sink = new UploadSink(this.reporting(ctx), jobs, finished);
    let failures: Map<number, JobFailure>;
    let stoppedBy: unknown;
    try {
      failures = await this.generateInto(ctx, { platform, image, jobs, sink });
    } finally {
      stoppedBy = await sink.drained();
    }
    // What stopped the uploads (a refused token, a surprise) ends the round.
    if (stoppedBy !== undefined) throw stoppedBy;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    this.log.debug('generated', `round of ${jobs.length} on ${platform} took ${seconds} s`, {
      platform,
      durationMs: Date.now() - started,
    });
    return retried ? failures : this.retryNotOffered(ctx, platform, jobs, failures, finished);
  }

  /** Runs generation with the upload sink; why each job the sink got no manifest for failed. */
  private async generateInto(
    ctx: RunContext,
    round: { platform: string; image: PlatformImage; jobs: ClaimedJob[]; sink: UploadSink },
  ): Promise<Map<number, JobFailure>> {
    const { platform, jobs, sink } = round;
    const failures = new Map<number, JobFailure>();
    const digestName = distroDigestName(platformFamily(parsePlatform(platform)));
    try {
      // Debian: name=version (apt picks the architecture); rpm: the job's exact architecture
      // (x86_64 or noarch); apk: one architecture per image.
      const r = await generateForPlatform({
        platform: parsePlatform(platform),
        image: round.image,
        podman: ctx.podman,
        key: ctx.key,
        sink,
        requests: jobs.map((j) => ({ name: j.name, version: j.version, arch: j.arch })),
        jobs: this.settings.concurrency,
        batchSize: this.settings.batchSize,
        aptCache: aptCacheDir(this.settings.home, platform),
        ...(this.settings.network ? { network: this.settings.network } : {}),
        signal: this.abandon.signal,
        onEvent: (e) => this.generationEvent(e, digestName),
      });
      for (const job of jobs) if (!sink.took(job.id)) failures.set(job.id, failureFor(job, r.failures));
    } catch (e) {
      if (this.abandon.signal.aborted || isGeneratorError(e, 'INTERRUPTED')) throw new Stopped();
      const { code, message } = failureOf(e);
      const error = `generation on ${platform} failed: ${message}`;
      for (const job of jobs) if (!sink.took(job.id)) failures.set(job.id, { code, error });
    }
    return failures;
  }

  /**
   * The server's catalog may be newer than this image's apt lists (another worker synced it):
   * refresh once and try the jobs the image does not offer again. (Not dnf or apk images, which
   * are not refreshed: dnf renews expired metadata itself, and `apk add --no-cache` fetches the
   * indexes at each install.)
   */
  private async retryNotOffered(
    ctx: RunContext,
    platform: string,
    jobs: ClaimedJob[],
    failures: Map<number, JobFailure>,
    finished: (job: ClaimedJob) => void,
  ): Promise<Map<number, JobFailure>> {
    const stale = jobs.filter((j) => notOffered(failures.get(j.id)));
    if (
      platformFamily(parsePlatform(platform)) !== 'dpkg' ||
      stale.length === 0 ||
      !this.settings.refreshBeforeCatalog ||
      Date.now() - (this.lastRefresh.get(platform) ?? 0) <= STALE_IMAGE_REFRESH_MS
    )
      return failures;
    try {
      await this.refreshImage(
        ctx,
        platform,
        `${stale.length} job(s) ask for versions the image does not offer`,
      );
    } catch (e) {
      if (this.abandon.signal.aborted) throw new Stopped();
      this.log.warn('image-refresh-failed', `refresh of ${platform} failed: ${(e as Error).message}`, {
        platform,
      });
      return failures;
    }
    for (const j of stale) failures.delete(j.id);
    for (const [id, f] of await this.generate(ctx, platform, stale, finished, true)) failures.set(id, f);
    return failures;
  }

  private generationEvent(e: GenerationEvent, digestName: string): void {
    switch (e.kind) {
      case 'batch-start':
        this.log.debug('batch-start', `installing ${e.packages.length} package(s)`, { packages: e.packages });
        break;
      case 'batch-split':
        this.log.info(
          'batch-split',
          `the package manager refused ${e.packages.length} package(s) together; trying them in halves: ${e.reason}`,
          {
            packages: e.packages,
          },
        );
        break;
      case 'isolated':
        this.log.info('isolated', `${e.name} ${e.version}: made again alone (${e.reason})`, {
          package: e.name,
          version: e.version,
          reason: e.reason,
        });
        break;
      case 'retry':
        this.log.warn('download-retry', `retrying after a download failure: ${e.reason}`, {
          packages: e.packages,
        });
        break;
      case 'digest-mismatch':
        this.log.warn(
          'digest-mismatch',
          `${e.name} ${e.version}: ${e.paths.length} file(s) differ from the package's ${digestName}`,
          {
            package: e.name,
            version: e.version,
            paths: e.paths.slice(0, 20),
          },
        );
        break;
      default:
        break;
    }
  }

  /**
   * Jobs left when the worker abandons its work: tell the server they failed, so they are
   * claimable again after the queue's backoff instead of after the lease. One quick attempt each;
   * if the server does not answer, the leases expire.
   */
  private async giveBack(jobs: ClaimedJob[]): Promise<void> {
    const api = new ServerApi({
      baseUrl: this.settings.server,
      token: this.settings.token,
      log: this.log,
      signal: new AbortController().signal,
    });
    for (const job of jobs) {
      this.summary.jobsAbandoned++;
      try {
        await api.fail(job.id, this.workerId, 'abandoned: the worker was stopped during the job', {
          retry: false,
          timeoutMs: 5000,
        });
        this.log.info('job-abandoned', `job ${job.id} given back to the queue`, { jobId: job.id });
      } catch (e) {
        this.log.warn('job-abandoned', `job ${job.id} left to its lease: ${(e as Error).message}`, {
          jobId: job.id,
        });
      }
    }
  }

  // ---- leftovers --------------------------------------------------------------------------------

  /** Removes containers that workers on this host left when they were killed (their pid is gone). */
  private async removeDeadWorkersContainers(podman: Podman): Promise<void> {
    const list = await podman.listContainers({ labels: [`${LABEL_HOST}=${this.host}`] });
    const dead = list.filter((c) => {
      const pid = Number(c.labels[LABEL_PID]);
      return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid);
    });
    for (const c of dead) await podman.removeContainer(c.id).catch(() => {});
    if (dead.length > 0) {
      this.log.info('leftovers-removed', `removed ${dead.length} container(s) left by killed workers`, {
        containers: dead.map((c) => c.names[0] ?? c.id.slice(0, 12)),
      });
    }
  }
}

interface RunContext {
  key: SigningKey;
  podman: Podman;
  fleet: ImageFleet;
  /** Requests that may finish a job (stopped only by abandoning). */
  api: ServerApi;
  /** Claims (stopped by the first stop request). */
  claims: ServerApi;
  leases: Leases;
  state: WorkerState;
  stateFile: string;
}

async function imageOf(fleet: ImageFleet, platform: string): Promise<PlatformImage> {
  const image = await fleet.getImage(platform);
  if (image === undefined) throw new GeneratorError('IMAGE_NOT_FOUND', `no image for ${platform}`);
  return image;
}

/**
 * Jobs by the platform whose image builds them: the job's own platform when this worker serves
 * it, else (an `…/all` job queued under another architecture) a served platform of the same
 * distribution release.
 */
export function groupByBuildPlatform(jobs: ClaimedJob[], served: string[]): Map<string, ClaimedJob[]> {
  const groups = new Map<string, ClaimedJob[]>();
  for (const job of jobs) {
    let platform = served.includes(job.platform) ? job.platform : undefined;
    if (platform === undefined) {
      const t = parsePlatform(job.targetPlatform);
      platform = served.find((p) => {
        const s: Platform = parsePlatform(p);
        return s.distro === t.distro && s.release === t.release;
      });
    }
    platform ??= served[0] as string;
    const list = groups.get(platform);
    if (list === undefined) groups.set(platform, [job]);
    else list.push(job);
  }
  return groups;
}

/** Splits jobs into rounds in which no package name repeats (apt installs one version of a name at a time). */
export function roundsOfDistinctNames(jobs: ClaimedJob[]): ClaimedJob[][] {
  const rounds: ClaimedJob[][] = [];
  for (const job of jobs) {
    const round = rounds.find((r) => !r.some((j) => j.name === job.name));
    if (round === undefined) rounds.push([job]);
    else round.push(job);
  }
  return rounds;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
