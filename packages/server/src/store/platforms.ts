import { parsePlatform, PlatformError, type Platform } from '@sysattest/core';
import { iso, type Db } from './context.js';
import { StoreError } from './store-error.js';

/** Parses a platform id, as a StoreError INVALID when it is not one. */
export function platformOf(id: unknown): Platform {
  if (typeof id !== 'string') throw new StoreError('INVALID', 'a platform must be a string');
  try {
    return parsePlatform(id);
  } catch (e) {
    if (e instanceof PlatformError) throw new StoreError('INVALID', e.message, { cause: e });
    throw e;
  }
}

/** The ids of the platforms already known, by name (unknown names are absent). */
export async function findPlatformIds(db: Db, names: Iterable<string>): Promise<Map<string, number>> {
  const wanted = [...new Set(names)];
  if (wanted.length === 0) return new Map();
  const rows = await db.selectFrom('platforms').select(['id', 'name']).where('name', 'in', wanted).execute();
  return new Map(rows.map((r) => [r.name, r.id]));
}

/** The ids of these platforms, creating the missing ones (inside the caller's transaction). */
export async function ensurePlatformIds(
  db: Db,
  names: Iterable<string>,
  now: Date,
): Promise<Map<string, number>> {
  const wanted = [...new Set(names)].sort();
  const known = await findPlatformIds(db, wanted);
  const missing = wanted.filter((n) => !known.has(n));
  if (missing.length > 0) {
    await db
      .insertInto('platforms')
      .values(missing.map((name) => ({ name, ...platformOf(name), created_at: iso(now) })))
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
    for (const [name, id] of await findPlatformIds(db, missing)) known.set(name, id);
  }
  return known;
}

export async function ensurePlatformId(db: Db, name: string, now: Date): Promise<number> {
  const id = (await ensurePlatformIds(db, [name], now)).get(name);
  if (id === undefined) throw new Error(`platform ${name} was not created`);
  return id;
}
