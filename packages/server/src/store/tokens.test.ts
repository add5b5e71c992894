import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { isStoreError } from './store-error.js';
import { TEST_DIALECTS, withStore } from '../testkit/store.js';
import { TOKEN_PREFIX } from './tokens.js';

for (const dialect of TEST_DIALECTS) {
  describe(`tokens (${dialect})`, () => {
    it('store only a hash of the secret, which is shown once', () =>
      withStore(dialect, async ({ store, raw, db }) => {
        const { id, secret } = await store.createToken('generator', 'build host 1');
        assert.ok(secret.startsWith(TOKEN_PREFIX));
        assert.ok(secret.length >= TOKEN_PREFIX.length + 43, '32 random bytes');
        const rows = await raw().selectFrom('tokens').selectAll().execute();
        assert.equal(rows.length, 1);
        const atRest = JSON.stringify(rows);
        assert.ok(!atRest.includes(secret) && !atRest.includes(secret.slice(TOKEN_PREFIX.length)));
        assert.equal(rows[0]?.secret_hash, createHash('sha256').update(secret).digest('hex'));
        if (dialect === 'sqlite') {
          // Not in any page of the database file or its write-ahead log either.
          const file = db.url.slice('sqlite:'.length);
          for (const f of [file, `${file}-wal`]) {
            if (fs.existsSync(f))
              assert.ok(!fs.readFileSync(f).includes(Buffer.from(secret)), `${f} holds no secret`);
          }
        }
        assert.deepEqual(await store.authenticate(secret), { id, role: 'generator', name: 'build host 1' });
        const listed = await store.listTokens();
        assert.deepEqual(
          listed.map((t) => [t.id, t.name, t.role, t.revokedAt]),
          [[id, 'build host 1', 'generator', undefined]],
        );
        assert.ok(!JSON.stringify(listed).includes(secret));
      }));

    it('refuse revoked, unknown and malformed secrets', () =>
      withStore(dialect, async ({ store, clock }) => {
        const admin = await store.createToken('admin', 'first admin');
        const reader = await store.createToken('reader', 'dashboard');
        assert.notEqual(admin.secret, reader.secret);
        clock.advance(60);
        const revoked = await store.revokeToken(admin.id);
        assert.equal(revoked.revokedAt, clock.now().toISOString());
        assert.equal(await store.authenticate(admin.secret), undefined);
        assert.equal((await store.authenticate(reader.secret))?.role, 'reader');
        assert.equal(
          (await store.revokeToken(admin.id)).revokedAt,
          revoked.revokedAt,
          'revoking twice is a no-op',
        );
        for (const bad of [
          '',
          reader.secret.slice(0, -1),
          `${reader.secret}x`,
          reader.secret.slice(TOKEN_PREFIX.length),
          'x'.repeat(10_000),
          42,
        ]) {
          assert.equal(await store.authenticate(bad as string), undefined);
        }
        await assert.rejects(store.revokeToken(999), (e: unknown) => isStoreError(e, 'NOT_FOUND'));
        await assert.rejects(store.createToken('root' as never, 'x'), (e: unknown) =>
          isStoreError(e, 'INVALID'),
        );
        await assert.rejects(store.createToken('admin', ' '), (e: unknown) => isStoreError(e, 'INVALID'));
        assert.equal((await store.stats()).activeTokens, 1);
      }));
  });
}
