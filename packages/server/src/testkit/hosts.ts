/**
 * Test support (never imported by the server itself): verify reports as a real client writes
 * them (summary counted from the lists), and a simulated fleet of hosts recorded through the
 * store's own write path, each with its reporter token.
 */
import { randomUUID } from 'node:crypto';
import {
  FINDING_CLASSES,
  REPORT_SCHEMA_ID,
  REPORT_SCHEMA_VERSION,
  UNVERIFIED_REASONS,
  type Finding,
  type FindingClass,
  type PackageResult,
  type ReportVerdict,
  type UnverifiedReason,
  type VerifyReport,
} from '@sysattest/core';
import type { Store } from '../store/index.js';

export const FLEET_PLATFORM = 'debian/bookworm/amd64';

/** A report whose summary agrees with its packages and findings (as verifyMachine writes it). */
export function makeReport(
  packages: PackageResult[],
  findings: Finding[] = [],
  options: { platform?: string; notes?: string[] } = {},
): VerifyReport {
  const byClass = Object.fromEntries(FINDING_CLASSES.map((c) => [c, 0])) as Record<FindingClass, number>;
  for (const f of findings) byClass[f.class]++;
  const byReason: Partial<Record<UnverifiedReason, number>> = {};
  for (const p of packages) {
    if (p.status !== 'unverified') continue;
    const reason = (UNVERIFIED_REASONS as readonly string[]).includes(p.reason ?? '')
      ? (p.reason as UnverifiedReason)
      : 'pending';
    byReason[reason] = (byReason[reason] ?? 0) + 1;
  }
  return {
    schema: REPORT_SCHEMA_ID,
    schemaVersion: REPORT_SCHEMA_VERSION,
    root: '/',
    platform: options.platform ?? FLEET_PLATFORM,
    summary: {
      packages: packages.length,
      verified: packages.filter((p) => p.status === 'verified').length,
      unverified: packages.filter((p) => p.status === 'unverified').length,
      unverifiedByReason: byReason,
      badSignature: packages.filter((p) => p.status === 'bad-signature').length,
      filesChecked: packages.length * 12,
      failures: findings.filter((f) => f.failure).length,
      findingsByClass: byClass,
      durationMs: 1500,
    },
    findings,
    packages,
    catalogs: [],
    notes: options.notes ?? [],
  };
}

/** `n` verified packages `pkg-0000`… at version `1.0-1`, the newest `1.0-2` on every `outdatedEvery`th. */
export function fleetPackages(n: number, outdatedEvery = 0): PackageResult[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `pkg-${String(i).padStart(4, '0')}`,
    version: '1.0-1',
    arch: 'amd64',
    status: 'verified' as const,
    signer: 'A'.repeat(40),
    newestVersion: outdatedEvery > 0 && i % outdatedEvery === 0 ? '1.0-2' : '1.0-1',
  }));
}

/** The package without the signer a verified one has. */
function unsigned(p: PackageResult): PackageResult {
  const copy = { ...p };
  delete copy.signer;
  return copy;
}

/** A report with the given verdict over `packages` (made to have it: a finding, a package left unverified…). */
export function reportWithVerdict(verdict: ReportVerdict, packages: PackageResult[]): VerifyReport {
  const pkgs = packages.map((p) => ({ ...p }));
  const first = pkgs[0];
  const findings: Finding[] = [];
  if (first !== undefined && verdict === 'findings') {
    findings.push({
      class: 'modified',
      package: first.name,
      arch: first.arch,
      path: `/usr/bin/${first.name}`,
      expected: 'a'.repeat(64),
      actual: 'b'.repeat(64),
      detail: 'content differs from the signed manifest',
      failure: true,
    });
  }
  if (first !== undefined && verdict === 'incomplete') {
    pkgs[0] = { ...unsigned(first), status: 'unverified', reason: 'not-in-catalog' };
    findings.push({
      class: 'unverified',
      package: first.name,
      arch: first.arch,
      detail: 'not in the signed catalog',
      failure: false,
    });
  }
  if (first !== undefined && verdict === 'trust-failure') {
    pkgs[0] = {
      ...unsigned(first),
      status: 'bad-signature',
      reason: 'BAD_SIGNATURE: the signature does not verify',
    };
    findings.push({
      class: 'bad-signature',
      package: first.name,
      arch: first.arch,
      detail: 'BAD_SIGNATURE: the signature does not verify',
      failure: true,
    });
  }
  return makeReport(pkgs, findings);
}

export interface FleetOptions {
  hosts: number;
  packagesPerHost: number;
  /** Host names: `${prefix}${index, 4 digits}` (default `host-`). */
  prefix?: string;
  /**
   * Moves the store's clock (a TestClock's advance): when given, every fifth host reports first,
   * then the clock moves past the store's staleAfter, so those hosts are stale. Without it no host is.
   */
  advance?: (seconds: number) => void;
}

export interface SeededHost {
  name: string;
  tokenId: number;
  secret: string;
  /** Its verdict as a list shows it now. */
  verdict: ReportVerdict | 'stale';
  reportId: string;
}

const ROTATION: readonly ReportVerdict[] = ['clean', 'findings', 'incomplete', 'trust-failure'];

/**
 * A fleet recorded through the store's write path, one reporter token per host. Host i: every
 * fifth (i % 5 === 4) is stale when `advance` is given (else clean); the others rotate through
 * clean, findings, incomplete and trust failure. Every third package is outdated.
 */
export async function seedFleet(store: Store, options: FleetOptions): Promise<SeededHost[]> {
  const packages = fleetPackages(options.packagesPerHost, 3);
  const prefix = options.prefix ?? 'host-';
  const plan = Array.from({ length: options.hosts }, (_, i) => ({
    name: `${prefix}${String(i).padStart(4, '0')}`,
    verdict: ROTATION[i % 5 === 4 ? 0 : i % 5] as ReportVerdict,
    stale: options.advance !== undefined && i % 5 === 4,
  }));
  const seeded: SeededHost[] = [];
  const record = async (h: (typeof plan)[number]): Promise<void> => {
    const token = await store.createToken('reporter', `reporter ${h.name}`, h.name);
    const reportId = randomUUID();
    const outcome = await store.recordReport({
      tokenId: token.id,
      host: h.name,
      reportId,
      report: reportWithVerdict(h.verdict, packages),
    });
    if (outcome.kind !== 'stored')
      throw new Error(`seedFleet: ${h.name}'s report was not stored (${outcome.kind})`);
    seeded.push({
      name: h.name,
      tokenId: token.id,
      secret: token.secret,
      verdict: h.stale ? 'stale' : h.verdict,
      reportId,
    });
  };
  for (const h of plan.filter((p) => p.stale)) await record(h);
  if (options.advance !== undefined) options.advance(store.hostPolicy().staleAfterSeconds + 3600);
  for (const h of plan.filter((p) => !p.stale)) await record(h);
  return seeded.sort((a, b) => (a.name < b.name ? -1 : 1));
}
