import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  detectPlatforms,
  formatPlatform,
  parsePlatform,
  type Platform,
  type SigningKey,
} from '@sysattest/core';
import { GeneratorError, isGeneratorError } from '../errors.js';
import type { GenerationEvent } from '../generation/results.js';
import {
  catalogForPlatform,
  distroDigestName,
  generateForPlatform,
  platformFamily,
} from '../generation/dispatch.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { loadSigningKey } from '../signing-key.js';
import { backoffDelayMs, sleep } from './backoff.js';
import type { WorkerSettings } from './config.js';
import type { WorkerLog } from './log.js';
import { ServerApi, ServerRefusal, Stopped, type ClaimedJob } from './server-api.js';
import { readWorkerState, workerStatePath, writeWorkerState, type WorkerState } from './state.js';

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
/** Temporary directories of a worker: `<tmp>/sysattest-worker-<pid>-XXXXXX`. */
export const TEMP_PREFIX = 'sysattest-worker-';
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

interface JobOutcome {
  file?: string;
  error?: string;
  /** The image does not offer the package or version (maybe stale apt lists). */
  notOffered?: boolean;
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

    const api = new ServerApi({
      baseUrl: s.server,
      token: s.token,
      log: this.log,
      signal: this.abandon.signal,
      reconnectMaxMs: s.reconnectMaxDelayMs,
    });
    const claims = new ServerApi({
      baseUrl: s.server,
      token: s.token,
      log: this.log,
      signal: AbortSignal.any([this.stopClaiming.signal, this.abandon.signal]),
      reconnectMaxMs: s.reconnectMaxDelayMs,
    });
    const ctx: RunContext = { key, podman, fleet, api, state, stateFile };

    let failures = 0;
    try {
      while (!this.stopClaiming.signal.aborted) {
        const ready = await this.ensureImages(ctx);
        await this.syncDueCatalogs(ctx, ready);
        if (this.stopClaiming.signal.aborted) break;
        if (ready.length === 0) {
          if (s.exitWhenIdle) throw new GeneratorError('IMAGE_NOT_FOUND', 'no platform image could be built');
          await sleep(s.pollIntervalMs, this.stopClaiming.signal);
          continue;
        }
        const max = Math.min(1000, s.batchSize * s.concurrency);
        const jobs = await claims.claim(this.workerId, ready, max, s.leaseSeconds);
        if (jobs.length === 0) {
          if (s.exitWhenIdle) break;
          // Up to a quarter more, so that idle workers do not poll in lockstep.
          await sleep(s.pollIntervalMs * (1 + Math.random() / 4), this.stopClaiming.signal);
          continue;
        }
        this.log.info('claimed', `claimed ${jobs.length} job(s)`, {
          jobIds: jobs.map((j) => j.id),
          packages: jobs.map((j) => `${j.name}=${j.version}`),
        });
        try {
          await this.processJobs(ctx, ready, jobs);
          failures = 0;
          // Again after each round, not only at start: a worker killed while podman was creating
          // its container leaves that container after this worker's first sweep.
          await this.removeDeadWorkersContainers(ctx.podman);
        } catch (e) {
          // A surprise in one round (a refused request, a disk error) must not end the service:
          // the round's unfinished jobs go back to the queue when their leases expire.
          if (e instanceof Stopped || (e instanceof ServerRefusal && e.isAuth) || s.exitWhenIdle) throw e;
          failures++;
          const wait = backoffDelayMs(failures, { baseMs: 1000, maxMs: s.reconnectMaxDelayMs });
          this.log.error(
            'round-failed',
            `${(e as Error).message}; continuing in ${(wait / 1000).toFixed(0)} s`,
            {
              retryInMs: wait,
            },
          );
          await sleep(wait, this.stopClaiming.signal);
        }
      }
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

  private async processJobs(ctx: RunContext, ready: string[], jobs: ClaimedJob[]): Promise<void> {
    const lost = new Set<number>();
    const held = new Map(jobs.map((j) => [j.id, j]));
    const beat = setInterval(
      () => void this.heartbeat(ctx.api, held, lost),
      Math.max(1000, (this.settings.leaseSeconds * 1000) / 3),
    );
    try {
      for (const [platform, group] of groupByBuildPlatform(jobs, ready)) {
        for (const round of roundsOfDistinctNames(group)) {
          if (this.abandon.signal.aborted) break;
          const finish = async (job: ClaimedJob, outcome: JobOutcome) => {
            await this.finish(ctx, job, outcome, lost);
            held.delete(job.id);
          };
          const outcomes = await this.generate(ctx, platform, round, finish);
          for (const job of round) {
            if (held.has(job.id))
              await finish(job, outcomes.get(job.id) ?? { error: 'no manifest was produced' });
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

  private async heartbeat(api: ServerApi, held: Map<number, ClaimedJob>, lost: Set<number>): Promise<void> {
    for (const job of held.values()) {
      if (lost.has(job.id)) continue;
      try {
        await api.heartbeat(job.id, this.workerId);
      } catch (e) {
        if (e instanceof ServerRefusal && (e.apiCode === 'LEASE_LOST' || e.status === 404)) {
          lost.add(job.id);
          this.log.warn(
            'lease-lost',
            `job ${job.id} (${job.name} ${job.version}) is no longer ours: ${e.message}`,
            {
              jobId: job.id,
            },
          );
        } else {
          this.log.debug('heartbeat-failed', `heartbeat for job ${job.id} failed: ${(e as Error).message}`, {
            jobId: job.id,
          });
        }
      }
    }
  }

  /**
   * Generates a round of jobs (distinct package names) on the platform's image. Each manifest is
   * uploaded (through `finish`) as soon as it is written, while the other batches still run; the
   * outcomes returned are those of the jobs that got no manifest.
   */
  private async generate(
    ctx: RunContext,
    platform: string,
    jobs: ClaimedJob[],
    finish: (job: ClaimedJob, outcome: JobOutcome) => Promise<void>,
    retried = false,
  ): Promise<Map<number, JobOutcome>> {
    const outcomes = new Map<number, JobOutcome>();
    const image = await imageOf(ctx.fleet, platform);
    const outDir = await fs.mkdtemp(path.join(os.tmpdir(), `${TEMP_PREFIX}${process.pid}-`));
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
    const uploaded = new Set<number>();
    let uploads: Promise<void> = Promise.resolve();
    let uploadError: unknown;
    const family = platformFamily(parsePlatform(platform));
    const onEvent = (e: GenerationEvent) => {
      this.generationEvent(e, distroDigestName(family));
      if (e.kind !== 'manifest') return;
      const job = jobs.find(
        (j) =>
          !uploaded.has(j.id) && j.name === e.name && j.version === e.version && j.arch === e.architecture,
      );
      if (job === undefined) return;
      uploaded.add(job.id);
      uploads = uploads.then(async () => {
        if (uploadError !== undefined) return;
        await finish(job, { file: e.file }).catch((err: unknown) => {
          uploadError = err;
        });
      });
    };
    try {
      // Debian: name=version (apt picks the architecture); rpm: the job's exact architecture
      // (x86_64 or noarch); apk: one architecture per image.
      const r = await generateForPlatform({
        platform: parsePlatform(platform),
        image,
        podman: ctx.podman,
        key: ctx.key,
        outDir,
        requests: jobs.map((j) => ({ name: j.name, version: j.version, arch: j.arch })),
        jobs: this.settings.concurrency,
        batchSize: this.settings.batchSize,
        ...(this.settings.network ? { network: this.settings.network } : {}),
        signal: this.abandon.signal,
        onEvent,
      });
      for (const job of jobs) {
        if (uploaded.has(job.id)) continue;
        const f = r.failures.find((x) => requestMatches(x.request, job));
        const message = f?.message ?? `${job.name} ${job.version} (${job.arch}): no manifest was produced`;
        outcomes.set(job.id, {
          error: message,
          notOffered: /not offered by the image|no such package in the image/.test(message),
        });
      }
    } catch (e) {
      if (this.abandon.signal.aborted || isGeneratorError(e, 'INTERRUPTED')) throw new Stopped();
      const message = `generation on ${platform} failed: ${(e as Error).message}`;
      for (const job of jobs) if (!uploaded.has(job.id)) outcomes.set(job.id, { error: message });
    } finally {
      // The uploads read the manifests from outDir: wait for them before removing it.
      await uploads;
      await fs.rm(outDir, { recursive: true, force: true });
    }
    if (uploadError !== undefined) throw uploadError;
    this.log.debug(
      'generated',
      `round of ${jobs.length} on ${platform} took ${((Date.now() - started) / 1000).toFixed(1)} s`,
      { platform, durationMs: Date.now() - started },
    );
    // The server's catalog may be newer than this image's apt lists (another worker synced it):
    // refresh once and try those jobs again. (Not dnf or apk images, which are not refreshed: dnf
    // renews expired metadata itself, and `apk add --no-cache` fetches the indexes at each install.)
    const stale = jobs.filter((j) => outcomes.get(j.id)?.notOffered);
    if (
      !retried &&
      family === 'dpkg' &&
      stale.length > 0 &&
      this.settings.refreshBeforeCatalog &&
      Date.now() - (this.lastRefresh.get(platform) ?? 0) > STALE_IMAGE_REFRESH_MS
    ) {
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
        return outcomes;
      }
      for (const j of stale) outcomes.delete(j.id);
      for (const [id, o] of await this.generate(ctx, platform, stale, finish, true)) outcomes.set(id, o);
    }
    return outcomes;
  }

  private generationEvent(e: GenerationEvent, digestName: string): void {
    switch (e.kind) {
      case 'batch-start':
        this.log.debug('batch-start', `installing ${e.packages.length} package(s)`, { packages: e.packages });
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

  /** Uploads the manifest and completes the job, or fails it with the reason. */
  private async finish(
    ctx: RunContext,
    job: ClaimedJob,
    outcome: JobOutcome,
    lost: Set<number>,
  ): Promise<void> {
    const fields = { jobId: job.id, package: job.name, version: job.version, arch: job.arch };
    try {
      if (outcome.file === undefined) {
        const answer = await ctx.api.fail(job.id, this.workerId, outcome.error ?? 'failed');
        this.summary.jobsFailed++;
        this.log.warn('job-failed', `job ${job.id} failed (${answer.state} now): ${outcome.error}`, {
          ...fields,
          state: answer.state,
          attempts: answer.attempts,
        });
        return;
      }
      // Do not upload for a job another worker now holds: its manifest would conflict with ours.
      if (!lost.has(job.id)) {
        try {
          await ctx.api.heartbeat(job.id, this.workerId);
        } catch (e) {
          if (e instanceof ServerRefusal && (e.apiCode === 'LEASE_LOST' || e.status === 404))
            lost.add(job.id);
        }
      }
      if (lost.has(job.id)) {
        this.log.warn('lease-lost', `job ${job.id} was taken over by another worker; not uploading`, fields);
        return;
      }
      const bytes = await fs.readFile(outcome.file);
      const signature = await fs.readFile(`${outcome.file}.asc`, 'utf8');
      try {
        const answer = await ctx.api.uploadManifest(bytes, signature);
        this.log.info('manifest-uploaded', `uploaded ${job.name} ${job.version} (${answer.outcome})`, {
          ...fields,
          outcome: answer.outcome,
          platform: answer.platform,
          bytes: bytes.length,
        });
      } catch (e) {
        if (!(e instanceof ServerRefusal) || e.isAuth) throw e;
        if (e.apiCode !== 'CONFLICT') {
          const answer = await ctx.api.fail(job.id, this.workerId, `upload refused: ${e.message}`);
          this.summary.jobsFailed++;
          this.log.error('job-failed', `job ${job.id}: the server refused the manifest: ${e.message}`, {
            ...fields,
            state: answer.state,
          });
          return;
        }
        this.log.warn(
          'manifest-conflict',
          `the server has other bytes for ${job.name} ${job.version}: ${e.message}`,
          fields,
        );
      }
      const done = await ctx.api.complete(job.id, this.workerId);
      this.summary.jobsDone++;
      this.log.info('job-complete', `job ${job.id} done: ${job.name} ${job.version} (${job.arch})`, {
        ...fields,
        state: done.state,
      });
    } catch (e) {
      if (e instanceof ServerRefusal && e.apiCode === 'LEASE_LOST') {
        this.log.warn('lease-lost', `job ${job.id}: ${e.message}`, fields);
        return;
      }
      throw e;
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
    // And the temporary directories of dead workers (`sysattest-worker-<pid>-…`).
    for (const name of await fs.readdir(os.tmpdir()).catch(() => [] as string[])) {
      const pid = Number(/^sysattest-worker-(\d+)-/.exec(name)?.[1]);
      if (pid > 0 && pid !== process.pid && !processAlive(pid)) {
        await fs.rm(path.join(os.tmpdir(), name), { recursive: true, force: true }).catch(() => {});
      }
    }
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
  api: ServerApi;
  state: WorkerState;
  stateFile: string;
}

async function imageOf(fleet: ImageFleet, platform: string): Promise<PlatformImage> {
  const image = await fleet.getImage(platform);
  if (image === undefined) throw new GeneratorError('IMAGE_NOT_FOUND', `no image for ${platform}`);
  return image;
}

/** Whether a generation failure's request (`name=version` or `name:arch=version`) is this job. */
export function requestMatches(request: string, job: { name: string; version: string }): boolean {
  const m = /^([^:=]+)(?::[^=]+)?=(.+)$/.exec(request);
  if (m === null) return request === job.name;
  return m[1] === job.name && m[2] === job.version;
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
