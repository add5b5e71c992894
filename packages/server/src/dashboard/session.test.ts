/**
 * What an attacker holding a copy of the database (a backup, a replica) can do with the
 * dashboard's sessions: nothing. Every token's stored hash is in that copy; the session secret
 * is not (session-secret.ts), and cookies are keyed by both.
 */
import { strict as assert } from 'node:assert';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../http/index.js';
import { TEST_DIALECTS, countRows, withStore } from '../testkit/store.js';

const SECRET = Buffer.alloc(32, 9);

/** Logs in through the form, as a browser does; returns the session cookie (`name=value`). */
async function login(app: FastifyInstance, token: string): Promise<string> {
  const form = await app.inject({ method: 'GET', url: '/dashboard/login' });
  const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
  const cookie = String(form.headers['set-cookie']).split(';')[0] as string;
  const res = await app.inject({
    method: 'POST',
    url: '/dashboard/login',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ csrf, token, next: '/dashboard/admin' }).toString(),
  });
  assert.equal(res.statusCode, 303, res.body);
  const session = ([] as string[])
    .concat(res.headers['set-cookie'] ?? [])
    .find((c) => c.startsWith('sysattest_session='));
  return String(session).split(';')[0] as string;
}

const hmac = (key: Uint8Array, text: string | Uint8Array): Buffer =>
  createHmac('sha256', key).update(text).digest();

/**
 * The cookie and CSRF token the database alone lets one compute. `v1` is the old scheme (keyed
 * by the token's stored hash); `v2` is today's format keyed as if the hash were the secret.
 */
function forged(scheme: 'v1' | 'v2', tokenId: number, storedHash: string): { cookie: string; csrf: string } {
  const hash = Buffer.from(storedHash, 'hex');
  const key =
    scheme === 'v1'
      ? hmac(hash, 'sysattest-dashboard-session-v1')
      : hmac(
          hash,
          Buffer.concat([Buffer.from(`sysattest-dashboard-session-v2\u0000${tokenId}\u0000`), hash]),
        );
  const nonce = 'forgedforgedforged';
  const body = `${scheme}.${tokenId}.${Math.floor(Date.now() / 1000) + 3600}.${nonce}`;
  return {
    cookie: `sysattest_session=${body}.${hmac(key, body).toString('base64url')}`,
    csrf: hmac(key, `csrf.${nonce}`).toString('base64url'),
  };
}

for (const dialect of TEST_DIALECTS) {
  describe(`dashboard sessions and a copy of the database (${dialect})`, () => {
    it('a session cookie forged from the database contents alone is refused; nothing is created', () =>
      withStore(dialect, async ({ store, raw }) => {
        const admin = await store.createToken('admin', 'operator');
        const app = buildApp({ store, sessionSecret: SECRET, rateLimit: false });
        try {
          const row = await raw()
            .selectFrom('tokens')
            .select(['id', 'secret_hash'])
            .where('id', '=', admin.id)
            .executeTakeFirstOrThrow();
          for (const scheme of ['v1', 'v2'] as const) {
            const { cookie, csrf } = forged(scheme, row.id, row.secret_hash);
            const page = await app.inject({ method: 'GET', url: '/dashboard/admin', headers: { cookie } });
            assert.equal(page.statusCode, 303, `${scheme}: the admin page sends it to the login form`);
            assert.match(String(page.headers.location), /^\/dashboard\/login/);
            const mint = await app.inject({
              method: 'POST',
              url: '/dashboard/tokens',
              headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
              payload: new URLSearchParams({ csrf, name: 'attacker', role: 'admin' }).toString(),
            });
            assert.equal(mint.statusCode, 401, `${scheme}: minting a token needs a real admin session`);
            assert.doesNotMatch(mint.body, /sat_/);
          }
          assert.equal(await countRows(raw(), 'tokens'), 1, 'no token was made');

          // The real login works, and is refused once the token is revoked.
          const session = await login(app, admin.secret);
          const page = await app.inject({
            method: 'GET',
            url: '/dashboard/admin',
            headers: { cookie: session },
          });
          assert.equal(page.statusCode, 200);
          await store.revokeToken(admin.id);
          const after = await app.inject({
            method: 'GET',
            url: '/dashboard/admin',
            headers: { cookie: session },
          });
          assert.equal(after.statusCode, 303);
        } finally {
          await app.close();
        }
      }));

    it('sessions outlive a restart with the same secret, not a change of secret', () =>
      withStore(dialect, async ({ store }) => {
        const admin = await store.createToken('admin', 'operator');
        const first = buildApp({ store, sessionSecret: SECRET, rateLimit: false });
        const session = await login(first, admin.secret);
        await first.close();
        for (const [secret, status] of [
          [Buffer.from(SECRET), 200],
          [Buffer.alloc(32, 8), 303],
        ] as const) {
          const next = buildApp({ store, sessionSecret: secret, rateLimit: false });
          try {
            const page = await next.inject({
              method: 'GET',
              url: '/dashboard/admin',
              headers: { cookie: session },
            });
            assert.equal(page.statusCode, status);
          } finally {
            await next.close();
          }
        }
        assert.throws(
          () => buildApp({ store, sessionSecret: Buffer.alloc(16) }),
          /session secret of at least 32 bytes/,
        );
      }));
  });
}
