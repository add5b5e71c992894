import {
  API_ROUTES,
  catalogUploadedSchema,
  claimAnswerSchema,
  HttpTransport,
  jobAnswerSchema,
  manifestUploadedSchema,
  PROTOCOL_LIMITS,
  routePath,
  ServerError,
  type ApiErrorCode,
  type GenerationJobAnswer,
} from '@sysattest/core';
import type { z } from 'zod';
import { GeneratorError } from '../errors.js';
import { backoffDelayMs, sleep } from './backoff.js';
import type { WorkerLog } from './log.js';

/**
 * The generator's side of the server's HTTP API (jobs, manifest and catalog uploads), over core's
 * one transport (bounded, validated answers; the protocol's error codes). A server that cannot be
 * reached (connection refused or reset, 502/503/504, a timeout) is retried with exponential
 * backoff and jitter until it answers or the worker stops, so a restarting server costs a pause,
 * not a job.
 */

const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

export type ClaimedJob = GenerationJobAnswer;

/**
 * The server answered, and refused: `apiCode` is the protocol's stable error code (undefined when
 * the body was not the protocol's error, e.g. a proxy's page, or named a code this worker does not know).
 */
export class ServerRefusal extends GeneratorError {
  constructor(
    readonly apiCode: ApiErrorCode | undefined,
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('GENERATION_FAILED', message, options);
  }
  /** Exit status when this ends the worker: a refused token is a configuration error. */
  get exitCode(): number {
    return this.isAuth ? 64 : 65;
  }
  /** Token missing, unknown, revoked or without the generator role: no point retrying. */
  get isAuth(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** The worker is stopping: a request that was waiting for the server gave up. */
export class Stopped extends GeneratorError {
  constructor() {
    super('INTERRUPTED', 'the worker is stopping');
  }
}

export interface ServerApiOptions {
  baseUrl: string;
  token: string;
  log: WorkerLog;
  /** Aborts waits and requests (the worker is stopping for good). */
  signal: AbortSignal;
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
}

interface RequestOptions {
  /** Retry while the server is unreachable (default true). */
  retry?: boolean;
  timeoutMs?: number;
}

export class ServerApi {
  private unreachableSince: number | undefined;
  private readonly transport: HttpTransport;

  constructor(private readonly opts: ServerApiOptions) {
    this.transport = new HttpTransport({
      url: opts.baseUrl,
      token: opts.token,
      maxResponseBytes: MAX_RESPONSE_BYTES,
    });
  }

  claim(workerId: string, platforms: string[], max: number, leaseSeconds: number): Promise<ClaimedJob[]> {
    return this.request(
      API_ROUTES.claimJobs,
      { workerId, platforms, max, leaseSeconds },
      claimAnswerSchema,
    ).then((r) => r.jobs);
  }

  /** One attempt (heartbeats are periodic: a missed one is retried by the next). */
  heartbeat(jobId: number, workerId: string): Promise<ClaimedJob> {
    return this.request(routePath(API_ROUTES.heartbeatJob, { id: jobId }), { workerId }, jobAnswerSchema, {
      retry: false,
      timeoutMs: 30_000,
    }).then((r) => r.job);
  }

  complete(jobId: number, workerId: string): Promise<ClaimedJob> {
    return this.request(routePath(API_ROUTES.completeJob, { id: jobId }), { workerId }, jobAnswerSchema).then(
      (r) => r.job,
    );
  }

  fail(jobId: number, workerId: string, error: string, opts: RequestOptions = {}): Promise<ClaimedJob> {
    return this.request(
      routePath(API_ROUTES.failJob, { id: jobId }),
      { workerId, error: error.slice(0, PROTOCOL_LIMITS.jobErrorLength) || 'failed' },
      jobAnswerSchema,
      opts,
    ).then((r) => r.job);
  }

  uploadManifest(bytes: Uint8Array, signature: string) {
    return this.request(
      API_ROUTES.manifests,
      { manifest: Buffer.from(bytes).toString('base64'), signature },
      manifestUploadedSchema,
      { timeoutMs: 5 * 60_000 },
    );
  }

  uploadCatalog(bytes: Uint8Array, signature: string) {
    return this.request(
      API_ROUTES.catalogs,
      { catalog: Buffer.from(bytes).toString('base64'), signature },
      catalogUploadedSchema,
      { timeoutMs: 30 * 60_000 },
    );
  }

  /** POST a route, retried while the server is unreachable (unless `retry` is false). */
  private async request<T>(
    route: string,
    body: unknown,
    schema: z.ZodType<T>,
    opts: RequestOptions = {},
  ): Promise<T> {
    const { signal, log } = this.opts;
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new Stopped();
      let failure: ServerError;
      try {
        const answer = await this.transport.exchange('POST', route, schema, {
          body: { json: body },
          signal,
          ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        });
        this.reachable();
        return answer.body;
      } catch (e) {
        if (signal.aborted) throw new Stopped();
        if (!(e instanceof ServerError)) throw e;
        if (!isUnreachable(e)) {
          this.reachable();
          throw answered(e, route);
        }
        failure = e;
      }
      if (opts.retry === false) {
        throw new GeneratorError(
          'GENERATION_FAILED',
          `POST ${route}: the server is unreachable: ${failure.message}`,
          { cause: failure },
        );
      }
      const wait = backoffDelayMs(attempt, {
        baseMs: this.opts.reconnectBaseMs ?? 500,
        maxMs: this.opts.reconnectMaxMs ?? 60_000,
      });
      if (this.unreachableSince === undefined) this.unreachableSince = Date.now();
      log.warn(
        'server-unreachable',
        `server unreachable (${failure.message}); retrying in ${(wait / 1000).toFixed(1)} s`,
        { route, attempt: attempt + 1, retryInMs: wait },
      );
      if (!(await sleep(wait, signal))) throw new Stopped();
    }
  }

  private reachable(): void {
    if (this.unreachableSince === undefined) return;
    const downMs = Date.now() - this.unreachableSince;
    this.unreachableSince = undefined;
    this.opts.log.info('server-reachable', `server reachable again after ${(downMs / 1000).toFixed(1)} s`, {
      downMs,
    });
  }
}

/**
 * Worth waiting for: no connection, no answer in time, or 502/503/504 (a proxy without a backend,
 * a server starting or without its database).
 */
function isUnreachable(e: ServerError): boolean {
  if (e.code === 'SERVER_UNREACHABLE' || e.code === 'SERVER_TIMEOUT') return true;
  return e.code === 'SERVER_REFUSED' && [502, 503, 504].includes(e.status ?? 0);
}

/** The server answered: a refusal (with the protocol's code), or an answer this worker cannot use. */
function answered(e: ServerError, route: string): GeneratorError {
  if (e.status === undefined)
    return new GeneratorError('GENERATION_FAILED', `POST ${route}: ${e.message}`, { cause: e });
  const code = e.apiCode ?? `HTTP_${e.status}`;
  return new ServerRefusal(
    e.apiCode,
    e.status,
    `POST ${route}: ${e.status} ${code}: ${e.serverMessage ?? 'no message'}`,
    { cause: e },
  );
}
