/**
 * Test support (not part of the client's API): a stand-in for a server's `POST /v1/reports` on
 * 127.0.0.1, answering as the contract says (201 with a receipt, 200 for a reportId it already
 * stored) unless a test scripts another answer, and recording every upload it was sent. Any other
 * request is passed through to `upstream` (a real `sysattest-server`, for the lookups of a real
 * `sysattest verify`), or answered 404 without one.
 */
import * as http from 'node:http';
import { API_ROUTES } from '@sysattest/core';

export interface ReceivedUpload {
  reportId: string;
  hostname: string;
  report: { schema: string; summary: { packages: number } };
  authorization: string | undefined;
  /** The status it was answered with. */
  status: number;
}

/** An answer instead of the default one; undefined: the default. */
export type ReceiverScript = (upload: ReceivedUpload) => { status: number; body: unknown } | undefined;

export interface ReportReceiver {
  url: string;
  /** Every upload, in the order received (resends included). */
  received: ReceivedUpload[];
  /** The reportIds stored (each once). */
  stored: string[];
  /** What the next uploads are answered (set by each test; undefined: as the contract says). */
  script: ReceiverScript | undefined;
  stop(): Promise<void>;
}

const HOST = 'test-host';

export async function startReportReceiver(options: { upstream?: string } = {}): Promise<ReportReceiver> {
  const receiver: Omit<ReportReceiver, 'url' | 'stop'> = { received: [], stored: [], script: undefined };
  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) =>
      send(res, 502, { error: { code: 'INTERNAL', message: String(e) } }),
    );
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await readAll(req);
    const url = new URL(req.url ?? '/', 'http://receiver');
    if (req.method === 'POST' && url.pathname === API_ROUTES.reports) {
      const upload = JSON.parse(body.toString('utf8')) as ReceivedUpload;
      const seen: ReceivedUpload = { ...upload, authorization: req.headers.authorization, status: 0 };
      receiver.received.push(seen);
      const scripted = receiver.script?.(seen);
      if (scripted !== undefined) {
        seen.status = scripted.status;
        return send(res, scripted.status, scripted.body);
      }
      const again = receiver.stored.includes(upload.reportId);
      if (!again) receiver.stored.push(upload.reportId);
      seen.status = again ? 200 : 201;
      return send(res, seen.status, {
        host: HOST,
        reportId: upload.reportId,
        verdict: 'clean',
        receivedAt: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      });
    }
    if (options.upstream === undefined)
      return send(res, 404, { error: { code: 'NOT_FOUND', message: 'no route' } });
    const headers: Record<string, string> = {};
    for (const h of ['content-type', 'accept', 'authorization']) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    const answer = await fetch(`${options.upstream}${url.pathname}${url.search}`, {
      method: req.method ?? 'GET',
      headers,
      ...(body.length > 0 ? { body } : {}),
      signal: AbortSignal.timeout(60_000),
    });
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' });
    res.end(Buffer.from(await answer.arrayBuffer()));
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  const stop = (): Promise<void> =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return Object.assign(receiver, { url: `http://127.0.0.1:${port}`, stop });
}

/** The receipt host the receiver answers with. */
export const RECEIVER_HOST = HOST;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}
