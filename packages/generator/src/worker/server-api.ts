import {
  API_ROUTES,
  apiErrorBodySchema,
  catalogUploadedSchema,
  claimAnswerSchema,
  isApiErrorCode,
  jobAnswerSchema,
  manifestUploadedSchema,
  PROTOCOL_LIMITS,
  routePath,
  type ApiErrorCode,
  type GenerationJobAnswer,
} from '@sysattest/core';
import type { z } from 'zod';
import { GeneratorError } from '../errors.js';
import { backoffDelayMs, sleep } from './backoff.js';
import type { WorkerLog } from './log.js';

/**
 * The generator's side of the server's HTTP API (jobs, manifest and catalog uploads). Every
 * answer is untrusted input: bounded in size and validated before use. A server that cannot be
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
  ) {
    super('GENERATION_FAILED', message);
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

  constructor(private readonly opts: ServerApiOptions) {}

  claim(workerId: string, platforms: string[], max: number, leaseSeconds: number): Promise<ClaimedJob[]> {
    return this.request(
      'POST',
      API_ROUTES.claimJobs,
      { workerId, platforms, max, leaseSeconds },
      claimAnswerSchema,
    ).then((r) => r.jobs);
  }

  /** One attempt (heartbeats are periodic: a missed one is retried by the next). */
  heartbeat(jobId: number, workerId: string): Promise<ClaimedJob> {
    return this.request(
      'POST',
      routePath(API_ROUTES.heartbeatJob, { id: jobId }),
      { workerId },
      jobAnswerSchema,
      {
        retry: false,
        timeoutMs: 30_000,
      },
    ).then((r) => r.job);
  }

  complete(jobId: number, workerId: string): Promise<ClaimedJob> {
    return this.request(
      'POST',
      routePath(API_ROUTES.completeJob, { id: jobId }),
      { workerId },
      jobAnswerSchema,
    ).then((r) => r.job);
  }

  fail(jobId: number, workerId: string, error: string, opts: RequestOptions = {}): Promise<ClaimedJob> {
    return this.request(
      'POST',
      routePath(API_ROUTES.failJob, { id: jobId }),
      { workerId, error: error.slice(0, PROTOCOL_LIMITS.jobErrorLength) || 'failed' },
      jobAnswerSchema,
      opts,
    ).then((r) => r.job);
  }

  uploadManifest(bytes: Uint8Array, signature: string) {
    return this.request(
      'POST',
      API_ROUTES.manifests,
      { manifest: Buffer.from(bytes).toString('base64'), signature },
      manifestUploadedSchema,
      { timeoutMs: 5 * 60_000 },
    );
  }

  uploadCatalog(bytes: Uint8Array, signature: string) {
    return this.request(
      'POST',
      API_ROUTES.catalogs,
      { catalog: Buffer.from(bytes).toString('base64'), signature },
      catalogUploadedSchema,
      { timeoutMs: 30 * 60_000 },
    );
  }

  private async request<T>(
    method: string,
    route: string,
    body: unknown,
    schema: z.ZodType<T>,
    opts: RequestOptions = {},
  ): Promise<T> {
    const { signal, log } = this.opts;
    const payload = JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      if (signal.aborted) throw new Stopped();
      let failure: string;
      try {
        const response = await fetch(`${this.opts.baseUrl}${route}`, {
          method,
          headers: { authorization: `Bearer ${this.opts.token}`, 'content-type': 'application/json' },
          body: payload,
          signal: AbortSignal.any([signal, AbortSignal.timeout(opts.timeoutMs ?? 60_000)]),
        });
        const text = await readBounded(response);
        if (response.ok) {
          this.reachable();
          return parseAnswer(text, schema, `${method} ${route}`);
        }
        const refusal = parseError(text, response.status);
        // 502/503/504: a proxy without a backend, a server starting or without its database.
        if (![502, 503, 504].includes(response.status)) {
          this.reachable();
          throw new ServerRefusal(
            isApiErrorCode(refusal.code) ? refusal.code : undefined,
            response.status,
            `${method} ${route}: ${response.status} ${refusal.code}: ${refusal.message}`,
          );
        }
        failure = `${response.status} ${refusal.code}: ${refusal.message}`;
      } catch (e) {
        if (e instanceof ServerRefusal || e instanceof GeneratorError) throw e;
        if (signal.aborted) throw new Stopped();
        failure = describeFetchError(e);
      }
      if (opts.retry === false) {
        throw new GeneratorError(
          'GENERATION_FAILED',
          `${method} ${route}: the server is unreachable: ${failure}`,
        );
      }
      const wait = backoffDelayMs(attempt, {
        baseMs: this.opts.reconnectBaseMs ?? 500,
        maxMs: this.opts.reconnectMaxMs ?? 60_000,
      });
      if (this.unreachableSince === undefined) this.unreachableSince = Date.now();
      log.warn(
        'server-unreachable',
        `server unreachable (${failure}); retrying in ${(wait / 1000).toFixed(1)} s`,
        {
          route,
          attempt: attempt + 1,
          retryInMs: wait,
        },
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

async function readBounded(response: Response): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE_BYTES) {
    await response.body?.cancel();
    throw new GeneratorError(
      'GENERATION_FAILED',
      `the server's answer is ${declared} bytes, over ${MAX_RESPONSE_BYTES}`,
    );
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (response.body) {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        throw new GeneratorError(
          'GENERATION_FAILED',
          `the server's answer is over ${MAX_RESPONSE_BYTES} bytes`,
        );
      }
      chunks.push(chunk);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseAnswer<T>(text: string, schema: z.ZodType<T>, what: string): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new GeneratorError('GENERATION_FAILED', `${what}: the server's answer is not JSON`);
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new GeneratorError(
      'GENERATION_FAILED',
      `${what}: unexpected answer from the server (${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'invalid'})`,
    );
  }
  return r.data;
}

function parseError(text: string, status: number): { code: string; message: string } {
  try {
    const r = apiErrorBodySchema.safeParse(JSON.parse(text));
    if (r.success) return r.data.error;
  } catch {
    // not JSON: a proxy's page
  }
  return { code: `HTTP_${status}`, message: text.slice(0, 200).replace(/\s+/g, ' ') || 'no message' };
}

function describeFetchError(e: unknown): string {
  const err = e as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return 'timed out';
  const cause = err?.cause;
  return cause?.code ?? cause?.message ?? err?.message ?? String(e);
}
