import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { HttpTransport, ServerError } from './http-transport.js';

/**
 * The transport against a real loopback server that misbehaves the ways a hostile server, a
 * broken one or a proxy in front of one can.
 */
describe('HttpTransport against a real server', () => {
  let server: http.Server;
  let url: string;
  const sockets = new Set<Socket>();
  let streamedBytes = 0;

  before(async () => {
    server = http.createServer((req, res) => void route(req, res));
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/prefix`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const send = (status: number, body: string, type = 'application/json'): void => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    switch (req.url) {
      case '/prefix/ok':
        return send(200, JSON.stringify({ n: 1 }));
      case '/prefix/echo': {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        return send(
          201,
          JSON.stringify({
            type: req.headers['content-type'],
            auth: req.headers.authorization,
            body: Buffer.concat(chunks).toString('base64'),
          }),
        );
      }
      case '/prefix/streamed-huge': {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const push = (): void => {
          while (streamedBytes < 64 * 1024 * 1024 && !res.destroyed) {
            streamedBytes += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', push);
          }
          res.end('{}');
        };
        return push();
      }
      case '/prefix/declared-huge':
        res.writeHead(200, {
          'content-type': 'application/json',
          'content-length': String(10 * 1024 * 1024),
        });
        return void res.write('{');
      case '/prefix/silent':
        return; // never answers
      case '/prefix/lease':
        return send(
          409,
          JSON.stringify({ error: { code: 'LEASE_LOST', message: 'job 1 is leased to "b"' } }),
        );
      case '/prefix/newer-code':
        return send(409, JSON.stringify({ error: { code: 'SOMETHING_NEW', message: 'a newer server' } }));
      case '/prefix/forbidden':
        return send(
          403,
          JSON.stringify({ error: { code: 'FORBIDDEN', message: 'needs the generator role' } }),
        );
      case '/prefix/proxy':
        return send(502, '<html>\n<body><h1>502 Bad Gateway</h1></body>\n</html>', 'text/html');
      case '/prefix/wrong-shape':
        return send(200, JSON.stringify({ n: 'one' }));
      case '/prefix/not-json':
        return send(200, '<html>hello</html>', 'text/html');
      default:
        return send(404, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
    }
  }

  const schema = z.object({ n: z.number() });
  const transport = (over: Partial<ConstructorParameters<typeof HttpTransport>[0]> = {}) =>
    new HttpTransport({ url, timeoutMs: 2000, maxResponseBytes: 1024 * 1024, ...over });

  async function failure(p: Promise<unknown>): Promise<ServerError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof ServerError, `a ServerError, got ${String(e)}`);
      return e;
    }
    assert.fail('expected a failure');
  }

  it('answers a valid body, under the base URL’s path prefix', async () => {
    assert.deepEqual(await transport().exchange('GET', '/ok', schema), { status: 200, body: { n: 1 } });
  });

  it('sends JSON or bytes with their content type, and the bearer token', async () => {
    const echo = z.object({ type: z.string(), auth: z.string(), body: z.string() });
    const t = transport({ token: 's3cret' });
    const json = await t.exchange('POST', '/echo', echo, { body: { json: { a: 1 } } });
    assert.equal(json?.status, 201);
    assert.equal(json?.body.type, 'application/json');
    assert.equal(json?.body.auth, 'Bearer s3cret');
    assert.equal(Buffer.from(json?.body.body ?? '', 'base64').toString(), '{"a":1}');
    const bytes = await t.exchange('POST', '/echo', echo, {
      body: { bytes: new Uint8Array([1, 2, 3]), contentType: 'application/octet-stream' },
    });
    assert.equal(bytes?.body.type, 'application/octet-stream');
    assert.deepEqual([...Buffer.from(bytes?.body.body ?? '', 'base64')], [1, 2, 3]);
  });

  it('abandons a body past the cap and reports it as too large', async () => {
    const e = await failure(transport().exchange('GET', '/streamed-huge', schema));
    assert.equal(e.code, 'SERVER_RESPONSE_TOO_LARGE');
    assert.equal(e.exitCode, 69);
    // The server stopped being read well before it finished its 64 MiB.
    assert.ok(streamedBytes < 64 * 1024 * 1024, `the server wrote ${streamedBytes} bytes`);
  });

  it('refuses an answer declared over the cap without reading it', async () => {
    const e = await failure(transport().exchange('GET', '/declared-huge', schema));
    assert.equal(e.code, 'SERVER_RESPONSE_TOO_LARGE');
    assert.match(e.message, /at least 10485760/);
  });

  it('times out on a silent server', async () => {
    const started = Date.now();
    const e = await failure(transport({ timeoutMs: 300 }).exchange('GET', '/silent', schema));
    assert.equal(e.code, 'SERVER_TIMEOUT');
    assert.ok(Date.now() - started < 1500);
  });

  it('throws the caller’s reason when the caller gives up, not a timeout', async () => {
    const controller = new AbortController();
    const reason = new Error('stopping');
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(
      transport().exchange('GET', '/silent', schema, { signal: controller.signal }),
      reason,
    );
  });

  it('gives the protocol’s error code, status and message from an error body', async () => {
    const e = await failure(transport().exchange('POST', '/lease', schema, { body: { json: {} } }));
    assert.equal(e.code, 'SERVER_REFUSED');
    assert.equal(e.apiCode, 'LEASE_LOST');
    assert.equal(e.status, 409);
    assert.equal(e.serverMessage, 'job 1 is leased to "b"');
    assert.equal(e.exitCode, 65);
    const newer = await failure(transport().exchange('GET', '/newer-code', schema));
    assert.equal(newer.apiCode, undefined, 'a code this side does not know is no code');
    assert.equal(newer.serverMessage, 'a newer server');
  });

  it('tells a refused token apart, with the caller’s hint', async () => {
    const e = await failure(transport({ tokenHint: 'set TOKEN' }).exchange('GET', '/forbidden', schema));
    assert.equal(e.code, 'SERVER_UNAUTHORIZED');
    assert.equal(e.apiCode, 'FORBIDDEN');
    assert.equal(e.exitCode, 64);
    assert.match(e.message, /403: needs the generator role\); set TOKEN$/);
  });

  it('gives a proxy’s HTML 502 as a refusal without apiCode', async () => {
    const e = await failure(transport().exchange('GET', '/proxy', schema));
    assert.equal(e.code, 'SERVER_REFUSED');
    assert.equal(e.status, 502);
    assert.equal(e.apiCode, undefined);
    assert.match(e.serverMessage ?? '', /^<html> <body><h1>502 Bad Gateway/);
    assert.equal(e.exitCode, 69);
  });

  it('reports a body that is not JSON or fails the schema as BAD_RESPONSE', async () => {
    assert.equal(
      (await failure(transport().exchange('GET', '/not-json', schema))).code,
      'SERVER_BAD_RESPONSE',
    );
    const e = await failure(transport().exchange('GET', '/wrong-shape', schema));
    assert.equal(e.code, 'SERVER_BAD_RESPONSE');
    assert.match(e.message, /n:/);
  });

  it('gives undefined for a 404 only when the caller allows it', async () => {
    assert.equal(await transport().exchange('GET', '/nothing', schema, { allow404: true }), undefined);
    const e = await failure(transport().exchange('GET', '/nothing', schema));
    assert.equal(e.apiCode, 'NOT_FOUND');
  });

  it('tells an unreachable server apart, and refuses a URL it will not use', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const e = await failure(
      new HttpTransport({ url: `http://127.0.0.1:${port}` }).exchange('GET', '/ok', schema),
    );
    assert.equal(e.code, 'SERVER_UNREACHABLE');
    assert.match(e.message, /ECONNREFUSED/);
    assert.throws(
      () => new HttpTransport({ url: 'ftp://x' }),
      (x: unknown) => (x as ServerError).exitCode === 64,
    );
  });
});
