import type { ManifestStatus, PlatformPackage, VersionRow } from '@sysattest/dashboard';
import { manifestPlatformName } from '../catalogs.js';
import { reading } from '../context.js';
import { versionOrderFor, type ReadContext } from './read-context.js';

/** Everything the store holds about a package name, by platform and architecture. */
interface Rows {
  nameOf: Map<number, string>;
  idOf: Map<string, number>;
  packages: { id: number; platform_id: number; arch: string; newest_version: string | null }[];
  entries: {
    package_id: number;
    version: string;
    first_seen: string;
    last_seen: string;
    withdrawn_at: string | null;
    archive_sha256: string | null;
    apk_checksum: string | null;
  }[];
  manifests: {
    platform_id: number;
    version: string;
    arch: string;
    digest: string;
    generated_at: string;
    file_count: number;
  }[];
  jobs: {
    id: number;
    target_platform_id: number;
    version: string;
    arch: string;
    state: string;
    attempts: number;
    last_error: string | null;
  }[];
  trackedOn: Set<number>;
}

/**
 * Every version of a package the catalogs listed, per platform and architecture, newest first by
 * the distribution's ordering, each with its manifest or job; then the manifests of versions no
 * catalog of theirs lists (uploaded for a platform without a catalog).
 */
export async function packageVersions(ctx: ReadContext, name: string): Promise<PlatformPackage[]> {
  return reading(async () => {
    const rows = await packageRows(ctx, name);
    if (rows === undefined) return [];
    const statuses = new ManifestStatuses(rows);
    const out = rows.packages.map((p) => listedVersions(rows, statuses, p));
    out.push(...unlistedManifests(rows, statuses.used));
    return out.sort((a, b) => (`${a.platform} ${a.arch}` < `${b.platform} ${b.arch}` ? -1 : 1));
  });
}

async function packageRows(ctx: ReadContext, name: string): Promise<Rows | undefined> {
  const { db } = ctx;
  const platforms = await db.selectFrom('platforms').select(['id', 'name']).execute();
  if (platforms.length === 0) return undefined;
  const ids = platforms.map((p) => p.id);
  const packages = await db
    .selectFrom('catalog_packages')
    .select(['id', 'platform_id', 'arch', 'newest_version'])
    .where('platform_id', 'in', ids)
    .where('name', '=', name)
    .execute();
  const entries = await catalogEntries(
    ctx,
    packages.map((p) => p.id),
  );
  const manifests = await db
    .selectFrom('manifests')
    .select(['platform_id', 'version', 'arch', 'digest', 'generated_at', 'file_count'])
    .where('platform_id', 'in', ids)
    .where('name', '=', name)
    .execute();
  const jobs = await db
    .selectFrom('jobs')
    .select(['id', 'target_platform_id', 'version', 'arch', 'state', 'attempts', 'last_error'])
    .where('target_platform_id', 'in', ids)
    .where('name', '=', name)
    .execute();
  const tracked = await db
    .selectFrom('tracked_packages')
    .select('platform_id')
    .where('platform_id', 'in', ids)
    .where('name', '=', name)
    .execute();
  return {
    nameOf: new Map(platforms.map((p) => [p.id, p.name])),
    idOf: new Map(platforms.map((p) => [p.name, p.id])),
    packages,
    entries,
    manifests,
    jobs,
    trackedOn: new Set(tracked.map((t) => t.platform_id)),
  };
}

async function catalogEntries(ctx: ReadContext, packageIds: number[]): Promise<Rows['entries']> {
  if (packageIds.length === 0) return [];
  return ctx.db
    .selectFrom('catalog_entries')
    .select(['package_id', 'version', 'first_seen', 'last_seen', 'withdrawn_at'])
    .select(['archive_sha256', 'apk_checksum'])
    .where('package_id', 'in', packageIds)
    .execute();
}

const versionKey = (platformId: number, version: string, arch: string): string =>
  `${platformId}\u0000${version}\u0000${arch}`;

/** The manifest or else the latest job of each version; remembers which manifests were shown. */
class ManifestStatuses {
  readonly used = new Set<string>();
  readonly #idOf: Map<string, number>;
  readonly #manifestAt: Map<string, Rows['manifests'][number]>;
  readonly #jobAt = new Map<string, Rows['jobs'][number]>();

  constructor(rows: Rows) {
    this.#idOf = rows.idOf;
    this.#manifestAt = new Map(rows.manifests.map((m) => [versionKey(m.platform_id, m.version, m.arch), m]));
    for (const j of [...rows.jobs].sort((a, b) => a.id - b.id))
      this.#jobAt.set(versionKey(j.target_platform_id, j.version, j.arch), j);
  }

  of(manifestPlatform: string, version: string, arch: string): ManifestStatus {
    const platformId = this.#idOf.get(manifestPlatform);
    if (platformId === undefined) return { state: 'none' };
    const k = versionKey(platformId, version, arch);
    this.used.add(k);
    const m = this.#manifestAt.get(k);
    if (m !== undefined) return stored(m);
    const j = this.#jobAt.get(k);
    if (j === undefined) return { state: 'none' };
    return {
      state: j.state as 'pending' | 'running' | 'dead' | 'done',
      jobId: j.id,
      attempts: j.attempts,
      ...(j.last_error === null ? {} : { lastError: j.last_error }),
    };
  }
}

function stored(m: Rows['manifests'][number]): ManifestStatus {
  return { state: 'stored', digest: m.digest, generatedAt: m.generated_at, fileCount: m.file_count };
}

function listedVersions(
  rows: Rows,
  statuses: ManifestStatuses,
  p: Rows['packages'][number],
): PlatformPackage {
  const platform = rows.nameOf.get(p.platform_id) as string;
  const manifestPlatform = manifestPlatformName(platform, p.arch);
  const compare = versionOrderFor(platform);
  const versions: VersionRow[] = rows.entries
    .filter((e) => e.package_id === p.id)
    .sort((a, b) => compare(b.version, a.version))
    .map((e) => ({
      version: e.version,
      arch: p.arch,
      firstSeen: e.first_seen,
      lastSeen: e.last_seen,
      ...(e.withdrawn_at === null ? {} : { withdrawnAt: e.withdrawn_at }),
      ...(e.archive_sha256 === null ? {} : { archiveSha256: e.archive_sha256 }),
      ...(e.apk_checksum === null ? {} : { apkChecksum: e.apk_checksum }),
      newest: e.version === p.newest_version,
      manifestPlatform,
      manifest: statuses.of(manifestPlatform, e.version, p.arch),
    }));
  return {
    platform,
    arch: p.arch,
    ...(p.newest_version === null ? {} : { newestVersion: p.newest_version }),
    tracked: rows.trackedOn.has(p.platform_id),
    versions,
  };
}

/** Manifests whose version no catalog of their platform lists, grouped by platform and arch. */
function unlistedManifests(rows: Rows, used: ReadonlySet<string>): PlatformPackage[] {
  const groups = new Map<string, PlatformPackage>();
  for (const m of rows.manifests) {
    if (used.has(versionKey(m.platform_id, m.version, m.arch))) continue;
    const platform = rows.nameOf.get(m.platform_id) as string;
    let group = groups.get(`${platform} ${m.arch}`);
    if (group === undefined) {
      group = { platform, arch: m.arch, tracked: rows.trackedOn.has(m.platform_id), versions: [] };
      groups.set(`${platform} ${m.arch}`, group);
    }
    group.versions.push({
      version: m.version,
      arch: m.arch,
      newest: false,
      manifestPlatform: platform,
      manifest: stored(m),
    });
  }
  for (const g of groups.values()) {
    const compare = versionOrderFor(g.platform);
    g.versions.sort((a, b) => compare(b.version, a.version));
  }
  return [...groups.values()];
}
