import type { Kysely } from 'kysely';

/**
 * Migration 0004 (additive: one new table). `queue_quotas` counts, per client address and quota
 * window, the generation jobs and tracked packages that anonymous lookups created, so that every
 * server process over one database enforces one quota (queue-quota.ts). Rows of past windows are
 * deleted as new ones start; the index serves that delete.
 */
// Migrations run against past schemas: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function queueQuotas(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('queue_quotas')
    .ifNotExists()
    .addColumn('client', 'text', (c) => c.notNull())
    .addColumn('window_start', 'text', (c) => c.notNull())
    .addColumn('jobs', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tracked', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('queue_quotas_pkey', ['client', 'window_start'])
    .execute();
  await db.schema
    .createIndex('queue_quotas_window_idx')
    .ifNotExists()
    .on('queue_quotas')
    .column('window_start')
    .execute();
}
