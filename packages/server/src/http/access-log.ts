/**
 * The access log: one line per answered request, at info, through the app's logger (pino, whose
 * redaction keeps credentials out of every line; see core's `log/`). A line names the route
 * pattern, the path without its query, the status, how long the answer took and who called: the
 * token's name and role, never its secret, and no header at all.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Longest path written (a URL is the client's to choose). */
const MAX_PATH = 512;

export interface AccessEntry {
  event: 'request';
  method: string;
  /** The route pattern (`/v1/manifests/:digest`), or `unmatched` when no route serves the URL. */
  route: string;
  /** The path asked for, without its query string, cut at MAX_PATH characters. */
  path: string;
  status: number;
  /** Milliseconds from receiving the request to sending the answer, to 0.1 ms. */
  durationMs: number;
  /** The client address (X-Forwarded-For's only from trusted proxies). */
  ip: string;
  /** The caller's token, by name and role, when the route looked one up and it was valid. */
  token?: { name: string; role: string };
}

/** What the access line of one answered request says, and its message for people. */
export function accessEntry(
  request: Pick<FastifyRequest, 'method' | 'url' | 'ip' | 'sysattestCaller'> & {
    routeOptions: { url?: string | undefined };
  },
  reply: Pick<FastifyReply, 'statusCode' | 'elapsedTime'>,
): { entry: AccessEntry; message: string } {
  const query = request.url.indexOf('?');
  const path = (query < 0 ? request.url : request.url.slice(0, query)).slice(0, MAX_PATH);
  const token = request.sysattestCaller?.token;
  const entry: AccessEntry = {
    event: 'request',
    method: request.method,
    route: request.routeOptions.url ?? 'unmatched',
    path,
    status: reply.statusCode,
    durationMs: Math.round(reply.elapsedTime * 10) / 10,
    ip: request.ip,
    ...(token === undefined ? {} : { token: { name: token.name, role: token.role } }),
  };
  return { entry, message: `${entry.method} ${path} ${entry.status} ${entry.durationMs} ms` };
}

/** Writes the access line of every request the app answers. */
export function logAccess(app: FastifyInstance): void {
  app.addHook('onResponse', async (request, reply) => {
    const { entry, message } = accessEntry(request, reply);
    request.log.info(entry, message);
  });
}
