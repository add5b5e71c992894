import { KeyError, MAX_KEYRING_KEYS, TrustedKeyring } from '@sysattest/core';
import { inTransaction, iso, reading, type StoreContext } from './context.js';
import { StoreError } from './store-error.js';

/**
 * The generator keys uploads are verified against. Only public material is stored (a secret key
 * given by mistake is reduced to its public part). Removing a key keeps its row, marked removed.
 */
export interface TrustedKeyInfo {
  /** 40 upper-case hex digits. */
  fingerprint: string;
  armored: string;
  addedAt: string;
  removedAt?: string;
}

/**
 * Adds (or re-adds) one key. INVALID when the text is not exactly one usable OpenPGP key (the
 * cause is core's KeyError). A key already trusted is refreshed with the armor given (e.g. with a
 * new revocation or expiry) and keeps its `addedAt`.
 */
export async function addTrustedKey(ctx: StoreContext, armored: string): Promise<TrustedKeyInfo> {
  let keyring: TrustedKeyring;
  try {
    keyring = await TrustedKeyring.fromArmored(armored);
  } catch (e) {
    if (e instanceof KeyError) throw new StoreError('INVALID', e.message, { cause: e });
    throw e;
  }
  const [fingerprint] = keyring.fingerprints;
  const [publicArmor] = keyring.armoredPublicKeys();
  if (keyring.size !== 1 || fingerprint === undefined || publicArmor === undefined) {
    throw new StoreError('INVALID', `expected exactly one key, found ${keyring.size}`);
  }
  return inTransaction(ctx, async (trx) => {
    const now = iso(ctx.now());
    const others = await trx
      .selectFrom('trusted_keys')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('removed_at', 'is', null)
      .where('fingerprint', '!=', fingerprint)
      .executeTakeFirstOrThrow();
    if (Number(others.n) >= MAX_KEYRING_KEYS) {
      throw new StoreError('INVALID', `at most ${MAX_KEYRING_KEYS} generator keys can be trusted at once`);
    }
    await trx
      .insertInto('trusted_keys')
      .values({ fingerprint, armored: publicArmor, added_at: now, removed_at: null })
      .onConflict((oc) => oc.column('fingerprint').doUpdateSet({ armored: publicArmor, removed_at: null }))
      .execute();
    const row = await trx
      .selectFrom('trusted_keys')
      .selectAll()
      .where('fingerprint', '=', fingerprint)
      .executeTakeFirstOrThrow();
    return toInfo(row);
  });
}

/** Stops trusting a key. NOT_FOUND when it is not currently trusted. */
export async function removeTrustedKey(ctx: StoreContext, fingerprint: string): Promise<void> {
  const fpr = typeof fingerprint === 'string' ? fingerprint.replace(/\s+/g, '').toUpperCase() : '';
  await inTransaction(ctx, async (trx) => {
    const r = await trx
      .updateTable('trusted_keys')
      .set({ removed_at: iso(ctx.now()) })
      .where('fingerprint', '=', fpr)
      .where('removed_at', 'is', null)
      .executeTakeFirst();
    if (Number(r.numUpdatedRows) === 0) throw new StoreError('NOT_FOUND', `key ${fpr} is not trusted`);
  });
}

/** Currently trusted keys, or with `includeRemoved` every key ever trusted. */
export async function listTrustedKeys(
  ctx: StoreContext,
  options: { includeRemoved?: boolean } = {},
): Promise<TrustedKeyInfo[]> {
  const rows = await reading(() =>
    ctx.db
      .selectFrom('trusted_keys')
      .selectAll()
      .$if(!options.includeRemoved, (q) => q.where('removed_at', 'is', null))
      .orderBy('added_at')
      .orderBy('fingerprint')
      .execute(),
  );
  return rows.map(toInfo);
}

/** A TrustedKeyring of the currently trusted keys (empty when there are none). */
export async function trustedKeyring(ctx: StoreContext): Promise<TrustedKeyring> {
  const keys = await listTrustedKeys(ctx);
  return TrustedKeyring.fromArmored(keys.map((k) => k.armored));
}

function toInfo(r: {
  fingerprint: string;
  armored: string;
  added_at: string;
  removed_at: string | null;
}): TrustedKeyInfo {
  return {
    fingerprint: r.fingerprint,
    armored: r.armored,
    addedAt: r.added_at,
    ...(r.removed_at === null ? {} : { removedAt: r.removed_at }),
  };
}
