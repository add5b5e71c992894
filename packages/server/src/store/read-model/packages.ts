import type { PackageHit, Page, PageRequest } from '@sysattest/dashboard';
import { sql } from 'kysely';
import { chunks, reading } from '../context.js';
import type { TrackedPackage, TrackingSource } from '../tracked-packages.js';
import { count, pageOf, type ReadContext } from './read-context.js';

const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Package names containing `query` (any case; `%` and `_` taken literally): the exact name first,
 * then names starting with it, then the rest, by name.
 */
export async function searchPackages(
  ctx: ReadContext,
  query: string,
  p: PageRequest,
): Promise<Page<PackageHit>> {
  const q = query.toLowerCase();
  const pattern = `%${escapeLike(q)}%`;
  const prefix = `${escapeLike(q)}%`;
  const like = ctx.dialect === 'postgres' ? sql`ilike` : sql`like`;
  return reading(async () => {
    const names = await sql<{ name: string }>`
      select name from catalog_packages
      where name ${like} ${pattern} escape '\\'
      group by name
      order by case when name = ${q} then 0 when name ${like} ${prefix} escape '\\' then 1 else 2 end, name
      limit ${p.limit + 1} offset ${p.offset}`.execute(ctx.db);
    const total = await sql<{ c: number }>`
      select count(distinct name) as c from catalog_packages where name ${like} ${pattern} escape '\\'`.execute(
      ctx.db,
    );
    const page = pageOf(
      names.rows.map((r) => r.name),
      p,
      count(total.rows[0]?.c),
    );
    return { ...page, items: await whereListed(ctx, page.items) };
  });
}

/** The catalog packages of these names, in the order given. */
async function whereListed(ctx: ReadContext, names: string[]): Promise<PackageHit[]> {
  const byName = new Map<string, PackageHit>(names.map((name) => [name, { name, platforms: [] }]));
  for (const batch of chunks(names, 500)) {
    const rows = await ctx.db
      .selectFrom('catalog_packages as c')
      .innerJoin('platforms as pl', 'pl.id', 'c.platform_id')
      .select(['c.name', 'c.arch', 'c.newest_version', 'pl.name as platform'])
      .where('c.name', 'in', batch)
      .execute();
    for (const r of rows) {
      byName.get(r.name)?.platforms.push({
        platform: r.platform,
        arch: r.arch,
        ...(r.newest_version === null ? {} : { newestVersion: r.newest_version }),
      });
    }
  }
  for (const hit of byName.values())
    hit.platforms.sort((a, b) => (`${a.platform} ${a.arch}` < `${b.platform} ${b.arch}` ? -1 : 1));
  return names.map((name) => byName.get(name) as PackageHit);
}

/** Tracked packages, most recently tracked first. */
export async function trackedPackagesPage(ctx: ReadContext, p: PageRequest): Promise<Page<TrackedPackage>> {
  return reading(async () => {
    const rows = await ctx.db
      .selectFrom('tracked_packages as t')
      .innerJoin('platforms as pl', 'pl.id', 't.platform_id')
      .select(['pl.name as platform', 't.name', 't.source', 't.created_at'])
      .orderBy('t.created_at', 'desc')
      .orderBy('t.name')
      .limit(p.limit + 1)
      .offset(p.offset)
      .execute();
    const total = await ctx.db
      .selectFrom('tracked_packages')
      .select((eb) => eb.fn.countAll().as('c'))
      .executeTakeFirst();
    const tracked = rows.map((r) => ({
      platform: r.platform,
      name: r.name,
      source: r.source as TrackingSource,
      since: r.created_at,
    }));
    return pageOf(tracked, p, count(total?.c));
  });
}
