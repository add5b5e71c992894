import {
  SysattestError,
  isSysattestError,
  newestVersions,
  verifyCatalog,
  type InstalledPackage,
  type TrustedKeyring,
  type VerifiedCatalog,
  type VersionScheme,
} from '@sysattest/core';
import type { CatalogMark, ManifestCache } from '../cache/manifest-cache.js';
import type { Finding } from './compare.js';
import type { CatalogResult } from './report.js';
import { isUnavailable, type ManifestSource, type OfferedCatalog } from './source.js';

/**
 * The signed catalog snapshots a verification believes: what "newest version" (`outdated`) and
 * "this version exists" (a server's `not-in-catalog` contradicted) are judged by. The server only
 * names snapshots; each is verified against the pinned keys, and the client remembers per
 * platform the newest one it has verified (ManifestCache.catalogMarks), so a server cannot make
 * it check against less:
 *
 * | the server…                                   | report                                          | exit bit |
 * |-----------------------------------------------|-------------------------------------------------|----------|
 * | names a snapshot newer than or equal to the   | verified; remembered as the newest              | –        |
 * | one remembered                                |                                                 |          |
 * | names an older one (a rollback)               | `refused`; the remembered snapshot is used      | trust    |
 * | names one that does not verify                | `refused`; the remembered snapshot is used      | trust    |
 * | names none for a platform it was asked about  | `stale-catalog` + a note; the remembered is used | coverage |
 * | (any) and the snapshot used is older than     | `stale-catalog`                                 | coverage |
 * | the maximum age (default 7 days)              |                                                 |          |
 * Offline, the remembered snapshots are used and a note says how old they are.
 */

export const DEFAULT_CATALOG_MAX_AGE_DAYS = 7;

export interface CatalogInputs {
  keyring: TrustedKeyring;
  source?: ManifestSource;
  cache?: ManifestCache;
  /** The lookup platforms asked about (ids): each should have a snapshot. */
  platforms: readonly string[];
  installed: readonly InstalledPackage[];
  /** Lookup platform id of an installed package. */
  platformOf(pkg: InstalledPackage): string | undefined;
  scheme: VersionScheme;
  /** Oldest acceptable snapshot, in days. */
  maxAgeDays: number;
  /** The source is unreachable (its error message), when it is. */
  unavailable?: string;
  now?: Date;
}

/** The snapshots believed, reduced to what the installed packages need. */
export interface CatalogView {
  results: CatalogResult[];
  findings: Finding[];
  notes: string[];
  /** Per platform id: newest version of each installed `name:arch`. */
  newest: Map<string, Map<string, string>>;
  /** Per platform id: the installed `name\0version\0arch` the snapshot lists. */
  listed: Map<string, Set<string>>;
  generatedAt: Map<string, string>;
}

/** The key `listed` uses. */
export function listedKey(name: string, version: string, arch: string): string {
  return `${name}\0${version}\0${arch}`;
}

/**
 * Loads, verifies and judges the snapshot of every platform asked about (see the table above).
 * Undefined when there is nothing to judge by: a source that serves no snapshots and no
 * remembered ones.
 */
export async function loadCatalogs(inputs: CatalogInputs): Promise<CatalogView | undefined> {
  const { source, cache } = inputs;
  const serves = source?.snapshotDigests !== undefined && source.catalog !== undefined;
  const marks = cache?.catalogMarks() ?? new Map<string, CatalogMark>();
  if (!serves && (source !== undefined || marks.size === 0)) return undefined;
  const view: CatalogView = {
    results: [],
    findings: [],
    notes: [],
    newest: new Map(),
    listed: new Map(),
    generatedAt: new Map(),
  };
  const offered = serves
    ? (source.snapshotDigests?.() ?? new Map<string, string>())
    : new Map<string, string>();
  const installedKeys = new Set(inputs.installed.map((p) => `${p.name}:${p.architecture}`));
  for (const platform of inputs.platforms) {
    const used = await snapshotFor(
      platform,
      offered.get(platform),
      marks.get(platform),
      serves,
      inputs,
      view,
    );
    if (used === undefined) continue;
    keep(view, platform, used, installedKeys, inputs.scheme);
    judgeAge(view, platform, used, inputs);
    if (source === undefined) view.notes.push(`offline: ${ageNote(platform, used, inputs.now)}`);
    await cache
      ?.recordCatalogMark(platform, { digest: used.digest, generatedAt: used.content.generatedAt })
      .catch(() => undefined);
  }
  return view;
}

/** The snapshot believed for one platform: the one offered when it holds, else the remembered one. */
async function snapshotFor(
  platform: string,
  digest: string | undefined,
  mark: CatalogMark | undefined,
  serves: boolean,
  inputs: CatalogInputs,
  view: CatalogView,
): Promise<VerifiedCatalog | undefined> {
  if (digest !== undefined && inputs.unavailable === undefined) {
    const offered = await offeredSnapshot(platform, digest, mark, inputs, view);
    if (offered !== undefined) return offered;
  } else if (serves && inputs.unavailable === undefined) {
    view.findings.push(
      staleFinding(platform, 'the server named no signed catalog snapshot for it (asked about its packages)'),
    );
    view.notes.push(
      `no catalog snapshot named for ${platform}: newest versions from the last one verified, if any`,
    );
  }
  return mark === undefined ? undefined : remembered(platform, mark, inputs, view);
}

/** The snapshot the server named, verified and checked against the remembered one. */
async function offeredSnapshot(
  platform: string,
  digest: string,
  mark: CatalogMark | undefined,
  inputs: CatalogInputs,
  view: CatalogView,
): Promise<VerifiedCatalog | undefined> {
  let v: VerifiedCatalog | undefined;
  try {
    v = await fetchVerified(digest, inputs);
    if (v === undefined) {
      view.notes.push(`catalog snapshot ${digest} of ${platform} named but not served`);
      return undefined;
    }
    if (v.content.platform !== platform)
      throw new SysattestError('CATALOG_MISMATCH', `it is the catalog of ${v.content.platform}`);
    if (mark !== undefined && Date.parse(v.content.generatedAt) < Date.parse(mark.generatedAt)) {
      throw new SysattestError(
        'CATALOG_ROLLBACK',
        `it was made ${v.content.generatedAt}, before the snapshot of ${mark.generatedAt} already verified`,
      );
    }
  } catch (e) {
    if (isUnavailable(e)) {
      view.notes.push(`catalog snapshots not fetched: ${e.message}`);
      return undefined;
    }
    if (!isSysattestError(e)) throw e;
    view.results.push({ platform, digest, status: 'refused', reason: `${e.code}: ${e.message}` });
    return undefined;
  }
  view.results.push(verifiedResult(platform, v));
  return v;
}

async function fetchVerified(digest: string, inputs: CatalogInputs): Promise<VerifiedCatalog | undefined> {
  const cached = await inputs.cache?.getCatalog(digest, inputs.keyring).catch(() => undefined);
  if (cached !== undefined) return cached;
  const doc = await inputs.source?.catalog?.(digest);
  return doc === undefined ? undefined : verifyOffered(doc, inputs);
}

async function verifyOffered(doc: OfferedCatalog, inputs: CatalogInputs): Promise<VerifiedCatalog> {
  const v = await verifyCatalog(doc.bytes, doc.signature, inputs.keyring, {
    adoptBytes: true,
    ...(inputs.now ? { now: inputs.now } : {}),
  });
  if (v.digest !== doc.digest)
    throw new SysattestError('CATALOG_MISMATCH', `it is snapshot ${v.digest}, not ${doc.digest}`);
  await inputs.cache?.putCatalog(v, inputs.keyring).catch(() => undefined);
  return v;
}

/** The snapshot remembered from an earlier run, when the cache still holds it sealed. */
async function remembered(
  platform: string,
  mark: CatalogMark,
  inputs: CatalogInputs,
  view: CatalogView,
): Promise<VerifiedCatalog | undefined> {
  const v = await inputs.cache?.getCatalog(mark.digest, inputs.keyring).catch(() => undefined);
  if (v === undefined || v.content.platform !== platform) {
    view.notes.push(`the catalog snapshot of ${platform} remembered from an earlier run is no longer cached`);
    return undefined;
  }
  view.results.push({ ...verifiedResult(platform, v), remembered: true });
  view.notes.push(
    `${platform}: newest versions from the snapshot of ${v.content.generatedAt}, verified on an earlier run`,
  );
  return v;
}

function verifiedResult(platform: string, v: VerifiedCatalog): CatalogResult {
  return {
    platform,
    digest: v.digest,
    generatedAt: v.content.generatedAt,
    status: 'verified',
    signer: v.signerFingerprint,
  };
}

/** Keeps what the installed packages need of a snapshot (not its tens of thousands of objects). */
function keep(
  view: CatalogView,
  platform: string,
  v: VerifiedCatalog,
  installedKeys: ReadonlySet<string>,
  scheme: VersionScheme,
): void {
  const newest = new Map<string, string>();
  for (const [key, p] of newestVersions(v.content, scheme))
    if (installedKeys.has(key)) newest.set(key, p.version);
  const listed = new Set<string>();
  for (const p of v.content.packages)
    if (installedKeys.has(`${p.name}:${p.architecture}`))
      listed.add(listedKey(p.name, p.version, p.architecture));
  view.newest.set(platform, newest);
  view.listed.set(platform, listed);
  view.generatedAt.set(platform, v.content.generatedAt);
}

function judgeAge(view: CatalogView, platform: string, v: VerifiedCatalog, inputs: CatalogInputs): void {
  const now = (inputs.now ?? new Date()).getTime();
  const age = now - Date.parse(v.content.generatedAt);
  if (age > inputs.maxAgeDays * DAY_MS)
    view.findings.push(
      staleFinding(platform, `${ageNote(platform, v, inputs.now)}, older than ${inputs.maxAgeDays} days`),
    );
}

const DAY_MS = 24 * 60 * 60 * 1000;

function ageNote(platform: string, v: VerifiedCatalog, now: Date | undefined): string {
  const days = ((now ?? new Date()).getTime() - Date.parse(v.content.generatedAt)) / DAY_MS;
  return `the catalog snapshot of ${platform} is from ${v.content.generatedAt} (${days.toFixed(1)} days old)`;
}

function staleFinding(platform: string, why: string): Finding {
  return {
    class: 'stale-catalog',
    package: '',
    arch: '',
    detail: `${platform}: ${why}; newer versions may exist that this run cannot know of`,
    failure: true,
  };
}

/**
 * `outdated` findings: an installed version older than the newest in the snapshot believed for
 * its platform. Sets each package's `newestVersion` through `record`.
 */
export function outdatedFindings(
  installed: readonly InstalledPackage[],
  view: CatalogView,
  inputs: Pick<CatalogInputs, 'platformOf' | 'scheme'>,
  record: (pkg: InstalledPackage, newest: string) => void,
): Finding[] {
  const out: Finding[] = [];
  for (const pkg of installed) {
    const platform = inputs.platformOf(pkg);
    if (platform === undefined) continue;
    const newest = view.newest.get(platform)?.get(`${pkg.name}:${pkg.architecture}`);
    if (newest === undefined) continue;
    record(pkg, newest);
    let older: boolean;
    try {
      older = inputs.scheme.compare(pkg.version, newest) < 0;
    } catch {
      continue;
    }
    if (!older) continue;
    out.push({
      class: 'outdated',
      package: pkg.name,
      arch: pkg.architecture,
      expected: newest,
      actual: pkg.version,
      detail:
        `${pkg.name} ${pkg.version} is older than ${newest}, the newest in the signed catalog ` +
        `of ${view.generatedAt.get(platform) ?? '?'}`,
      failure: false,
    });
  }
  return out;
}

/**
 * `server-conflict` findings: the server said a package version is not in its catalog (or its
 * platform unknown) while a snapshot the client verified lists that exact name, version and
 * architecture. A lie of that kind would skip the package's check, so it is a trust failure.
 */
export function contradictedStatuses(
  said: ReadonlyMap<InstalledPackage, 'not-in-catalog' | 'unknown-platform'>,
  view: CatalogView,
  platformOf: (pkg: InstalledPackage) => string | undefined,
): Finding[] {
  const out: Finding[] = [];
  for (const [pkg, status] of said) {
    const platform = platformOf(pkg);
    if (platform === undefined) continue;
    if (!view.listed.get(platform)?.has(listedKey(pkg.name, pkg.version, pkg.architecture))) continue;
    out.push({
      class: 'server-conflict',
      package: pkg.name,
      arch: pkg.architecture,
      expected: 'listed',
      actual: status,
      detail:
        `${pkg.name} ${pkg.version}: the server answered ${status}, but the signed catalog of ` +
        `${platform} (${view.generatedAt.get(platform) ?? '?'}) lists this version`,
      failure: true,
    });
  }
  return out;
}
