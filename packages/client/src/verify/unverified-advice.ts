import type { PackageResult, UnverifiedReason } from './report.js';

/**
 * Why packages are unverified, by reason, with what the operator can do about each: the last
 * lines of a text report. One rule per reason; the JSON report carries the counts
 * (`summary.unverifiedByReason`) and each package's own `reason`.
 */

interface Advice {
  /** What the packages with this reason are, for `n` of them. */
  what: (n: number) => string;
  /** What the operator can do. */
  todo: string;
}

const ADVICE: Record<UnverifiedReason, Advice> = {
  'not-in-catalog': {
    what: (n) =>
      `${plural(n, 'version')} the server's catalog does not offer (the archive no longer carries ${n === 1 ? 'it' : 'them'}, or ${n === 1 ? 'it' : 'they'} came from elsewhere)`,
    todo:
      'give the generator an archive snapshot source: sysattest-generator image refresh PLATFORM --sources FILE ' +
      '(a "snapshot" source; see its --help), then let the worker sync the catalog and run verify again',
  },
  'foreign-origin': {
    what: (n) => `${plural(n, 'package')} from repositories the server does not track`,
    todo:
      "add each repository to the generator's image with its signing key: sysattest-generator image refresh " +
      'PLATFORM --sources FILE (a "repository" source), then run verify again',
  },
  pending: {
    what: (n) => `${plural(n, 'version')} queued on the server, manifest not made yet`,
    todo: 'let a generator worker (sysattest-generator work) run, then verify again',
  },
  'unknown-platform': {
    what: (n) => `${plural(n, 'package')} of a platform the server has no catalog for`,
    todo: "build the platform's generator image and sync its catalog (sysattest-generator image build, work)",
  },
  'server-unreachable': {
    what: (n) => `${plural(n, 'package')} with no cached manifest while the server could not be reached`,
    todo: 'check --server and the network, then verify again',
  },
  'not-cached': {
    what: (n) => `${plural(n, 'package')} with no cached manifest (offline run)`,
    todo: 'run once with --server to fill the cache',
  },
};

const EXAMPLES = 4;

export interface UnverifiedGroup {
  reason: UnverifiedReason;
  count: number;
  /** `name version` of the first few. */
  examples: string[];
  /** foreign-origin: the repositories' Origins, most packages first. */
  origins?: string[];
  what: string;
  todo: string;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function isReason(r: string | undefined): r is UnverifiedReason {
  return r !== undefined && Object.hasOwn(ADVICE, r);
}

/** Counts of unverified packages by reason (reasons with none left out). */
export function countUnverified(
  packages: readonly PackageResult[],
): Partial<Record<UnverifiedReason, number>> {
  const counts: Partial<Record<UnverifiedReason, number>> = {};
  for (const p of packages) {
    if (p.status === 'unverified' && isReason(p.reason)) counts[p.reason] = (counts[p.reason] ?? 0) + 1;
  }
  return counts;
}

/** The unverified packages grouped by reason, largest group first. */
export function explainUnverified(packages: readonly PackageResult[]): UnverifiedGroup[] {
  const byReason = new Map<UnverifiedReason, PackageResult[]>();
  for (const p of packages) {
    if (p.status !== 'unverified' || !isReason(p.reason)) continue;
    const list = byReason.get(p.reason) ?? [];
    list.push(p);
    byReason.set(p.reason, list);
  }
  return [...byReason]
    .map(([reason, list]) => ({
      reason,
      count: list.length,
      examples: list.slice(0, EXAMPLES).map((p) => `${p.name} ${p.version}`),
      ...(reason === 'foreign-origin' ? { origins: originsOf(list) } : {}),
      what: ADVICE[reason].what(list.length),
      todo: ADVICE[reason].todo,
    }))
    .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1));
}

function originsOf(list: readonly PackageResult[]): string[] {
  const counts = new Map<string, number>();
  for (const p of list) if (p.origin !== undefined) counts.set(p.origin, (counts.get(p.origin) ?? 0) + 1);
  return [...counts].sort((a, b) => b[1] - a[1]).map(([o]) => o);
}

/** The text lines: one per reason, its examples, and what to do. */
export function unverifiedLines(groups: readonly UnverifiedGroup[], total: number): string[] {
  if (groups.length === 0) return [];
  const lines = [`Why ${plural(total, 'package')} ${total === 1 ? 'is' : 'are'} unverified`];
  for (const g of groups) {
    const from = g.origins && g.origins.length > 0 ? ` (${g.origins.join(', ')})` : '';
    const more = g.count > g.examples.length ? ', …' : '';
    lines.push(`  ${g.what}${from}: ${g.examples.join(', ')}${more}`);
    lines.push(`    → ${g.todo}`);
  }
  return lines;
}
