import { z } from 'zod';
import { PROTOCOL_LIMITS, platformField, sha256Field, timeField } from './fields.js';

/**
 * The verify report (`sysattest verify --format json`, `sysattest.verify-report` v1) as a wire
 * contract, the hosts' reports that carry it (`POST /v1/reports`) and the fleet's answers
 * (`GET /v1/hosts`). The client writes the report; the server reads it as what a host SAYS about
 * itself (a rooted host can send "clean"): evidence, never attestation.
 *
 * Report fields (names are stable; new fields may be added, none removed or renamed without
 * bumping `schemaVersion`; documented for users in README.md, "JSON report"):
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

/**
 * The bounds of a report. A real machine is far inside them (a desktop has 2,000–3,000 packages);
 * the server's body cap (32 MiB by default) usually binds before the counts do.
 */
export const REPORT_LIMITS = {
  packages: 100_000,
  findings: 250_000,
  catalogs: 1000,
  notes: 10_000,
  /** Characters of a path, a symlink target, an expected or actual value. */
  pathLength: 4096,
  /** Characters of a finding's detail, a package's reason, a note. */
  textLength: 8192,
  /** Characters of a host name (a DNS name's). */
  hostNameLength: 253,
  /** Reports a host's history answer lists. */
  history: 1000,
  /** Hosts one page of GET /v1/hosts lists. */
  hostsPage: 1000,
} as const;

/** Every finding class, in the order reports list them. */
export const FINDING_CLASSES = [
  'bad-signature',
  'server-conflict',
  'modified',
  'replaced',
  'missing',
  'metadata',
  'unexpected',
  'config-modified',
  'unreadable',
  'unstable',
  'unresolvable',
  'diversion',
  'statoverride',
  'unowned',
  'unverified',
  'stale-catalog',
  'outdated',
] as const;
export type FindingClass = (typeof FINDING_CLASSES)[number];

/** Each class's heading, as the client's text report and the dashboard's host page show it. */
export const FINDING_CLASS_TITLES: Readonly<Record<FindingClass, string>> = {
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

export const METADATA_ATTRIBUTES = ['mode', 'uid', 'gid', 'capabilities', 'target', 'device'] as const;
export type MetadataAttribute = (typeof METADATA_ATTRIBUTES)[number];

export const UNVERIFIED_REASONS = [
  'pending',
  'not-in-catalog',
  'unknown-platform',
  'foreign-origin',
  'server-unreachable',
  'not-cached',
] as const;
export type UnverifiedReason = (typeof UNVERIFIED_REASONS)[number];

export const PACKAGE_STATUSES = ['verified', 'unverified', 'bad-signature'] as const;

const count = () => z.int().nonnegative();
/** A package name, version or architecture as a report names it ("" for an unowned file's). */
const packagePart = () => z.string().max(PROTOCOL_LIMITS.fieldLength);
const pathText = () => z.string().max(REPORT_LIMITS.pathLength);
const text = () => z.string().max(REPORT_LIMITS.textLength);

export const findingSchema = z.object({
  class: z.enum(FINDING_CLASSES),
  /** Package name ("" for an unowned file). */
  package: packagePart(),
  /** The package's architecture. */
  arch: packagePart(),
  /** The path as the package ships it. */
  path: pathText().optional(),
  /** Where it was looked at, when that differs from `path` (a diversion). */
  location: pathText().optional(),
  /** For `metadata` (and `config-modified` caused by metadata): which attribute. */
  attribute: z.enum(METADATA_ATTRIBUTES).optional(),
  expected: pathText().optional(),
  actual: pathText().optional(),
  /** One line for a human. */
  detail: text(),
  /** `unowned` files: whether the server knows the content from some package version. */
  known: z.boolean().optional(),
  /** Whether the finding is an integrity failure (false: reported for information). */
  failure: z.boolean(),
  /** A local claim (diversion, stat override) the operator's configuration accepted. */
  accepted: z.literal(true).optional(),
});
export type Finding = z.infer<typeof findingSchema>;

export const packageResultSchema = z.object({
  name: packagePart(),
  version: packagePart(),
  arch: packagePart(),
  status: z.enum(PACKAGE_STATUSES),
  /** unverified: an UnverifiedReason; bad-signature: `CODE: message`. */
  reason: text().optional(),
  /** verified: fingerprint of the pinned key that signed the manifest. */
  signer: z.string().max(100).optional(),
  /** foreign-origin: the Origin of the repository that offers the package. */
  origin: z.string().max(PROTOCOL_LIMITS.fieldLength).optional(),
  /** The newest version in a catalog snapshot whose signature verified. */
  newestVersion: packagePart().optional(),
  /** The server's claim of the newest version, when no signed catalog could be verified. */
  newestVersionClaimed: packagePart().optional(),
});
export type PackageResult = z.infer<typeof packageResultSchema>;

export const catalogResultSchema = z.object({
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  digest: sha256Field(),
  status: z.enum(['verified', 'refused']),
  generatedAt: z.string().max(100).optional(),
  signer: z.string().max(100).optional(),
  reason: text().optional(),
  /** The server did not offer a snapshot that holds: this one was verified on an earlier run. */
  remembered: z.literal(true).optional(),
});
export type CatalogResult = z.infer<typeof catalogResultSchema>;

export const reportSummarySchema = z.object({
  packages: count(),
  verified: count(),
  unverified: count(),
  unverifiedByReason: z.partialRecord(z.enum(UNVERIFIED_REASONS), count()),
  badSignature: count(),
  filesChecked: count(),
  failures: count(),
  findingsByClass: z.record(z.enum(FINDING_CLASSES), count()),
  durationMs: z.number().nonnegative(),
});
export type ReportSummary = z.infer<typeof reportSummarySchema>;

/** The verify report, bounded: what the client writes and the server accepts. */
export const verifyReportSchema = z.object({
  schema: z.literal(REPORT_SCHEMA_ID),
  schemaVersion: z.literal(REPORT_SCHEMA_VERSION),
  root: pathText(),
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  summary: reportSummarySchema,
  findings: z.array(findingSchema).max(REPORT_LIMITS.findings),
  packages: z.array(packageResultSchema).max(REPORT_LIMITS.packages),
  catalogs: z.array(catalogResultSchema).max(REPORT_LIMITS.catalogs),
  notes: z.array(text()).max(REPORT_LIMITS.notes),
});
export type VerifyReport = z.infer<typeof verifyReportSchema>;

// --- the rules: exit status and verdict -----------------------------------------------------

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

/**
 * A host's verdict. The first four are a report's (its exit status, worst bit first); `stale` is
 * decided when read: the host has sent no report for longer than the server's `staleAfter`.
 */
export const HOST_VERDICTS = ['clean', 'findings', 'incomplete', 'trust-failure', 'stale'] as const;
export type HostVerdict = (typeof HOST_VERDICTS)[number];
export type ReportVerdict = Exclude<HostVerdict, 'stale'>;
export const REPORT_VERDICTS = ['clean', 'findings', 'incomplete', 'trust-failure'] as const;

/** The verdict of an exit status: trust failure over findings over incomplete coverage. */
export function verdictOfExitCode(code: number): ReportVerdict {
  if ((code & EXIT_BITS.trust) !== 0) return 'trust-failure';
  if ((code & EXIT_BITS.integrity) !== 0) return 'findings';
  if ((code & EXIT_BITS.incomplete) !== 0) return 'incomplete';
  return 'clean';
}

export function verdictOfReport(report: VerifyReport): ReportVerdict {
  return verdictOfExitCode(exitCodeOf(report));
}

/**
 * Why a report's summary disagrees with its own lists, or undefined. The server refuses such a
 * report: the summary's counts are what the fleet's pages show, and a client never writes them
 * apart (a hand-made or damaged report does).
 */
export function reportInconsistency(report: VerifyReport): string | undefined {
  const s = report.summary;
  if (s.packages !== report.packages.length) {
    return `summary.packages is ${s.packages} but the report lists ${report.packages.length} packages`;
  }
  const failures = report.findings.filter((f) => f.failure).length;
  if (s.failures !== failures)
    return `summary.failures is ${s.failures} but ${failures} findings are failures`;
  const byClass = new Map<FindingClass, number>();
  for (const f of report.findings) byClass.set(f.class, (byClass.get(f.class) ?? 0) + 1);
  for (const cls of FINDING_CLASSES) {
    const listed = byClass.get(cls) ?? 0;
    if (s.findingsByClass[cls] !== listed) {
      return `summary.findingsByClass.${cls} is ${s.findingsByClass[cls]} but ${listed} such findings are listed`;
    }
  }
  const statuses = { verified: 0, unverified: 0, 'bad-signature': 0 };
  for (const p of report.packages) statuses[p.status]++;
  if (s.verified !== statuses.verified || s.unverified !== statuses.unverified) {
    return 'summary.verified and summary.unverified disagree with the packages listed';
  }
  if (s.badSignature !== statuses['bad-signature']) {
    return 'summary.badSignature disagrees with the packages listed';
  }
  return undefined;
}

// --- POST /v1/reports -----------------------------------------------------------------------

/** A host name as a token binds it and a path names it: a DNS name's characters. */
export const HOST_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
export const hostNameField = () => z.string().max(REPORT_LIMITS.hostNameLength).regex(HOST_NAME);
/** A report's id, made by the client (`crypto.randomUUID()`), so a resend is stored once. */
export const reportIdField = () =>
  z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    .describe('a UUID the client made for this report, lower-case');

export const reportUploadSchema = z.strictObject({
  reportId: reportIdField(),
  hostname: z
    .string()
    .max(REPORT_LIMITS.hostNameLength)
    .describe("informational: the host's own name for itself; the token says which host this is"),
  report: verifyReportSchema,
});
export type ReportUpload = z.infer<typeof reportUploadSchema>;

/** 201 (stored) or 200 (this host had already sent this reportId: stored once). */
export const reportReceiptSchema = z.object({
  host: hostNameField().describe('the host the token is bound to'),
  reportId: reportIdField(),
  verdict: z.enum(REPORT_VERDICTS),
  receivedAt: timeField(),
});
export type ReportReceipt = z.infer<typeof reportReceiptSchema>;

// --- GET /v1/hosts, /v1/hosts/{name}, /v1/hosts/{name}/reports/{reportId} -------------------

export const hostListQuerySchema = z.strictObject({
  verdict: z.enum(HOST_VERDICTS).optional(),
  platform: platformField().optional(),
  limit: z
    .string()
    .regex(/^[1-9][0-9]{0,3}$/)
    .optional()
    .describe(`hosts per page, at most ${REPORT_LIMITS.hostsPage} (default 100)`),
  after: z.string().min(1).max(400).optional().describe("the previous page's `next`"),
});
export type HostListQuery = z.infer<typeof hostListQuerySchema>;

export const hostParams = () => z.strictObject({ name: hostNameField() });
export const hostReportParams = () => z.strictObject({ name: hostNameField(), reportId: reportIdField() });

/** A host as its latest report describes it (its claim), and its verdict now. */
export const hostSummarySchema = z.object({
  name: hostNameField(),
  platform: z.string().max(PROTOCOL_LIMITS.platformLength),
  lastReportAt: timeField(),
  verdict: z.enum(HOST_VERDICTS),
  exitCode: z.int().min(0).max(7).describe("the latest report's exit status"),
  packages: count(),
  verified: count(),
  unverified: count(),
  outdated: count().describe(
    'packages whose newest version (signed, or claimed) differs from the installed one',
  ),
  failures: count(),
  findingsByClass: z.record(z.enum(FINDING_CLASSES), count()),
});
export type HostSummary = z.infer<typeof hostSummarySchema>;

export const hostListAnswerSchema = z.object({
  hosts: z.array(hostSummarySchema).max(REPORT_LIMITS.hostsPage),
  next: z.string().max(400).optional().describe('more hosts: pass it as `after`'),
});
export type HostListAnswer = z.infer<typeof hostListAnswerSchema>;

export const hostHistoryEntrySchema = z.object({
  reportId: reportIdField(),
  receivedAt: timeField(),
  verdict: z.enum(REPORT_VERDICTS),
  exitCode: z.int().min(0).max(7),
  failures: count(),
});
export type HostHistoryEntry = z.infer<typeof hostHistoryEntrySchema>;

export const hostDetailAnswerSchema = z.object({
  host: hostSummarySchema,
  history: z.array(hostHistoryEntrySchema).max(REPORT_LIMITS.history).describe('newest first'),
});
export type HostDetailAnswer = z.infer<typeof hostDetailAnswerSchema>;

/** DELETE /v1/admin/hosts/{name}: what forgetting the host removed. */
export const hostForgottenSchema = z.object({
  host: hostNameField(),
  reports: count().describe('reports deleted'),
  tokensRevoked: count().describe("the host's reporter tokens that were live and are now revoked"),
});
export type HostForgotten = z.infer<typeof hostForgottenSchema>;
