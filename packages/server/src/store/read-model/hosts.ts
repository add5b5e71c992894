import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import {
  FINDING_CLASSES,
  HOST_VERDICTS,
  REPORT_LIMITS,
  type FindingClass,
  type HostDetailAnswer,
  type HostHistoryEntry,
  type HostSummary,
  type HostVerdict,
  type ReportVerdict,
  type VerifyReport,
} from '@sysattest/core';
import { sql, type SelectQueryBuilder } from 'kysely';
import type { HostCounts } from '../hosts.js';
import { count, type ReadContext, type ReadTables } from './read-context.js';

/**
 * The fleet of hosts as their reports describe them: the list (filtered, in name order, by
 * cursor), one host with its history, a stored report, counts by verdict, and which hosts run a
 * package. A host's verdict is its latest report's, or `stale` when that report is older than the
 * store's `staleAfterSeconds` (decided here, when read).
 */

export interface HostFilter {
  verdict?: HostVerdict;
  platform?: string;
  /** Hosts per page (default 100, at most REPORT_LIMITS.hostsPage). */
  limit?: number;
  /** The previous page's `next`. */
  after?: string;
}

export interface HostPage {
  hosts: HostSummary[];
  /** More hosts follow: pass it as `after`. */
  next?: string;
}

export const DEFAULT_HOSTS_PAGE = 100;

interface HostRow {
  name: string;
  platform: string;
  last_report_at: string;
  last_verdict: string;
  last_exit_code: number;
  summary: string;
}

/** The time before which a latest report makes its host stale. */
function staleBefore(read: ReadContext): string {
  return new Date(read.now().getTime() - read.hosts.staleAfterSeconds * 1000).toISOString();
}

function summaryOf(row: HostRow, cutoff: string): HostSummary {
  const counts = JSON.parse(row.summary) as HostCounts;
  const findingsByClass = Object.fromEntries(
    FINDING_CLASSES.map((c) => [c, counts.findingsByClass[c] ?? 0]),
  ) as Record<FindingClass, number>;
  return {
    name: row.name,
    platform: row.platform,
    lastReportAt: row.last_report_at,
    verdict: row.last_report_at < cutoff ? 'stale' : (row.last_verdict as ReportVerdict),
    exitCode: row.last_exit_code,
    packages: counts.packages,
    verified: counts.verified,
    unverified: counts.unverified,
    outdated: counts.outdated,
    failures: counts.failures,
    findingsByClass,
  };
}

type HostQuery = SelectQueryBuilder<ReadTables, 'hosts', HostRow>;

function selectHosts(read: ReadContext): HostQuery {
  return read.db
    .selectFrom('hosts')
    .select(['name', 'platform', 'last_report_at', 'last_verdict', 'last_exit_code', 'summary']);
}

function whereVerdict(q: HostQuery, verdict: HostVerdict | undefined, cutoff: string): HostQuery {
  if (verdict === undefined) return q;
  if (verdict === 'stale') return q.where('last_report_at', '<', cutoff);
  return q.where('last_verdict', '=', verdict).where('last_report_at', '>=', cutoff);
}

/** One page of hosts in name order. */
export async function hostsPage(read: ReadContext, filter: HostFilter = {}): Promise<HostPage> {
  const limit = Math.min(Math.max(1, filter.limit ?? DEFAULT_HOSTS_PAGE), REPORT_LIMITS.hostsPage);
  const cutoff = staleBefore(read);
  let q = whereVerdict(selectHosts(read), filter.verdict, cutoff);
  if (filter.platform !== undefined) q = q.where('platform', '=', filter.platform);
  // Code-unit order on both databases, whatever PostgreSQL's collation, so the cursor is exact.
  const name = read.dialect === 'postgres' ? sql<string>`name collate "C"` : sql<string>`name`;
  if (filter.after !== undefined) q = q.where(name, '>', filter.after);
  const rows = await q
    .orderBy(name)
    .limit(limit + 1)
    .execute();
  const hosts = rows.slice(0, limit).map((r) => summaryOf(r, cutoff));
  const last = hosts.at(-1);
  return rows.length > limit && last !== undefined ? { hosts, next: last.name } : { hosts };
}

/** A host and its history, newest first (at most `historyLimit` entries); undefined if unknown. */
export async function hostDetail(
  read: ReadContext,
  name: string,
  historyLimit: number = REPORT_LIMITS.history,
): Promise<HostDetailAnswer | undefined> {
  const row = await read.db
    .selectFrom('hosts')
    .select(['id', 'name', 'platform', 'last_report_at', 'last_verdict', 'last_exit_code', 'summary'])
    .where('name', '=', name)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  const reports = await read.db
    .selectFrom('host_reports')
    .select(['report_id', 'received_at', 'verdict', 'exit_code', 'failures'])
    .where('host_id', '=', row.id)
    .orderBy('received_at', 'desc')
    .orderBy('id', 'desc')
    .limit(Math.min(Math.max(1, historyLimit), REPORT_LIMITS.history))
    .execute();
  const history: HostHistoryEntry[] = reports.map((r) => ({
    reportId: r.report_id,
    receivedAt: r.received_at,
    verdict: r.verdict as ReportVerdict,
    exitCode: r.exit_code,
    failures: r.failures,
  }));
  return { host: summaryOf(row, staleBefore(read)), history };
}

const gunzipAsync = promisify(gunzip);

/** A stored report as the host sent it (its claim), or undefined. */
export async function hostReport(
  read: ReadContext,
  name: string,
  reportId: string,
): Promise<VerifyReport | undefined> {
  const row = await read.db
    .selectFrom('host_reports')
    .innerJoin('hosts', 'hosts.id', 'host_reports.host_id')
    .select('host_reports.report')
    .where('hosts.name', '=', name)
    .where('host_reports.report_id', '=', reportId)
    .executeTakeFirst();
  if (row === undefined) return undefined;
  return JSON.parse((await gunzipAsync(row.report)).toString('utf8')) as VerifyReport;
}

/** A host's latest report, or undefined. */
export async function latestHostReport(read: ReadContext, name: string): Promise<VerifyReport | undefined> {
  const row = await read.db
    .selectFrom('hosts')
    .innerJoin('host_reports', 'host_reports.id', 'hosts.latest_report_id')
    .select('host_reports.report_id')
    .where('hosts.name', '=', name)
    .executeTakeFirst();
  return row === undefined ? undefined : hostReport(read, name, row.report_id);
}

/** How many hosts have each verdict now (every verdict present, 0 included). */
export async function hostCountsByVerdict(read: ReadContext): Promise<Record<HostVerdict, number>> {
  const cutoff = staleBefore(read);
  const counts = Object.fromEntries(HOST_VERDICTS.map((v) => [v, 0])) as Record<HostVerdict, number>;
  const fresh = await read.db
    .selectFrom('hosts')
    .select((eb) => ['last_verdict', eb.fn.countAll().as('n')])
    .where('last_report_at', '>=', cutoff)
    .groupBy('last_verdict')
    .execute();
  for (const r of fresh) counts[r.last_verdict as ReportVerdict] += count(r.n);
  const stale = await read.db
    .selectFrom('hosts')
    .select((eb) => eb.fn.countAll().as('n'))
    .where('last_report_at', '<', cutoff)
    .executeTakeFirst();
  counts.stale = count(stale?.n);
  return counts;
}

/** A host that runs a version of a package (its latest report says so). */
export interface HostRunning {
  host: string;
  version: string;
  arch: string;
  /** The newest version its report names, when it differs from the installed one. */
  newestVersion?: string;
}

/**
 * Hosts whose latest report lists package `name` (at `version` when given; only where a newer
 * version exists when `outdated`), in host-name order, at most `limit`.
 */
export async function hostsRunning(
  read: ReadContext,
  query: { name: string; version?: string; outdated?: boolean; limit?: number },
): Promise<HostRunning[]> {
  let q = read.db
    .selectFrom('host_packages')
    .innerJoin('hosts', 'hosts.id', 'host_packages.host_id')
    .select([
      'hosts.name as host',
      'host_packages.version',
      'host_packages.arch',
      'host_packages.newest_version',
    ])
    .where('host_packages.name', '=', query.name);
  if (query.version !== undefined) q = q.where('host_packages.version', '=', query.version);
  if (query.outdated === true) {
    q = q
      .where('host_packages.newest_version', 'is not', null)
      .whereRef('host_packages.newest_version', '<>', 'host_packages.version');
  }
  const rows = await q
    .orderBy('hosts.name')
    .orderBy('host_packages.arch')
    .orderBy('host_packages.version')
    .limit(Math.min(Math.max(1, query.limit ?? 1000), 100_000))
    .execute();
  return rows.map((r) => ({
    host: r.host,
    version: r.version,
    arch: r.arch,
    ...(r.newest_version !== null && r.newest_version !== r.version
      ? { newestVersion: r.newest_version }
      : {}),
  }));
}
