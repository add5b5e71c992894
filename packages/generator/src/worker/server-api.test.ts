import { strict as assert } from 'node:assert';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ServerError } from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import { WorkerLog } from './log.js';
import { ServerApi, ServerRefusal, Stopped } from './server-api.js';

/**
 * The worker's policy over core's transport, against a loopback server: wait out an unreachable
 * server, give up on a refusal at once with the protocol's code, stop when the worker stops.
 */
describe('ServerApi over the transport', () => {
  let server: http.Server;
  let baseUrl: string;
  let unavailable = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      const send = (status: number, body: unknown, type = 'application/json'): void => {
        res.writeHead(status, { 'content-type': type });
        res.end(typeof body === 'string' ? body : JSON.stringify(body));
      };
      const error = (code: string, message: string) => ({ error: { code, message } });
      if (req.url === '/v1/jobs/claim') {
        if (req.headers.authorization !== 'Bearer good')
          return send(401, error('UNAUTHORIZED', 'unknown token'));
        if (unavailable-- > 0) return send(503, error('UNAVAILABLE', 'no database'));
        return send(200, { jobs: [] });
      }
      if (req.url === '/v1/jobs/1/complete') return send(409, error('LEASE_LOST', 'job 1 is leased to "b"'));
      if (req.url === '/v1/jobs/1/heartbeat') return send(502, '<html>Bad Gateway</html>', 'text/html');
      return send(404, error('NOT_FOUND', 'no route'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
  });

  function api(token = 'good', signal = new AbortController().signal) {
    const events: string[] = [];
    const log = new WorkerLog('json', { write: (s: string) => events.push(JSON.parse(s).event) });
    return {
      api: new ServerApi({ baseUrl, token, log, signal, reconnectBaseMs: 10, reconnectMaxMs: 20 }),
      events,
    };
  }

  it('waits out a server without its database, then says it is back', async () => {
    unavailable = 2;
    const { api: a, events } = api();
    assert.deepEqual(await a.claim('w', ['debian/bookworm/amd64'], 1, 60), []);
    assert.deepEqual(events, ['server-unreachable', 'server-unreachable', 'server-reachable']);
  });

  it('gives up on a refusal at once, with the protocol’s code', async () => {
    const { api: a, events } = api();
    const e = await a.complete(1, 'w').catch((x: unknown) => x);
    assert.ok(e instanceof ServerRefusal);
    assert.equal(e.apiCode, 'LEASE_LOST');
    assert.equal(e.status, 409);
    assert.ok(e.cause instanceof ServerError);
    assert.equal(e.exitCode, 65);
    assert.deepEqual(events, []);
    const denied = await api('bad')
      .api.claim('w', [], 1, 60)
      .catch((x: unknown) => x);
    assert.ok(denied instanceof ServerRefusal && denied.isAuth && denied.apiCode === 'UNAUTHORIZED');
  });

  it('one attempt without retry: a proxy’s 502 is the server unreachable, not a refusal', async () => {
    const e = await api()
      .api.heartbeat(1, 'w')
      .catch((x: unknown) => x);
    assert.ok(e instanceof GeneratorError && !(e instanceof ServerRefusal), String(e));
    assert.match(e.message, /unreachable: .*HTTP 502: <html>Bad Gateway<\/html>/);
  });

  it('stops waiting when the worker stops', async () => {
    unavailable = 1_000;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(api('good', controller.signal).api.claim('w', [], 1, 60), Stopped);
    unavailable = 0;
  });
});
