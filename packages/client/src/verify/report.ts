import { FINDING_CLASSES, type Finding, type FindingClass } from './compare.js';
import { explainUnverified, unverifiedLines } from './unverified-advice.js';

/**
 * The result of `sysattest verify`, and its two renderings.
 *
 * JSON schema (`--format json`; field names are stable, new fields may be added, none removed
 * or renamed without bumping `schemaVersion`). Documented for users in README.md ("JSON report").
 *
 * ```
 * {
 *   "schema": "sysattest.verify-report", "schemaVersion": 1,
 *   "root": "/",                          // the root that was checked
 *   "platform": "debian/bookworm/amd64",  // its primary platform
 *   "summary": {
 *     "packages": 412,                    // installed packages considered
 *     "verified": 400,                    // with a manifest that verified against a pinned key
 *     "unverified": 10,                   // no trusted manifest (see packages[].reason)
 *     "unverifiedByReason": { "not-in-catalog": 8, "foreign-origin": 2 },  // reasons with none left out
 *     "badSignature": 2,                  // a manifest was offered but refused
 *     "filesChecked": 51234,              // manifest entries compared with the disk
 *     "failures": 3,                      // findings with failure: true
 *     "findingsByClass": { "modified": 1, "config-modified": 2, ... },  // every class, 0 included
 *     "durationMs": 5123
 *   },
 *   "findings": [{
 *     "class": "bad-signature" | "server-conflict" | "modified" | "replaced" | "missing" | "metadata"
 *            | "unexpected" | "config-modified" | "unreadable" | "unstable" | "unresolvable"
 *            | "diversion" | "statoverride" | "unowned" | "unverified" | "stale-catalog" | "outdated",
 *     "package": "coreutils", "arch": "amd64",   // "" for unowned files
 *     "path": "/usr/bin/ls",              // absent for package-level findings
 *     "location": "/usr/bin/ls.distrib",  // only when diverted: where it was looked at
 *     "attribute": "mode",                // metadata only: mode|uid|gid|capabilities|target|device
 *     "expected": "0755", "actual": "4755",   // strings; absent when not meaningful
 *     "known": false,                     // unowned files: the server knows this content
 *     "detail": "…",                      // one line for a human
 *     "failure": true,                    // false: information only
 *     "accepted": true                    // a diversion or stat override the configuration accepted
 *   }],
 *   "packages": [{
 *     "name": "coreutils", "version": "9.1-1", "arch": "amd64",
 *     "status": "verified" | "unverified" | "bad-signature",
 *     "reason": "pending" | "not-in-catalog" | "unknown-platform" | "foreign-origin"
 *             | "server-unreachable" | "not-cached" | "<error code>: <message>",
 *     "origin": "Docker",                 // foreign-origin: the repository's Origin
 *     "signer": "40 hex",                 // verified only: the pinned key that signed the manifest
 *     "newestVersion": "9.1-2",           // from a signed catalog that verified
 *     "newestVersionClaimed": "9.1-2"     // the server's unsigned claim, when no signed catalog was had
 *   }],
 *   "catalogs": [{ "platform": "debian/bookworm/amd64", "digest": "64 hex",
 *                  "status": "verified" | "refused", "generatedAt": "…", "signer": "…", "reason": "…",
 *                  "remembered": true }],   // verified on an earlier run (the server's refused or missing)
 *   "notes": ["…"]                        // things worth knowing that are not findings
 * }
 * ```
 * Findings are sorted by class (the order of FINDING_CLASSES), then package, then path.
 */
export const REPORT_SCHEMA_ID = 'sysattest.verify-report';
export const REPORT_SCHEMA_VERSION = 1;

export type UnverifiedReason =
  'pending' | 'not-in-catalog' | 'unknown-platform' | 'foreign-origin' | 'server-unreachable' | 'not-cached';

export interface PackageResult {
  name: string;
  version: string;
  arch: string;
  status: 'verified' | 'unverified' | 'bad-signature';
  /** unverified: an UnverifiedReason; bad-signature: `CODE: message`. */
  reason?: string;
  /** verified: fingerprint of the pinned key that signed the manifest. */
  signer?: string;
  /** foreign-origin: the Origin of the repository that offers the package. */
  origin?: string;
  /** The newest version in a catalog snapshot whose signature verified. */
  newestVersion?: string;
  /** The server's claim of the newest version, when no signed catalog could be verified. */
  newestVersionClaimed?: string;
}

export interface CatalogResult {
  platform: string;
  digest: string;
  status: 'verified' | 'refused';
  generatedAt?: string;
  signer?: string;
  reason?: string;
  /** The server did not offer a snapshot that holds: this one was verified on an earlier run. */
  remembered?: true;
}

export interface ReportSummary {
  packages: number;
  verified: number;
  unverified: number;
  unverifiedByReason: Partial<Record<UnverifiedReason, number>>;
  badSignature: number;
  filesChecked: number;
  failures: number;
  findingsByClass: Record<FindingClass, number>;
  durationMs: number;
}

export interface VerifyReport {
  schema: typeof REPORT_SCHEMA_ID;
  schemaVersion: typeof REPORT_SCHEMA_VERSION;
  root: string;
  platform: string;
  summary: ReportSummary;
  findings: Finding[];
  packages: PackageResult[];
  catalogs: CatalogResult[];
  notes: string[];
}

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

/** Exit status bits: 1 integrity findings, 2 incomplete coverage, 4 trust failure; 0 clean. */
export const EXIT_BITS = { integrity: 1, incomplete: 2, trust: 4 } as const;

/**
 * The exit bit a failing finding of each class sets (`outdated` is never a failure; `unverified`
 * counts through the packages' status).
 */
export const CLASS_BITS: Readonly<Record<FindingClass, number>> = {
  'bad-signature': EXIT_BITS.trust,
  'server-conflict': EXIT_BITS.trust,
  modified: EXIT_BITS.integrity,
  replaced: EXIT_BITS.integrity,
  missing: EXIT_BITS.integrity,
  metadata: EXIT_BITS.integrity,
  unexpected: EXIT_BITS.integrity,
  'config-modified': EXIT_BITS.integrity,
  unreadable: EXIT_BITS.integrity,
  unstable: EXIT_BITS.integrity,
  unresolvable: EXIT_BITS.integrity,
  diversion: EXIT_BITS.integrity,
  statoverride: EXIT_BITS.integrity,
  unowned: EXIT_BITS.integrity,
  unverified: EXIT_BITS.incomplete,
  'stale-catalog': EXIT_BITS.incomplete,
  outdated: 0,
};

export function exitCodeOf(report: VerifyReport): number {
  let code = 0;
  for (const f of report.findings) if (f.failure) code |= CLASS_BITS[f.class];
  if (report.summary.unverified > 0) code |= EXIT_BITS.incomplete;
  if (report.summary.badSignature > 0 || report.catalogs.some((c) => c.status === 'refused')) {
    code |= EXIT_BITS.trust;
  }
  return code;
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

const CLASS_TITLES: Record<FindingClass, string> = {
  'bad-signature': 'Bad or untrusted signature (manifest refused)',
  modified: 'Modified content',
  replaced: 'Replaced (type changed)',
  missing: 'Missing',
  metadata: 'Metadata changed (mode, owner, capabilities, link target, device)',
  unexpected: 'Unexpected (a fresh install has no such path)',
  'config-modified': 'Configuration files changed',
  unreadable: 'Unreadable',
  unstable: 'Changed while being checked',
  unresolvable: 'Cannot be resolved inside the root',
  unverified: 'Unverified packages (no trusted manifest)',
  outdated: 'Outdated (a newer version is in the signed catalog)',
  unowned: 'Unowned (no installed package owns it)',
  diversion: 'Diversions no verified manifest declares',
  statoverride: 'Local stat overrides that differ from the signed manifest',
  'server-conflict': 'The server contradicted signed data',
  'stale-catalog': 'Catalog snapshots missing or too old',
};

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
    lines.push((isFailure ? red : yellow)(bold(`${CLASS_TITLES[cls]} (${group.length})`)));
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
