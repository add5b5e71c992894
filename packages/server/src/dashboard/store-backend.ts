import { HOST_VERDICTS as PROTOCOL_VERDICTS, PlatformError, SysattestError } from '@sysattest/core';
import {
  DashboardError,
  HOST_VERDICTS,
  type DashboardBackend,
  type FleetRow,
  type HostBehind,
  type HostDetail,
  type HostsRequest,
  type HostsView,
  type PackageVersionRef,
  type HealthInfo,
  type HttpStats,
  type JobRow,
  type JobView,
  type KeyRow,
  type ManifestDocumentFile,
  type ManifestFile,
  type ManifestSummary,
  type Page,
  type PackageHit,
  type PageRequest,
  type PlatformPackage,
  type Principal,
  type Role,
  type TokenRow,
  type TrackedRow,
  type UpgradesReport,
  type UpgradeWindow,
} from '@sysattest/dashboard';
import { isStoreError, type GenerationJob, type Store } from '../store/index.js';
import { hostReportView } from './host-report.js';
import { EntryCache, filesPage, manifestFiles, sliceOf } from './manifest-files.js';
import { UpgradesReports } from './upgrades.js';

/** The part of the server's metrics the Health page reads (http/metrics.ts ServerMetrics). */
export interface MetricsSource {
  snapshot(windowSeconds?: number): {
    uptimeSeconds: number;
    windowSeconds: number;
    requests: number;
    requestsPerSecond: number;
    errors: number;
    serverErrors: number;
    latencyMs: { p50?: number; p95?: number; p99?: number };
  };
}

export interface StoreBackendOptions {
  metrics?: MetricsSource;
  /** Window of the Health page's request figures (default 300 s). */
  metricsWindowSeconds?: number;
}

/** Store refusals become messages on the page; anything else stays an error. */
function refusal(e: unknown): unknown {
  if (isStoreError(e)) {
    switch (e.code) {
      case 'INVALID':
      case 'UNSUPPORTED':
        return new DashboardError(400, e.message);
      case 'NOT_FOUND':
        return new DashboardError(404, e.message);
      case 'CONFLICT':
      case 'LEASE_LOST':
        return new DashboardError(409, e.message);
      default:
        return e;
    }
  }
  if (e instanceof PlatformError || (e instanceof SysattestError && !isStoreError(e))) {
    return new DashboardError(400, e.message);
  }
  return e;
}

async function refusing<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (e) {
    throw refusal(e);
  }
}

/**
 * The dashboard declares the verdicts itself (it never imports core); this fails to compile the
 * day the two lists differ.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const VERDICTS_AGREE: Same<typeof HOST_VERDICTS, typeof PROTOCOL_VERDICTS> = true;
void VERDICTS_AGREE;

/** A job as the pages show it (without the id of the manifest that completed it). */
function jobRow(j: GenerationJob): JobRow {
  const { manifestId: _, ...row } = j;
  return row;
}

/**
 * The dashboard's data: the store's read model for the views, the store's own methods for every
 * change, the server's metrics for the request figures. Only shapes and refusals are decided here.
 */
export class StoreDashboardBackend implements DashboardBackend {
  readonly #store: Store;
  readonly #metrics: MetricsSource | undefined;
  readonly #metricsWindow: number;
  readonly #entries = new EntryCache();
  readonly #upgrades: UpgradesReports;

  constructor(store: Store, options: StoreBackendOptions = {}) {
    this.#store = store;
    this.#metrics = options.metrics;
    this.#metricsWindow = options.metricsWindowSeconds ?? 300;
    this.#upgrades = new UpgradesReports(store);
  }

  // --- sessions ---------------------------------------------------------------------------------

  /** A reporter token (a host's, for its reports) cannot log in. */
  async authenticate(secret: string): Promise<Principal | undefined> {
    const t = await this.#store.authenticate(secret);
    return t === undefined || t.role === 'reporter'
      ? undefined
      : { tokenId: t.id, name: t.name, role: t.role };
  }

  /** The binding is the token's stored hash: in the database, so never a key by itself (session.ts). */
  async sessionToken(tokenId: number): Promise<{ principal: Principal; binding: Uint8Array } | undefined> {
    const t = await this.#store.sessionToken(tokenId);
    return t === undefined || t.role === 'reporter'
      ? undefined
      : { principal: { tokenId: t.id, name: t.name, role: t.role }, binding: t.binding };
  }

  // --- views ------------------------------------------------------------------------------------

  platforms(): Promise<string[]> {
    return this.#store.platformsWithCatalog();
  }

  /** The platforms' figures, each with the number of hosts whose latest report names it. */
  async fleet(): Promise<FleetRow[]> {
    const [rows, hosts] = await Promise.all([this.#store.fleet(), this.#store.hostsPerPlatform()]);
    return rows.map((r) => ({ ...r, hosts: hosts.get(r.platform) ?? 0 }));
  }

  searchPackages(query: string, p: PageRequest): Promise<Page<PackageHit>> {
    return this.#store.searchPackages(query, p);
  }

  packageDetail(name: string): Promise<PlatformPackage[]> {
    return this.#store.packageVersions(name);
  }

  manifest(digest: string): Promise<ManifestSummary | undefined> {
    return this.#store.manifestSummary(digest);
  }

  async manifestFiles(
    digest: string,
    filter: string,
    p: PageRequest,
  ): Promise<Page<ManifestFile> | undefined> {
    let files = this.#entries.get(digest);
    if (files === undefined) {
      const d = await this.#store.getManifest({ digest });
      if (d === undefined) return undefined;
      files = manifestFiles(d.bytes);
      this.#entries.set(digest, files);
    }
    return filesPage(files, filter, p);
  }

  async manifestDocument(digest: string): Promise<ManifestDocumentFile | undefined> {
    const d = await this.#store.getManifest({ digest });
    if (d === undefined) return undefined;
    return { bytes: d.bytes, signature: d.signature, baseName: `${d.name}_${d.version}_${d.arch}` };
  }

  /** The window's upgrades; each event of the page with the hosts still behind it. */
  async upgrades(
    window: UpgradeWindow,
    platform: string | undefined,
    p: PageRequest,
  ): Promise<UpgradesReport> {
    const { events, ...rest } = await this.#upgrades.report(window, platform);
    const page = sliceOf(events, p);
    const behind = await this.#store.hostsBehindCounts(page.items);
    return {
      ...rest,
      events: { ...page, items: page.items.map((e, i) => ({ ...e, hostsBehind: behind[i] ?? 0 })) },
    };
  }

  // --- hosts ------------------------------------------------------------------------------------

  async hosts(request: HostsRequest): Promise<HostsView> {
    const { limit, ...filter } = request;
    const [counts, platforms, page] = await Promise.all([
      this.#store.hostVerdictCounts(request.platform),
      this.#store.hostsPerPlatform(),
      this.#store.hostsPage({ ...filter, limit }),
    ]);
    return {
      counts,
      platforms: [...platforms.keys()],
      staleAfterHours: this.#store.hostPolicy().staleAfterSeconds / 3600,
      hosts: page.hosts,
      ...(page.next === undefined ? {} : { next: page.next }),
    };
  }

  /** The host, its history, and its latest report as the page shows it (capped, host-report.ts). */
  async host(name: string): Promise<HostDetail | undefined> {
    const detail = await this.#store.hostDetail(name);
    if (detail === undefined) return undefined;
    const latest = detail.history[0];
    const report = latest === undefined ? undefined : await this.#store.hostReport(name, latest.reportId);
    return {
      ...detail,
      ...(latest === undefined || report === undefined ? {} : { latest: hostReportView(latest, report) }),
    };
  }

  async hostReport(name: string, reportId: string): Promise<Uint8Array | undefined> {
    const report = await this.#store.hostReport(name, reportId);
    return report === undefined ? undefined : Buffer.from(`${JSON.stringify(report, null, 2)}\n`);
  }

  hostsBehind(ref: PackageVersionRef, p: PageRequest): Promise<Page<HostBehind>> {
    return this.#store.hostsBehind(ref, p);
  }

  #http(): HttpStats | undefined {
    if (this.#metrics === undefined) return undefined;
    const s = this.#metrics.snapshot(this.#metricsWindow);
    const share = (x: number): number => (s.requests === 0 ? 0 : x / s.requests);
    return {
      uptimeSeconds: s.uptimeSeconds,
      windowSeconds: s.windowSeconds,
      requests: s.requests,
      requestsPerSecond: s.requestsPerSecond,
      errorRate: share(s.serverErrors),
      clientErrorRate: share(s.errors - s.serverErrors),
      latencyMs: { p50: s.latencyMs.p50 ?? 0, p95: s.latencyMs.p95 ?? 0, p99: s.latencyMs.p99 ?? 0 },
    };
  }

  async health(): Promise<HealthInfo> {
    const bytes = await this.#store.databaseBytes();
    const schema = await this.#store.schemaVersion();
    const workers = await this.#store.workers();
    const http = this.#http();
    return {
      ...(http === undefined ? {} : { http }),
      database: {
        dialect: this.#store.dialect,
        bytes,
        schemaApplied: schema.applied,
        schemaKnown: schema.known,
      },
      queue: await this.#store.queueCounts(),
      workers,
    };
  }

  queueCounts(): Promise<HealthInfo['queue']> {
    return this.#store.queueCounts();
  }

  async jobs(view: JobView, p: PageRequest): Promise<Page<JobRow>> {
    const page = await this.#store.jobsPage(view, p);
    return { ...page, items: page.items.map(jobRow) };
  }

  async job(id: number): Promise<JobRow | undefined> {
    const j = await this.#store.getJob(id);
    return j === undefined ? undefined : jobRow(j);
  }

  // --- admin ------------------------------------------------------------------------------------

  trackedPackages(p: PageRequest): Promise<Page<TrackedRow>> {
    return this.#store.trackedPackagesPage(p);
  }

  tokens(): Promise<TokenRow[]> {
    return this.#store.listTokens();
  }

  async trustedKeys(): Promise<KeyRow[]> {
    return (await this.#store.listTrustedKeys({ includeRemoved: true })).map((k) => ({
      fingerprint: k.fingerprint,
      addedAt: k.addedAt,
      ...(k.removedAt === undefined ? {} : { removedAt: k.removedAt }),
    }));
  }

  requeueJob(id: number): Promise<JobRow> {
    return refusing(async () => jobRow(await this.#store.requeue(id)));
  }

  async trackPackage(platform: string, name: string): Promise<{ jobsQueued: number }> {
    if (!(await this.platforms()).includes(platform)) {
      throw new DashboardError(400, `no catalog has been received for platform ${platform}`);
    }
    return refusing(() => this.#store.trackPackages(platform, [name], 'config'));
  }

  untrackPackage(platform: string, name: string): Promise<number> {
    return refusing(() => this.#store.untrackPackages(platform, [name], 'config'));
  }

  createToken(role: Role, name: string, host?: string): Promise<{ id: number; secret: string }> {
    return refusing(() => this.#store.createToken(role, name, host));
  }

  revokeToken(id: number): Promise<TokenRow> {
    return refusing(() => this.#store.revokeToken(id));
  }

  trustKey(armored: string): Promise<KeyRow> {
    return refusing(async () => {
      const k = await this.#store.addTrustedKey(armored);
      return { fingerprint: k.fingerprint, addedAt: k.addedAt };
    });
  }

  distrustKey(fingerprint: string): Promise<void> {
    return refusing(() => this.#store.removeTrustedKey(fingerprint.toUpperCase()));
  }

  forgetHost(name: string): Promise<{ reports: number; tokensRevoked: number }> {
    return refusing(() => this.#store.forgetHost(name));
  }
}
