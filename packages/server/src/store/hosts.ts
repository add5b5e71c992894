import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import {
  FINDING_CLASSES,
  exitCodeOf,
  verdictOfExitCode,
  type FindingClass,
  type ReportReceipt,
  type ReportVerdict,
  type VerifyReport,
} from '@sysattest/core';
import type { Transaction } from 'kysely';
import { chunks, inTransaction, iso, rowsPerStatement, type StoreContext } from './context.js';
import type { Database } from './database.js';
import { StoreError } from './store-error.js';

/**
 * The hosts' verify reports (issue 19). A report is what a host SAYS about itself: the store keeps
 * it as the host's claim, under the host its reporter token is bound to (never a name the report
 * carries), and a report writes nothing but its host's rows.
 *
 * Recording a report is one transaction: the host row, the report, the host's latest packages
 * and the retention's pruning commit together or not at all. A resend (the same client report id
 * for the same host) is stored once. The token is checked live inside the transaction (and
 * locked, on PostgreSQL), so a report racing `forgetHost` either lands before the host is
 * forgotten (and goes with it) or is refused.
 */

/** How long reports are kept, and when a silent host is stale. */
export interface HostPolicy {
  /** Reports kept per host, the latest included (at least 1). */
  keep: number;
  /** Reports older than this are pruned, except a host's latest. */
  maxAgeDays: number;
  /** A host whose latest report is older than this is `stale`. */
  staleAfterSeconds: number;
}

export const DEFAULT_HOST_POLICY: HostPolicy = { keep: 100, maxAgeDays: 90, staleAfterSeconds: 48 * 3600 };

/** A report's counts, as the host list shows them. */
export interface HostCounts {
  packages: number;
  verified: number;
  unverified: number;
  /** Packages whose newest version (signed, or the server's claim) is not the installed one. */
  outdated: number;
  failures: number;
  findingsByClass: Record<FindingClass, number>;
}

export interface ReportToRecord {
  /** The reporter token that sent it. */
  tokenId: number;
  /** The host that token is bound to: the report's only identity. */
  host: string;
  reportId: string;
  report: VerifyReport;
}

export type RecordOutcome =
  | { kind: 'stored' | 'resent'; receipt: ReportReceipt }
  /** The token was revoked (or rebound) after it authenticated: nothing was written. */
  | { kind: 'token-revoked' };

export function newestOf(p: VerifyReport['packages'][number]): string | undefined {
  return p.newestVersion ?? p.newestVersionClaimed;
}

export function countsOf(report: VerifyReport): HostCounts {
  const s = report.summary;
  const findingsByClass = Object.fromEntries(
    FINDING_CLASSES.map((c) => [c, s.findingsByClass[c] ?? 0]),
  ) as Record<FindingClass, number>;
  return {
    packages: s.packages,
    verified: s.verified,
    unverified: s.unverified,
    outdated: report.packages.filter((p) => {
      const newest = newestOf(p);
      return newest !== undefined && newest !== p.version;
    }).length,
    failures: s.failures,
    findingsByClass,
  };
}

interface PreparedReport {
  verdict: ReportVerdict;
  exitCode: number;
  counts: string;
  gzipped: Buffer;
  bytes: number;
  packages: PackageRow[];
}

interface PackageRow {
  name: string;
  arch: string;
  version: string;
  status: string;
  reason: string | null;
  newest_version: string | null;
}

const gzipAsync = promisify(gzip);

/** Everything computed from the report alone, before the transaction (gzip runs off the event loop). */
async function prepare(report: VerifyReport): Promise<PreparedReport> {
  const exitCode = exitCodeOf(report);
  const json = Buffer.from(JSON.stringify(report), 'utf8');
  const rows = new Map<string, PackageRow>();
  for (const p of report.packages) {
    // The key is the table's: a report listing one package version twice keeps its first entry.
    const key = JSON.stringify([p.name, p.arch, p.version]);
    if (rows.has(key)) continue;
    rows.set(key, {
      name: p.name,
      arch: p.arch,
      version: p.version,
      status: p.status,
      reason: p.reason ?? null,
      newest_version: newestOf(p) ?? null,
    });
  }
  return {
    verdict: verdictOfExitCode(exitCode),
    exitCode,
    counts: JSON.stringify(countsOf(report)),
    gzipped: await gzipAsync(json),
    bytes: json.length,
    packages: [...rows.values()],
  };
}

export async function recordReport(ctx: StoreContext, input: ReportToRecord): Promise<RecordOutcome> {
  const prepared = await prepare(input.report);
  return inTransaction(ctx, async (trx) => {
    if (!(await tokenStillBinds(ctx, trx, input.tokenId, input.host))) return { kind: 'token-revoked' };
    const now = iso(ctx.now());
    const hostId = await lockHost(ctx, trx, input.host, input.report.platform, now, prepared);
    const earlier = await trx
      .selectFrom('host_reports')
      .select(['received_at', 'verdict'])
      .where('host_id', '=', hostId)
      .where('report_id', '=', input.reportId)
      .executeTakeFirst();
    if (earlier !== undefined) {
      return {
        kind: 'resent',
        receipt: receipt(input, earlier.verdict as ReportVerdict, earlier.received_at),
      };
    }
    const { id: reportRowId } = await trx
      .insertInto('host_reports')
      .values({
        host_id: hostId,
        report_id: input.reportId,
        received_at: now,
        verdict: prepared.verdict,
        exit_code: prepared.exitCode,
        failures: input.report.summary.failures,
        summary: prepared.counts,
        report: prepared.gzipped,
        bytes: prepared.bytes,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await trx
      .updateTable('hosts')
      .set({
        platform: input.report.platform,
        last_report_at: now,
        last_verdict: prepared.verdict,
        last_exit_code: prepared.exitCode,
        latest_report_id: reportRowId,
        summary: prepared.counts,
      })
      .where('id', '=', hostId)
      .execute();
    await replacePackages(trx, hostId, prepared.packages);
    await prune(ctx, trx, hostId, reportRowId);
    return { kind: 'stored', receipt: receipt(input, prepared.verdict, now) };
  });
}

function receipt(input: ReportToRecord, verdict: ReportVerdict, receivedAt: string): ReportReceipt {
  return { host: input.host, reportId: input.reportId, verdict, receivedAt };
}

/** The token is live and bound to this host; on PostgreSQL its row stays locked until commit. */
async function tokenStillBinds(
  ctx: StoreContext,
  trx: Transaction<Database>,
  tokenId: number,
  host: string,
): Promise<boolean> {
  let q = trx
    .selectFrom('tokens')
    .select(['host'])
    .where('id', '=', tokenId)
    .where('role', '=', 'reporter')
    .where('revoked_at', 'is', null);
  if (ctx.dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirst();
  return row?.host === host;
}

/** The host's row id, made with this report's values if it is new; locked on PostgreSQL. */
async function lockHost(
  ctx: StoreContext,
  trx: Transaction<Database>,
  name: string,
  platform: string,
  now: string,
  prepared: PreparedReport,
): Promise<number> {
  await trx
    .insertInto('hosts')
    .values({
      name,
      platform,
      first_report_at: now,
      last_report_at: now,
      last_verdict: prepared.verdict,
      last_exit_code: prepared.exitCode,
      latest_report_id: 0,
      summary: prepared.counts,
    })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  let q = trx.selectFrom('hosts').select('id').where('name', '=', name);
  if (ctx.dialect === 'postgres') q = q.forUpdate();
  const row = await q.executeTakeFirstOrThrow();
  return row.id;
}

async function replacePackages(
  trx: Transaction<Database>,
  hostId: number,
  rows: PackageRow[],
): Promise<void> {
  await trx.deleteFrom('host_packages').where('host_id', '=', hostId).execute();
  for (const chunk of chunks(rows, rowsPerStatement(7))) {
    await trx
      .insertInto('host_packages')
      .values(chunk.map((r) => ({ host_id: hostId, ...r })))
      .execute();
  }
}

/** Retention: at most `keep` reports per host and none older than `maxAgeDays`; never the latest. */
async function prune(
  ctx: StoreContext,
  trx: Transaction<Database>,
  hostId: number,
  latestId: number,
): Promise<void> {
  const cutoff = iso(new Date(ctx.now().getTime() - ctx.hosts.maxAgeDays * 86_400_000));
  const rows = await trx
    .selectFrom('host_reports')
    .select(['id', 'received_at'])
    .where('host_id', '=', hostId)
    .orderBy('received_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  const gone = rows
    .filter((r, i) => r.id !== latestId && (i >= ctx.hosts.keep || r.received_at < cutoff))
    .map((r) => r.id);
  for (const chunk of chunks(gone, 1000)) {
    await trx.deleteFrom('host_reports').where('id', 'in', chunk).execute();
  }
}

export interface ForgottenHost {
  /** Reports deleted with the host (0 when it never reported). */
  reports: number;
  /** Reporter tokens of the host that were live and are now revoked. */
  tokensRevoked: number;
}

/**
 * Forgets a host: its reports and packages go, its reporter tokens are revoked (kept, for the
 * record). NOT_FOUND when the host never reported and has no live token.
 */
export async function forgetHost(ctx: StoreContext, name: string): Promise<ForgottenHost> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) {
    throw new StoreError('INVALID', 'a host name is 1 to 253 characters');
  }
  return inTransaction(ctx, async (trx) => {
    const revoked = await trx
      .updateTable('tokens')
      .set({ revoked_at: iso(ctx.now()) })
      .where('role', '=', 'reporter')
      .where('host', '=', name)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    const tokensRevoked = Number(revoked.numUpdatedRows);
    let q = trx.selectFrom('hosts').select('id').where('name', '=', name);
    if (ctx.dialect === 'postgres') q = q.forUpdate();
    const host = await q.executeTakeFirst();
    if (host === undefined) {
      if (tokensRevoked === 0) throw new StoreError('NOT_FOUND', `no host ${JSON.stringify(name)}`);
      return { reports: 0, tokensRevoked };
    }
    await trx.deleteFrom('host_packages').where('host_id', '=', host.id).execute();
    const deleted = await trx.deleteFrom('host_reports').where('host_id', '=', host.id).executeTakeFirst();
    await trx.deleteFrom('hosts').where('id', '=', host.id).execute();
    return { reports: Number(deleted.numDeletedRows), tokensRevoked };
  });
}
