import {
  FINDING_CLASS_TITLES,
  FINDING_CLASSES,
  type Finding,
  type FindingClass,
  type VerifyReport,
} from '@sysattest/core';
import { explainUnverified, unverifiedLines } from './unverified-advice.js';

/**
 * The result of `sysattest verify`, and its two renderings. The report's JSON (`--format json`,
 * `sysattest.verify-report` v1) is a wire contract since hosts send it to the server: its schema,
 * types and the exit-status rules live in core (`protocol/reports.ts`) and are re-exported here
 * so that callers keep importing them from the client.
 */
export {
  CLASS_BITS,
  EXIT_BITS,
  FINDING_CLASSES,
  REPORT_SCHEMA_ID,
  REPORT_SCHEMA_VERSION,
  exitCodeOf,
  verifyReportSchema,
  type CatalogResult,
  type Finding,
  type FindingClass,
  type PackageResult,
  type ReportSummary,
  type UnverifiedReason,
  type VerifyReport,
} from '@sysattest/core';

/** Findings sorted for output: class order, then package, then path. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  const rank = new Map(FINDING_CLASSES.map((c, i) => [c, i]));
  return [...findings].sort(
    (a, b) =>
      (rank.get(a.class) ?? 99) - (rank.get(b.class) ?? 99) ||
      cmp(a.package, b.package) ||
      cmp(a.arch, b.arch) ||
      cmp(a.path ?? '', b.path ?? '') ||
      cmp(a.attribute ?? '', b.attribute ?? ''),
  );
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Counts per class, every class present. */
export function countByClass(findings: readonly Finding[]): Record<FindingClass, number> {
  const counts = Object.fromEntries(FINDING_CLASSES.map((c) => [c, 0])) as Record<FindingClass, number>;
  for (const f of findings) counts[f.class]++;
  return counts;
}

/** The JSON rendering: the report itself, one line per finding would be too clever; pretty-printed. */
export function renderJson(report: VerifyReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

export interface RenderTextOptions {
  /** ANSI colour (default false: the caller decides, e.g. only on a TTY). */
  colour?: boolean;
  /** Show each unverified package (default true). */
  listUnverified?: boolean;
}

/** Summary first, then findings grouped by class. */
export function renderText(report: VerifyReport, options: RenderTextOptions = {}): string {
  const colour = options.colour === true;
  const paint = (code: string, s: string): string => (colour ? `\u001b[${code}m${s}\u001b[0m` : s);
  const red = (s: string): string => paint('31', s);
  const yellow = (s: string): string => paint('33', s);
  const green = (s: string): string => paint('32', s);
  const bold = (s: string): string => paint('1', s);
  const s = report.summary;
  const lines: string[] = [];
  lines.push(bold(`sysattest verify: ${report.root} (${report.platform})`));
  lines.push(
    `packages: ${s.packages} — ${s.verified} verified, ${s.unverified} unverified, ${s.badSignature} bad signature`,
  );
  lines.push(`files checked: ${s.filesChecked} in ${(s.durationMs / 1000).toFixed(1)} s`);
  const counted = FINDING_CLASSES.filter((c) => s.findingsByClass[c] > 0);
  if (counted.length === 0) {
    lines.push(green('no findings: every file matches its signed manifest'));
  } else {
    lines.push(
      `findings: ${counted.map((c) => `${c} ${s.findingsByClass[c]}`).join(', ')}` +
        ` (${s.failures} ${s.failures === 1 ? 'failure' : 'failures'})`,
    );
  }
  for (const cls of FINDING_CLASSES) {
    const group = report.findings.filter((f) => f.class === cls);
    if (group.length === 0) continue;
    if (cls === 'unverified' && options.listUnverified === false) continue;
    const isFailure = group.some((f) => f.failure);
    lines.push('');
    lines.push((isFailure ? red : yellow)(bold(`${FINDING_CLASS_TITLES[cls]} (${group.length})`)));
    for (const f of group) {
      const who = f.arch === '' ? f.package : `${f.package}:${f.arch}`;
      const detail = f.accepted === true ? `(accepted) ${f.detail}` : f.detail;
      lines.push(
        f.package === ''
          ? `  ${detail}`
          : f.path === undefined
            ? `  ${who}: ${detail}`
            : `  ${detail}  [${who}]`,
      );
    }
  }
  const refusedCatalogs = report.catalogs.filter((c) => c.status === 'refused');
  if (refusedCatalogs.length > 0) {
    lines.push('');
    lines.push(red(bold(`Catalog snapshots refused (${refusedCatalogs.length})`)));
    for (const c of refusedCatalogs) lines.push(`  ${c.platform} ${c.digest}: ${c.reason ?? ''}`);
  }
  if (report.notes.length > 0) {
    lines.push('');
    lines.push(bold(`Notes (${report.notes.length})`));
    for (const n of report.notes.slice(0, 50)) lines.push(`  ${n}`);
    if (report.notes.length > 50) lines.push(`  … and ${report.notes.length - 50} more (see --format json)`);
  }
  const why = unverifiedLines(explainUnverified(report.packages), s.unverified);
  if (why.length > 0) lines.push('', ...why.map((l, i) => (i === 0 ? bold(l) : l)));
  return `${lines.join('\n')}\n`;
}
