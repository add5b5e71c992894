import { createHash, randomBytes } from 'node:crypto';
import { HOST_NAME } from '@sysattest/core';
import { inTransaction, iso, reading, type StoreContext } from './context.js';
import { StoreError } from './store-error.js';

/**
 * API tokens. The secret is 32 random bytes shown once, at creation; the database keeps only its
 * sha256. Authentication looks the hash up through a unique index, so the comparison that decides
 * is between hashes: nothing about the secret leaks through timing, and a copy of the database
 * yields no usable token (a 256-bit random secret cannot be found from its hash).
 *
 * A `reporter` token is bound to one host name (and only a reporter token has one): it may send
 * that host's verify reports and nothing else.
 */
export type TokenRole = 'admin' | 'generator' | 'reader' | 'reporter';
export const TOKEN_ROLES: readonly TokenRole[] = ['admin', 'generator', 'reader', 'reporter'];

/** Prefix of every secret: recognisable by people and by secret scanners. */
export const TOKEN_PREFIX = 'sat_';

export interface TokenInfo {
  id: number;
  name: string;
  role: TokenRole;
  /** reporter tokens: the host they write for. */
  host?: string;
  createdAt: string;
  revokedAt?: string;
}

/** Who a live token is: what authentication answers. */
export interface TokenIdentity {
  id: number;
  role: TokenRole;
  name: string;
  /** reporter tokens: the host they write for. */
  host?: string;
}

export interface CreatedToken {
  id: number;
  /** Shown once: it is not stored and cannot be recovered. */
  secret: string;
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export async function createToken(
  ctx: StoreContext,
  role: TokenRole,
  name: string,
  host?: string,
): Promise<CreatedToken> {
  if (!TOKEN_ROLES.includes(role))
    throw new StoreError('INVALID', `unknown token role ${JSON.stringify(role)}`);
  if (typeof name !== 'string' || name.trim() === '' || name.length > 200) {
    throw new StoreError('INVALID', 'a token name must be a non-empty string of at most 200 characters');
  }
  checkHostBinding(role, host);
  const secret = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const row = await inTransaction(ctx, (trx) =>
    trx
      .insertInto('tokens')
      .values({
        name,
        role,
        host: host ?? null,
        secret_hash: hashSecret(secret),
        created_at: iso(ctx.now()),
      })
      .returning('id')
      .executeTakeFirstOrThrow(),
  );
  return { id: row.id, secret };
}

/** A reporter token names its host; no other token has one. */
function checkHostBinding(role: TokenRole, host: string | undefined): void {
  if (role !== 'reporter') {
    if (host !== undefined)
      throw new StoreError('INVALID', `a ${role} token is bound to no host (only reporter tokens are)`);
    return;
  }
  if (host === undefined) throw new StoreError('INVALID', 'a reporter token needs the host it reports for');
  if (typeof host !== 'string' || !HOST_NAME.test(host)) {
    throw new StoreError(
      'INVALID',
      `a host name is 1 to 253 letters, digits, dots, hyphens or underscores, starting with a letter or digit: ${JSON.stringify(host).slice(0, 80)}`,
    );
  }
}

/** The token a secret belongs to, unless it is unknown or revoked. */
export async function authenticate(ctx: StoreContext, secret: string): Promise<TokenIdentity | undefined> {
  if (typeof secret !== 'string' || !secret.startsWith(TOKEN_PREFIX) || secret.length > 100) return undefined;
  const row = await reading(() =>
    ctx.db
      .selectFrom('tokens')
      .select(['id', 'role', 'name', 'host'])
      .where('secret_hash', '=', hashSecret(secret))
      .where('revoked_at', 'is', null)
      .executeTakeFirst(),
  );
  if (row === undefined) return undefined;
  return {
    id: row.id,
    role: row.role as TokenRole,
    name: row.name,
    ...(row.host === null ? {} : { host: row.host }),
  };
}

/**
 * A live token with its binding, the stored hash as bytes: stable for the token's life and gone
 * with it, so the dashboard keys a token's sessions with it (and with a secret the database does
 * not hold, which is why a value in the database may serve). Undefined once revoked.
 */
export async function sessionToken(
  ctx: StoreContext,
  id: number,
): Promise<{ id: number; role: TokenRole; name: string; binding: Buffer } | undefined> {
  const row = await reading(() =>
    ctx.db
      .selectFrom('tokens')
      .select(['id', 'name', 'role', 'secret_hash'])
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst(),
  );
  if (row === undefined) return undefined;
  return {
    id: row.id,
    role: row.role as TokenRole,
    name: row.name,
    binding: Buffer.from(row.secret_hash, 'hex'),
  };
}

/** Revokes a token (kept, for the record). NOT_FOUND for an unknown id; revoking twice is a no-op. */
export async function revokeToken(ctx: StoreContext, id: number): Promise<TokenInfo> {
  if (!Number.isSafeInteger(id) || id < 1)
    throw new StoreError('INVALID', `a token id must be a positive integer`);
  return inTransaction(ctx, async (trx) => {
    await trx
      .updateTable('tokens')
      .set({ revoked_at: iso(ctx.now()) })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
    const row = await trx.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) throw new StoreError('NOT_FOUND', `no token ${id}`);
    return toInfo(row);
  });
}

export async function listTokens(ctx: StoreContext): Promise<TokenInfo[]> {
  const rows = await reading(() => ctx.db.selectFrom('tokens').selectAll().orderBy('id').execute());
  return rows.map(toInfo);
}

function toInfo(r: {
  id: number;
  name: string;
  role: string;
  created_at: string;
  revoked_at: string | null;
  host: string | null;
}): TokenInfo {
  return {
    id: r.id,
    name: r.name,
    role: r.role as TokenRole,
    ...(r.host === null ? {} : { host: r.host }),
    createdAt: r.created_at,
    ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at }),
  };
}
