import type { Kysely } from 'kysely';

/**
 * Migration 0005 (additive: one column). `jobs.priority`: claims take higher priorities first.
 * Jobs clients and operators ask for are 0; the backlog of a platform that tracks its whole
 * catalog (backlog.ts) is -1, so it never delays a client's request.
 */
// Migrations run against past schemas: Kysely<any>, as Kysely advises.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function jobPriority(db: Kysely<any>): Promise<void> {
  await db.schema
    .alterTable('jobs')
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
