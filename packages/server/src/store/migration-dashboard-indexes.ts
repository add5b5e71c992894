import type { Kysely } from 'kysely';

/**
 * Migration 0002 (additive: one index, no data change). The dashboard's Upgrades page asks which
 * package versions a platform's catalogs first listed in the last 24 hours / 7 days / 30 days:
 * without this index that is one index seek per package of the platform (55,000 for Debian's
 * main), with it a range of the few thousand versions seen in the window.
 */
// Migrations run against past schemas: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function dashboardIndexes(db: Kysely<any>): Promise<void> {
  await db.schema
    .createIndex('catalog_entries_first_seen_idx')
    .ifNotExists()
    .on('catalog_entries')
    .column('first_seen')
    .execute();
}
