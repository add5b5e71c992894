/**
 * Test and bench support: a simulated fleet for the dashboard's pages — hosts whose reports carry
 * every verdict, outdated packages at the version before an upgrade, a history, and markup in
 * finding paths and notes — recorded through the store's own write path. Reports are made by
 * testkit/hosts.ts makeReport (summaries counted from the lists, as the client writes them).
 */
import { randomUUID } from 'node:crypto';
import type { Store } from '../store/index.js';
import { makeReport } from './hosts.js';
import {
  FINDING_CLASSES,
  exitCodeOf,
  verdictOfReport,
  type Finding,
  type PackageResult,
  type VerifyReport,
} from '@sysattest/core';

/** One package every host of the fleet has, at `version`; `newestVersion` is its catalog's newest. */
export interface FleetPackage {
  name: string;
  arch: string;
  version: string;
  newestVersion: string;
  /** An older version some hosts still run (they are `outdated`). */
  olderVersion?: string;
}

export type ReportedVerdict = 'clean' | 'findings' | 'incomplete' | 'trust-failure';

/** A finding path with markup: the host page must show it as text. */
export const HOSTILE_FINDING_PATH = '/usr/bin/<script>window.__pwned=3</script>';
/** A report note with markup. */
export const HOSTILE_NOTE = 'note <img src=x onerror="window.__pwned=4">';

const SIGNER = 'A'.repeat(40);

export interface SimulatedReportOptions {
  platform: string;
  packages: readonly FleetPackage[];
  verdict: ReportedVerdict;
  /** Run the `olderVersion` of every n-th package that has one (0: none). */
  behindEvery?: number;
  /** And of these packages. */
  behind?: ReadonlySet<string>;
  /** Put HOSTILE_FINDING_PATH and HOSTILE_NOTE in the report. */
  hostile?: boolean;
  /** Modified files in a `findings` report (default 3). */
  modified?: number;
}

function packageResult(p: FleetPackage, behind: boolean): PackageResult {
  const version = behind && p.olderVersion !== undefined ? p.olderVersion : p.version;
  return {
    name: p.name,
    version,
    arch: p.arch,
    status: 'verified',
    signer: SIGNER,
    newestVersion: p.newestVersion,
  };
}

function outdatedFinding(p: PackageResult): Finding {
  return {
    class: 'outdated',
    package: p.name,
    arch: p.arch,
    expected: p.newestVersion as string,
    actual: p.version,
    detail: `${p.name} ${p.version} is older than ${p.newestVersion}, the newest in the signed catalog`,
    failure: false,
  };
}

function modifiedFinding(p: PackageResult, i: number, hostile: boolean): Finding {
  const path = hostile && i === 0 ? HOSTILE_FINDING_PATH : `/usr/lib/${p.name}/file${i}.so`;
  return {
    class: 'modified',
    package: p.name,
    arch: p.arch,
    path,
    expected: 'a'.repeat(64),
    actual: 'b'.repeat(64),
    detail: `content differs from the signed manifest: ${path}`,
    failure: true,
  };
}

/** Findings as the client sorts them: class order, then package, then path. */
function sortFindings(findings: Finding[]): Finding[] {
  const rank = new Map<string, number>(FINDING_CLASSES.map((c, i) => [c, i]));
  const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return findings.sort(
    (a, b) =>
      (rank.get(a.class) ?? 99) - (rank.get(b.class) ?? 99) ||
      cmp(a.package, b.package) ||
      cmp(a.path ?? '', b.path ?? ''),
  );
}

/** A report with the given verdict whose summary agrees with its lists (the server checks it). */
export function simulatedReport(o: SimulatedReportOptions): VerifyReport {
  const every = o.behindEvery ?? 0;
  const packages = o.packages.map((p, i) =>
    packageResult(p, (every > 0 && i % every === 0) || o.behind?.has(p.name) === true),
  );
  const findings: Finding[] = packages.filter((p) => p.newestVersion !== p.version).map(outdatedFinding);
  const hostile = o.hostile === true;
  if (o.verdict === 'findings') {
    const n = o.modified ?? 3;
    for (let i = 0; i < n; i++)
      findings.push(modifiedFinding(packages[i % packages.length] as PackageResult, i, hostile));
    findings.push({
      class: 'unowned',
      package: '',
      arch: '',
      path: '/usr/local/sbin/backdoor',
      detail: 'no installed package owns /usr/local/sbin/backdoor',
      failure: true,
    });
  }
  if (o.verdict === 'incomplete' || o.verdict === 'trust-failure') {
    const victim = packages[packages.length - 1] as PackageResult;
    if (o.verdict === 'incomplete') {
      victim.status = 'unverified';
      victim.reason = 'foreign-origin';
      victim.origin = 'Docker';
      findings.push({
        class: 'unverified',
        package: victim.name,
        arch: victim.arch,
        detail: `${victim.name}: foreign-origin (Docker)`,
        failure: false,
      });
    } else {
      victim.status = 'bad-signature';
      victim.reason = 'BAD_SIGNATURE: the manifest signature does not verify';
      findings.push({
        class: 'bad-signature',
        package: victim.name,
        arch: victim.arch,
        detail: `${victim.name}: the offered manifest does not verify`,
        failure: true,
      });
    }
    delete victim.signer;
  }
  const report = makeReport(packages, sortFindings(findings), {
    platform: o.platform,
    notes: hostile ? [HOSTILE_NOTE] : [],
  });
  const got = verdictOfReport(report);
  if (got !== o.verdict)
    throw new Error(`testkit: a ${o.verdict} report came out ${got} (exit ${exitCodeOf(report)})`);
  return report;
}

/** A report id as the client makes it. */
export const newReportId = (): string => randomUUID();

/**
 * The verdict of the i-th of n simulated hosts: about 85 % clean, 6 % findings, 5 % incomplete,
 * 1 % trust failure, the rest (3 %) made stale by the caller (their report is old).
 */
export function fleetVerdict(i: number): ReportedVerdict | 'stale' {
  const r = i % 100;
  if (r < 85) return 'clean';
  if (r < 91) return 'findings';
  if (r < 96) return 'incomplete';
  if (r < 97) return 'trust-failure';
  return 'stale';
}

export interface SimulatedFleetOptions {
  platform: string;
  hosts: number;
  packages: readonly FleetPackage[];
  /** Host names: `${prefix}${index, 4 digits}` (default `host-`). */
  prefix?: string;
  /** Packages host i runs at their older version (default: none). */
  behind?: (host: number) => ReadonlySet<string>;
  /**
   * Sets the store's clock skew in seconds (the store is opened with `now: () => Date.now() + skew`):
   * stale hosts (fleetVerdict) report with the clock put back past `staleAfterSeconds`. Without it
   * no host is stale (they report clean).
   */
  skew?: (seconds: number) => void;
  /** Extra reports before the latest, for a history (host i gets `history(i)` older ones). */
  history?: (host: number) => number;
  /** Hosts whose latest report carries HOSTILE_FINDING_PATH and HOSTILE_NOTE. */
  hostile?: (host: number) => boolean;
}

export interface SimulatedHost {
  name: string;
  verdict: ReportedVerdict | 'stale';
  reportId: string;
  tokenId: number;
}

/**
 * A fleet recorded through the store's own write path (`recordReport`, as `POST /v1/reports`
 * does), each host with its reporter token. Verdicts follow fleetVerdict.
 */
export async function seedSimulatedFleet(store: Store, o: SimulatedFleetOptions): Promise<SimulatedHost[]> {
  const staleAfter = store.hostPolicy().staleAfterSeconds;
  const out: SimulatedHost[] = [];
  for (let i = 0; i < o.hosts; i++) {
    const name = `${o.prefix ?? 'host-'}${String(i).padStart(4, '0')}`;
    const planned = fleetVerdict(i);
    const stale = planned === 'stale' && o.skew !== undefined;
    const verdict: ReportedVerdict = planned === 'stale' ? 'clean' : planned;
    const token = await store.createToken('reporter', `reporter ${name}`, name);
    const record = async (v: ReportedVerdict, hostile: boolean): Promise<string> => {
      const reportId = newReportId();
      const report = simulatedReport({
        platform: o.platform,
        packages: o.packages,
        verdict: v,
        hostile,
        ...(o.behind === undefined ? {} : { behind: o.behind(i) }),
      });
      const outcome = await store.recordReport({ tokenId: token.id, host: name, reportId, report });
      if (outcome.kind !== 'stored')
        throw new Error(`testkit: ${name}'s report was not stored (${outcome.kind})`);
      return reportId;
    };
    const older = o.history?.(i) ?? 0;
    // Older reports first, a day apart; the latest last, so the store's latest is the one planned.
    for (let h = older; h >= 1; h--) {
      o.skew?.(-(stale ? staleAfter + 3600 : 0) - h * 86_400);
      await record(h % 2 === 0 ? 'clean' : 'findings', false);
    }
    o.skew?.(stale ? -(staleAfter + 3600) : 0);
    const reportId = await record(verdict, o.hostile?.(i) === true);
    o.skew?.(0);
    out.push({ name, verdict: stale ? 'stale' : verdict, reportId, tokenId: token.id });
  }
  return out;
}
