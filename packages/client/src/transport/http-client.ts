import type { z } from 'zod';
import { HttpTransport, type HttpTransportOptions, type ServerAnswer } from '@sysattest/core';

/**
 * The client's door to a sysattest server: core's one transport (timeouts, bounded answers,
 * validated JSON, coded `ServerError`s with their exit codes), with the client's reader token and
 * its hint for a refused one. Nothing here is trusted: callers verify every signed document
 * against pinned keys.
 */
export {
  DEFAULT_MAX_RESPONSE_BYTES,
  ServerError,
  type ServerAnswer,
  type ServerErrorCode,
} from '@sysattest/core';

export type ServerClientOptions = Omit<HttpTransportOptions, 'tokenHint'>;

interface ClientRequestOptions {
  /** Sent as JSON. */
  body?: unknown;
  allow404?: boolean;
  maxBytes?: number;
}

const TOKEN_HINT = 'give a reader token with SYSATTEST_TOKEN or "token" in the config file';

export class ServerClient {
  private readonly transport: HttpTransport;

  constructor(options: ServerClientOptions) {
    this.transport = new HttpTransport({ ...options, tokenHint: TOKEN_HINT });
  }

  get base(): URL {
    return this.transport.base;
  }

  /** The server's origin, for messages. */
  get where(): string {
    return this.transport.where;
  }

  /** GET or POST a route; the JSON answer validated by `schema`. 404 gives undefined when `allow404`. */
  async request<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    options: ClientRequestOptions = {},
  ): Promise<T | undefined> {
    return (await this.exchange(method, route, schema, options))?.body;
  }

  /** As `request`, with the answer's status (a route may answer 200 or 201). */
  exchange<T>(
    method: 'GET' | 'POST',
    route: string,
    schema: z.ZodType<T>,
    { body, ...options }: ClientRequestOptions = {},
  ): Promise<ServerAnswer<T> | undefined> {
    return this.transport.exchange(method, route, schema, {
      ...options,
      ...(body === undefined ? {} : { body: { json: body } }),
    });
  }
}
