import { z } from 'zod';
import { SysattestError, isApiErrorCode, type ApiErrorCode } from '@sysattest/core';

/**
 * The transport to a sysattest server: JSON over HTTP(S) with a timeout per request, a cap on
 * every response body (read as a stream and abandoned past the cap, so a hostile server cannot
 * make the client buffer without bound), and errors that say what went wrong and exit with the
 * right code. Nothing here is trusted: callers verify every signed document against pinned keys.
 */
export type ServerErrorCode =
  | 'SERVER_UNREACHABLE'
  | 'SERVER_TIMEOUT'
  | 'SERVER_REFUSED'
  | 'SERVER_UNAUTHORIZED'
  | 'SERVER_BAD_RESPONSE'
  | 'SERVER_RESPONSE_TOO_LARGE';

export class ServerError extends SysattestError<ServerErrorCode> {
  readonly exitCode: number;
  /** The server refused with the protocol's error body: its code (core `API_ERROR_CODES`). */
  readonly apiCode: ApiErrorCode | undefined;
  /** The server answered with this HTTP status (SERVER_UNAUTHORIZED, SERVER_REFUSED). */
  readonly status: number | undefined;
  /** What the server's refusal said (its error message, or the start of its text). */
  readonly serverMessage: string | undefined;
  constructor(
    code: ServerErrorCode,
    message: string,
    options?: {
      cause?: unknown;
      exitCode?: number;
      apiCode?: ApiErrorCode;
      status?: number;
      serverMessage?: string;
    },
  ) {
    super(code, message, options);
    // 69: the service is unavailable or does not speak the protocol; 64: it wants a token we lack.
    this.exitCode = options?.exitCode ?? (code === 'SERVER_UNAUTHORIZED' ? 64 : 69);
    this.apiCode = options?.apiCode;
    this.status = options?.status;
    this.serverMessage = options?.serverMessage;
  }
}

/** A 2xx answer: its status and its body, validated. */
export interface ServerAnswer<T> {
  status: number;
  body: T;
}

export interface ServerClientOptions {
  /** Base URL, e.g. `https://sysattest.example.org` (a path prefix is kept). */
  url: string;
  /** A reader token, sent as `Authorization: Bearer …`. */
  token?: string;
  /** Per request (default 60 s). */
  timeoutMs?: number;
  /** Largest response body read (default 512 MiB). */
  maxResponseBytes?: number;
  /** For tests: the fetch implementation. */
  fetch?: typeof fetch;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 512 * 1024 * 1024;

export class ServerClient {
  readonly base: URL;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: ServerClientOptions) {
    let base: URL;
    try {
      base = new URL(options.url);
    } catch {
      throw new ServerError('SERVER_REFUSED', `${options.url} is not a URL`, { exitCode: 64 });
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') {
      throw new ServerError('SERVER_REFUSED', `${options.url}: only http:// and https:// servers`, {
        exitCode: 64,
      });
    }
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    this.base = base;
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** The server's origin, for messages. */
  get where(): string {
    return this.base.href.replace(/\/$/, '');
  }

  /** GET or POST a route; the JSON answer validated by `schema`. 404 gives undefined when `allow404`. */
  async request<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options: { body?: unknown; allow404?: boolean; maxBytes?: number } = {},
  ): Promise<T | undefined> {
    return (await this.exchange(method, route, schema, options))?.body;
  }

  /** As `request`, with the answer's status (a route may answer 200 or 201). */
  async exchange<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options: { body?: unknown; allow404?: boolean; maxBytes?: number } = {},
  ): Promise<ServerAnswer<T> | undefined> {
    const url = new URL(route.replace(/^\//, ''), this.base);
    const what = `${method} ${url.pathname}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.timeoutMs);
    try {
      let response: Response;
      try {
        response = await this.fetchImpl(url, {
          method,
          headers,
          body: options.body === undefined ? undefined : JSON.stringify(options.body),
          signal: controller.signal,
          redirect: 'error',
        });
      } catch (e) {
        if (controller.signal.aborted) {
          throw new ServerError(
            'SERVER_TIMEOUT',
            `the server ${this.where} did not answer ${what} within ${this.timeoutMs / 1000} s`,
            { cause: e },
          );
        }
        const cause = (e as { cause?: { code?: string; message?: string } }).cause;
        throw new ServerError(
          'SERVER_UNREACHABLE',
          `cannot reach the server ${this.where}: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
          { cause: e },
        );
      }
      const max = options.maxBytes ?? this.maxResponseBytes;
      const text = await readBody(response, max, () => controller.signal.aborted).catch((e: unknown) => {
        if (e instanceof ServerError) throw e;
        throw new ServerError(
          controller.signal.aborted ? 'SERVER_TIMEOUT' : 'SERVER_UNREACHABLE',
          `the server ${this.where} broke off its answer to ${what}: ${(e as Error).message}`,
          { cause: e },
        );
      });
      if (response.status === 404 && options.allow404) return undefined;
      if (response.status < 200 || response.status > 299) {
        const { message, apiCode } = refusal(text);
        const code = {
          status: response.status,
          ...(apiCode === undefined ? {} : { apiCode }),
          ...(message === undefined ? {} : { serverMessage: message }),
        };
        if (response.status === 401 || response.status === 403) {
          throw new ServerError(
            'SERVER_UNAUTHORIZED',
            `the server ${this.where} refused ${what} (${response.status}${message ? `: ${message}` : ''}); ` +
              'give a reader token with SYSATTEST_TOKEN or "token" in the config file',
            code,
          );
        }
        throw new ServerError(
          'SERVER_REFUSED',
          `the server ${this.where} answered ${what} with HTTP ${response.status}${message ? `: ${message}` : ''}`,
          response.status >= 500 ? code : { exitCode: 65, ...code },
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new ServerError(
          'SERVER_BAD_RESPONSE',
          `the server ${this.where} answered ${what} with something not JSON`,
        );
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new ServerError(
          'SERVER_BAD_RESPONSE',
          `the server ${this.where} answered ${what} with an unexpected shape` +
            (issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : ''),
        );
      }
      return { status: response.status, body: parsed.data };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The body as text, at most `max` bytes (SERVER_RESPONSE_TOO_LARGE past it; the rest is not read). */
async function readBody(response: Response, max: number, aborted: () => boolean): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > max) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(declared, max);
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(total, max);
    }
    chunks.push(value);
    if (aborted()) throw new Error('timed out');
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function tooLarge(size: number, max: number): ServerError {
  return new ServerError(
    'SERVER_RESPONSE_TOO_LARGE',
    `the server's answer is over ${max} bytes (at least ${size}): refused`,
  );
}

/** What a refusal says: the protocol's `{ error: { code, message } }` body, when it is one; else the text. */
function refusal(text: string): { message: string | undefined; apiCode: ApiErrorCode | undefined } {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    const m = body.error?.message;
    const c = body.error?.code;
    return {
      message: typeof m === 'string' ? m.slice(0, 300) : undefined,
      apiCode: typeof c === 'string' && isApiErrorCode(c) ? c : undefined,
    };
  } catch {
    return {
      message: text.length > 0 ? text.slice(0, 200).replace(/\s+/g, ' ') : undefined,
      apiCode: undefined,
    };
  }
}
