import type { z } from 'zod';
import { EXIT } from '../cli/run-cli.js';
import { SysattestError } from '../errors.js';
import { apiErrorBodySchema, isApiErrorCode, type ApiErrorCode } from '../protocol/errors.js';

/**
 * The one HTTP transport to a sysattest server, for the client and the generator's worker: JSON
 * (or bytes) over HTTP(S) with a bearer token, a timeout per request, a cap on every response body
 * (read as a stream and abandoned past the cap, so a hostile server cannot make a caller buffer
 * without bound), answers validated with the protocol's schemas, and refusals turned into coded
 * errors carrying the protocol's error code. Nothing here is trusted: callers verify every signed
 * document against pinned keys. Retry policy is the caller's.
 */
export type ServerErrorCode =
  | 'SERVER_UNREACHABLE' // no connection, or it broke off
  | 'SERVER_TIMEOUT' // no complete answer within the request's time
  | 'SERVER_REFUSED' // an HTTP error status other than 401/403 (or a URL we will not use)
  | 'SERVER_UNAUTHORIZED' // 401 or 403: the token is missing, unknown, revoked or lacks the role
  | 'SERVER_BAD_RESPONSE' // 2xx, but not JSON or not the protocol's shape
  | 'SERVER_RESPONSE_TOO_LARGE'; // the answer is over the cap

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
      apiCode?: ApiErrorCode | undefined;
      status?: number | undefined;
      serverMessage?: string | undefined;
    },
  ) {
    super(code, message, options);
    this.exitCode = options?.exitCode ?? defaultExitCode(code, options?.status);
    this.apiCode = options?.apiCode;
    this.status = options?.status;
    this.serverMessage = options?.serverMessage;
  }
}

/**
 * 64: the server wants a token we lack; 65: it refused this request (4xx), a caller's input;
 * 69: it is unavailable or does not speak the protocol.
 */
function defaultExitCode(code: ServerErrorCode, status: number | undefined): number {
  if (code === 'SERVER_UNAUTHORIZED') return EXIT.USAGE;
  if (code === 'SERVER_REFUSED' && status !== undefined && status < 500) return EXIT.FAILED;
  return EXIT.UNAVAILABLE;
}

/** A request body: JSON (serialised here), or bytes with their content type. */
export type RequestBody = { json: unknown } | { bytes: Uint8Array; contentType: string };

export interface ExchangeOptions {
  body?: RequestBody;
  /** A 404 answer gives undefined instead of SERVER_REFUSED. */
  allow404?: boolean;
  /** Largest answer read for this request (default: the transport's `maxResponseBytes`). */
  maxBytes?: number;
  /** This request's time (default: the transport's `timeoutMs`). */
  timeoutMs?: number;
  /** The caller gives up: the request is abandoned and the signal's reason thrown. */
  signal?: AbortSignal;
}

/** A 2xx answer: its status and its body, validated. */
export interface ServerAnswer<T> {
  status: number;
  body: T;
}

export interface HttpTransportOptions {
  /** Base URL, e.g. `https://sysattest.example.org` (a path prefix is kept). */
  url: string;
  /** Sent as `Authorization: Bearer …`. */
  token?: string;
  /** Per request (default 60 s). */
  timeoutMs?: number;
  /** Largest response body read (default 512 MiB). */
  maxResponseBytes?: number;
  /** Appended to SERVER_UNAUTHORIZED messages: where the user sets the token. */
  tokenHint?: string;
  /** For tests: the fetch implementation. */
  fetch?: typeof fetch;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 512 * 1024 * 1024;

export class HttpTransport {
  readonly base: URL;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: HttpTransportOptions) {
    this.base = parseBaseUrl(options.url);
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** The server's origin and prefix, for messages. */
  get where(): string {
    return this.base.href.replace(/\/$/, '');
  }

  /** GET or POST a route; the JSON answer validated by `schema`, with its status. */
  exchange<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options?: ExchangeOptions & { allow404?: false },
  ): Promise<ServerAnswer<T>>;
  exchange<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options?: ExchangeOptions,
  ): Promise<ServerAnswer<T> | undefined>;
  async exchange<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options: ExchangeOptions = {},
  ): Promise<ServerAnswer<T> | undefined> {
    const url = new URL(route.replace(/^\//, ''), this.base);
    const what = `${method} ${url.pathname}`;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timer.signal]) : timer.signal;
    const broken = (e: unknown, verb: string): never => {
      if (options.signal?.aborted) throw options.signal.reason;
      if (e instanceof ServerError) throw e;
      if (timer.signal.aborted) {
        throw new ServerError(
          'SERVER_TIMEOUT',
          `the server ${this.where} did not answer ${what} within ${timeoutMs / 1000} s`,
          { cause: e },
        );
      }
      throw new ServerError('SERVER_UNREACHABLE', `${verb}: ${describeNetworkError(e)}`, { cause: e });
    };
    try {
      const response = await this.fetchImpl(url, this.init(method, options.body, signal)).catch(
        (e: unknown) => broken(e, `cannot reach the server ${this.where}`),
      );
      const max = options.maxBytes ?? this.maxResponseBytes;
      const text = await readBounded(response, max).catch((e: unknown) =>
        broken(e, `the server ${this.where} broke off its answer to ${what}`),
      );
      if (response.status === 404 && options.allow404) return undefined;
      if (response.status < 200 || response.status > 299) throw this.refusal(response.status, text, what);
      return { status: response.status, body: this.parse(text, schema, what) };
    } finally {
      clearTimeout(timeout);
    }
  }

  private init(method: string, body: RequestBody | undefined, signal: AbortSignal): RequestInit {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'json' in body ? 'application/json' : body.contentType;
    const payload = body === undefined ? undefined : 'json' in body ? JSON.stringify(body.json) : body.bytes;
    // A redirect would carry the token to another origin: the server's URL is configured exactly.
    return { method, headers, body: payload, signal, redirect: 'error' };
  }

  private refusal(status: number, text: string, what: string): ServerError {
    const { message, apiCode } = refusalBody(text);
    const said = message ? `: ${message}` : '';
    const details = { status, apiCode, serverMessage: message };
    if (status === 401 || status === 403) {
      const hint = this.options.tokenHint ? `; ${this.options.tokenHint}` : '';
      return new ServerError(
        'SERVER_UNAUTHORIZED',
        `the server ${this.where} refused ${what} (${status}${said})${hint}`,
        details,
      );
    }
    return new ServerError(
      'SERVER_REFUSED',
      `the server ${this.where} answered ${what} with HTTP ${status}${said}`,
      details,
    );
  }

  private parse<T>(text: string, schema: z.ZodType<T>, what: string): T {
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
    if (parsed.success) return parsed.data;
    const issue = parsed.error.issues[0];
    throw new ServerError(
      'SERVER_BAD_RESPONSE',
      `the server ${this.where} answered ${what} with an unexpected shape` +
        (issue ? ` (${issue.path.join('.') || 'body'}: ${issue.message})` : ''),
    );
  }
}

function parseBaseUrl(text: string): URL {
  let base: URL;
  try {
    base = new URL(text);
  } catch {
    throw new ServerError('SERVER_REFUSED', `${text} is not a URL`, { exitCode: EXIT.USAGE });
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') {
    throw new ServerError('SERVER_REFUSED', `${text}: only http:// and https:// servers`, {
      exitCode: EXIT.USAGE,
    });
  }
  if (!base.pathname.endsWith('/')) base.pathname += '/';
  return base;
}

/** The body as text, at most `max` bytes (SERVER_RESPONSE_TOO_LARGE past it; the rest is not read). */
async function readBounded(response: Response, max: number): Promise<string> {
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
  }
  return Buffer.concat(chunks, total).toString('utf8');
}

function tooLarge(size: number, max: number): ServerError {
  return new ServerError(
    'SERVER_RESPONSE_TOO_LARGE',
    `the server's answer is over ${max} bytes (at least ${size}): refused`,
  );
}

/**
 * What a refusal says: the protocol's error body (its code when this side knows it), or else the
 * start of the text (a proxy's page).
 */
function refusalBody(text: string): { message: string | undefined; apiCode: ApiErrorCode | undefined } {
  const body = apiErrorBodySchema.safeParse(parseJson(text));
  if (body.success) {
    const { code, message } = body.data.error;
    return { message: message.slice(0, 300), apiCode: isApiErrorCode(code) ? code : undefined };
  }
  const start = text.slice(0, 200).replace(/\s+/g, ' ').trim();
  return { message: start.length > 0 ? start : undefined, apiCode: undefined };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Why fetch failed, as a user can act on it: undici's code (ECONNREFUSED…) when it gave one. */
function describeNetworkError(e: unknown): string {
  const err = e as { message?: string; cause?: { code?: string; message?: string } };
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(e);
}
