import {
  FINDING_CLASS_TITLES,
  FINDING_CLASSES,
  type Finding,
  type PackageResult,
  type VerifyReport,
} from '@sysattest/core';
import type { Capped, HostFinding, HostPackage, HostReportView } from '@sysattest/dashboard';

/**
 * How much of a report the host page shows. A report may hold 250,000 findings and 100,000
 * packages (core REPORT_LIMITS); the page stays small and links the whole report for the rest.
 */
export const HOST_PAGE_CAPS = { findingsPerClass: 200, packages: 500, notes: 50 } as const;

function capped<T>(all: readonly T[], cap: number): Capped<T> {
  return { total: all.length, items: all.slice(0, cap) };
}

function hostFinding(f: Finding): HostFinding {
  return {
    class: f.class,
    package: f.package,
    arch: f.arch,
    detail: f.detail,
    failure: f.failure,
    ...(f.path === undefined ? {} : { path: f.path }),
    ...(f.location === undefined ? {} : { location: f.location }),
    ...(f.attribute === undefined ? {} : { attribute: f.attribute }),
    ...(f.expected === undefined ? {} : { expected: f.expected }),
    ...(f.actual === undefined ? {} : { actual: f.actual }),
    ...(f.accepted === true ? { accepted: true } : {}),
  };
}

function hostPackage(p: PackageResult): HostPackage {
  const newest = p.newestVersion ?? p.newestVersionClaimed;
  return {
    name: p.name,
    version: p.version,
    arch: p.arch,
    status: p.status,
    ...(p.reason === undefined ? {} : { reason: p.reason }),
    ...(p.origin === undefined ? {} : { origin: p.origin }),
    ...(newest === undefined ? {} : { newestVersion: newest }),
    ...(p.newestVersion === undefined && newest !== undefined ? { newestClaimed: true } : {}),
  };
}

/**
 * Outdated as the store counts it (HostSummary.outdated): the newest version the host knew of,
 * signed or only claimed by the server, differs from the installed one.
 */
export function isOutdated(p: PackageResult): boolean {
  const newest = p.newestVersion ?? p.newestVersionClaimed;
  return newest !== undefined && newest !== p.version;
}

/**
 * A stored report as the host page shows it, in the client's text report's order: findings by
 * class (FINDING_CLASSES), each class capped; `unverified` and `outdated` become package lists
 * (with reasons, with both versions) instead of finding groups.
 */
export function hostReportView(
  stored: { reportId: string; receivedAt: string },
  report: VerifyReport,
  caps: { findingsPerClass: number; packages: number; notes: number } = HOST_PAGE_CAPS,
): HostReportView {
  const byClass = new Map<string, Finding[]>();
  for (const f of report.findings) {
    const group = byClass.get(f.class);
    if (group === undefined) byClass.set(f.class, [f]);
    else group.push(f);
  }
  const findings = FINDING_CLASSES.filter(
    (c) => c !== 'unverified' && c !== 'outdated' && byClass.has(c),
  ).map((c) => {
    const group = byClass.get(c) as Finding[];
    return {
      class: c,
      title: FINDING_CLASS_TITLES[c],
      failures: group.filter((f) => f.failure).length,
      total: group.length,
      items: group.slice(0, caps.findingsPerClass).map(hostFinding),
    };
  });
  const unverified = report.packages.filter((p) => p.status !== 'verified');
  const outdated = report.packages.filter(isOutdated);
  return {
    reportId: stored.reportId,
    receivedAt: stored.receivedAt,
    root: report.root,
    platform: report.platform,
    findings,
    unverified: { total: unverified.length, items: unverified.slice(0, caps.packages).map(hostPackage) },
    outdated: { total: outdated.length, items: outdated.slice(0, caps.packages).map(hostPackage) },
    notes: capped(report.notes, caps.notes),
  };
}
