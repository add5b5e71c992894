import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import { ServerClient, ServerError } from './http-client.js';
import { HttpManifestSource } from './http-source.js';

/**
 * What the client adds to core's transport (whose own tests cover oversized answers, silence,
 * wrong shapes and unreachable servers): its exit codes and token hint, and the lookup's checks.
 */
describe('ServerClient against a misbehaving server', () => {
  let server: http.Server;
  let url: string;
  const sockets = new Set<import('node:net').Socket>();

  before(async () => {
    server = http.createServer((req, res) => {
      const send = (status: number, body: string, headers: http.OutgoingHttpHeaders = {}): void => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(body);
      };
      switch (req.url) {
        case '/unauthorized':
          return send(
            401,
            JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'this route needs a token' } }),
          );
        case '/broken':
          return send(500, JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error' } }));
        case '/v1/lookup':
          // One item answered for two asked.
          return send(
            200,
            JSON.stringify({
              platform: 'debian/bookworm/amd64',
              items: [{ name: 'a', version: '1', arch: 'amd64', status: 'pending', deferred: 'quota' }],
            }),
          );
        default:
          return send(404, JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no route' } }));
      }
    });
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });

  const schema = z.object({ n: z.number() });
  const client = (over: Partial<ConstructorParameters<typeof ServerClient>[0]> = {}) =>
    new ServerClient({ url, timeoutMs: 2000, maxResponseBytes: 1024 * 1024, ...over });

  async function failure(p: Promise<unknown>): Promise<ServerError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof ServerError, `a ServerError, got ${String(e)}`);
      return e;
    }
    assert.fail('expected a failure');
  }

  it('a 401 asks for a token (exit 64); a 500 is unavailable (69); a 404 is undefined when allowed', async () => {
    const e = await failure(client().request('GET', '/unauthorized', schema));
    assert.equal(e.code, 'SERVER_UNAUTHORIZED');
    assert.equal(e.exitCode, 64);
    assert.match(e.message, /SYSATTEST_TOKEN/);
    assert.equal(e.apiCode, 'UNAUTHORIZED');
    const b = await failure(client().request('GET', '/broken', schema));
    assert.equal(b.exitCode, 69);
    assert.match(b.message, /HTTP 500: internal error/);
    assert.equal(b.apiCode, 'INTERNAL');
    assert.equal(await client().request('GET', '/nothing', schema, { allow404: true }), undefined);
  });

  it('a lookup answer with the wrong number of items is refused', async () => {
    const source = new HttpManifestSource(client());
    const e = await failure(
      source.fetch({ distro: 'debian', release: 'bookworm', arch: 'amd64' }, [
        { name: 'a', version: '1', arch: 'amd64' },
        { name: 'b', version: '1', arch: 'amd64' },
      ]),
    );
    assert.match(e.message, /answered 1 items for 2 asked/);
  });

  it('a pending item the server did not queue says why (its anonymous quota, or tokens only)', async () => {
    const source = new HttpManifestSource(client());
    const said = await source.statuses({ distro: 'debian', release: 'bookworm', arch: 'amd64' }, [
      { name: 'a', version: '1', arch: 'amd64' },
    ]);
    assert.deepEqual(said, [{ status: 'pending', deferred: 'quota' }]);
  });
});
