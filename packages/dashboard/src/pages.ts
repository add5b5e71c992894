import type {
  FleetRow,
  HealthInfo,
  JobRow,
  JobView,
  ManifestFile,
  ManifestStatus,
  ManifestSummary,
  Page,
  PackageHit,
  PlatformPackage,
  UpgradeEvent,
  UpgradesReport,
  UpgradeWindow,
  VersionRow,
} from './backend.js';
import { JOB_VIEWS, UPGRADE_WINDOWS } from './backend.js';
import { barChart } from './chart.js';
import { ago, formatBytes, formatCount, formatDuration, formatPercent, formatTime } from './format.js';
import { html, url, type Html } from './html.js';
import { badge, form, isAdmin, layout, pager, table, td, time, type View } from './layout.js';

const enc = encodeURIComponent;

function jobsCell(j: FleetRow['jobs'], backlog: FleetRow['backlog']): Html {
  const failed = j.dead;
  return html`<span class="nowrap">${formatCount(j.pending)} pending</span> ·
    <span class="nowrap">${formatCount(j.running)} running</span> ·
    ${
      failed > 0 ? badge('bad', `${formatCount(failed)} failed`) : html`<span class="nowrap">0 failed</span>`
    }${j.retrying > 0 ? html` · ${badge('warn', `${formatCount(j.retrying)} retrying`)}` : ''}${
      backlog === undefined ? '' : backlogLine(backlog)
    }`;
}

/** The whole-catalog backlog's progress: made of all queued, what is left, what failed for good. */
function backlogLine(b: NonNullable<FleetRow['backlog']>): Html {
  const total = b.left + b.done + b.dead;
  return html`<br /><span class="nowrap backlog"
      >backlog: ${formatCount(b.done)} of ${formatCount(total)} made (${formatPercent(b.done, total)}),
      ${formatCount(b.left)}
      left${b.dead > 0 ? html`, ${badge('bad', `${formatCount(b.dead)} failed`)}` : ''}</span
    >`;
}

/** The platform's hosts (issue 19): a link to the Hosts page filtered on it. */
function hostsLink(v: View, r: FleetRow): Html | string {
  if (r.hosts === undefined) return '';
  return html`<br /><a class="nowrap" href="${url(`${v.base}/hosts`, { platform: r.platform })}"
      >${formatCount(r.hosts)} ${r.hosts === 1 ? 'host' : 'hosts'}</a
    >`;
}

export function fleetPage(v: View, rows: readonly FleetRow[], staleAfterHours: number): Html {
  const body =
    rows.length === 0
      ? html`<p>No platform yet: the fleet appears here once a generator uploads a signed catalog.</p>`
      : table(
          [
            'Platform',
            'First catalog',
            'Last refreshed',
            'Catalog freshness',
            ['Packages', 'num'],
            ['Versions listed', 'num'],
            ['Tracked', 'num'],
            ['Manifests', 'num'],
            'Coverage',
            'Jobs',
          ],
          rows.map((r) => {
            const age =
              r.latestCatalogAt === undefined ? Infinity : v.now.getTime() - Date.parse(r.latestCatalogAt);
            const stale = age > staleAfterHours * 3600_000;
            const freshness =
              r.latestCatalogAt === undefined
                ? badge('bad', 'no catalog')
                : html`${formatDuration(age)} ${stale ? badge('bad', 'stale') : badge('ok', 'fresh')}`;
            return html`<tr class="${stale ? 'stale' : ''}">
              ${td('Platform', html`<strong>${r.platform}</strong>${hostsLink(v, r)}`)}${td('First catalog', time(r.firstCatalogAt, formatTime(r.firstCatalogAt)))}${td(
                'Last refreshed',
                time(r.latestCatalogAt, formatTime(r.latestCatalogAt)),
              )}${td('Catalog freshness', freshness, 'fresh')}${td('Packages', formatCount(r.packages), 'num')}${td(
                'Versions listed',
                formatCount(r.versions),
                'num',
              )}${td('Tracked', formatCount(r.trackedPackages), 'num')}${td('Manifests', formatCount(r.manifests), 'num')}${td(
                'Coverage',
                r.trackedPackages === 0
                  ? html`<span class="muted">nothing tracked</span>`
                  : html`${formatPercent(r.trackedCovered, r.trackedPackages)}
                      <span class="muted"
                        >(${formatCount(r.trackedCovered)} of ${formatCount(r.trackedPackages)} tracked newest
                        versions)</span
                      >`,
              )}${td('Jobs', jobsCell(r.jobs, r.backlog))}
            </tr>`;
          }),
          'One row per platform image',
        );
  return layout(
    v,
    'fleet',
    'Fleet',
    html`<p class="note">
        A catalog is stale when its last signed snapshot is older than ${staleAfterHours} hours. Packages:
        names (× architecture) the platform's catalogs have listed; versions listed: what the latest snapshot
        offers. Coverage: tracked packages whose newest version has a signed manifest.
      </p>
      ${body}`,
  );
}

export function searchForm(v: View, query: string): Html {
  return html`<form class="row" method="get" action="${v.base}/packages" role="search">
    <label for="q"
      >Package name (or part of it)<input
        type="search"
        id="q"
        name="q"
        value="${query}"
        maxlength="200"
        autocomplete="off"
        spellcheck="false" /></label
    ><button type="submit">Search</button>
  </form>`;
}

export function packagesPage(v: View, query: string, results: Page<PackageHit> | undefined): Html {
  let body: Html | string = html`<p class="muted">
    Type a name and press Enter. Press <kbd>/</kbd> anywhere on this page to jump to the search box.
  </p>`;
  if (results !== undefined) {
    body =
      results.items.length === 0
        ? html`<p>No package name contains “${query}”.</p>`
        : html`${table(
            ['Package', 'Newest version per platform'],
            results.items.map(
              (p) =>
                html`<tr>
                  ${td('Package', html`<a href="${v.base}/packages/${enc(p.name)}">${p.name}</a>`)}${td(
                    'Newest',
                    html`<ul class="plain">
                      ${p.platforms.map(
                        (x) =>
                          html`<li>
                            ${x.platform} (${x.arch}):
                            ${x.newestVersion === undefined ? html`<span class="muted">withdrawn</span>` : html`<code>${x.newestVersion}</code>`}
                          </li>`,
                      )}
                    </ul>`,
                  )}
                </tr>`,
            ),
          )}${pager(v, '/packages', results, { q: query }, 'Packages')}`;
  }
  return layout(v, 'packages', 'Packages', html`${searchForm(v, query)}${body}`);
}

/** The repository's digest of the package archive: SHA-256, or apk's `C:` checksum for Alpine. */
function archiveChecksum(r: VersionRow): Html {
  if (r.archiveSha256 !== undefined)
    return html`<code class="hash" title="SHA-256">${r.archiveSha256}</code>`;
  if (r.apkChecksum !== undefined)
    return html`<span class="muted">apk</span>
      <code class="hash" title="APKINDEX C: checksum">${r.apkChecksum}</code>`;
  return html`<span class="muted">—</span>`;
}

function statusCell(v: View, s: ManifestStatus): Html {
  switch (s.state) {
    case 'stored':
      return html`${badge('ok', 'signed manifest')}
        <a href="${v.base}/manifests/${s.digest}">files (${formatCount(s.fileCount)})</a> ·
        <a href="${v.base}/manifests/${s.digest}/manifest.json" download>manifest</a> ·
        <a href="${v.base}/manifests/${s.digest}/manifest.json.asc" download>signature</a>`;
    case 'pending':
      return html`${badge('info', 'queued')}
        <a href="${v.base}/jobs/${s.jobId}">job ${s.jobId}</a
        >${s.attempts > 0 ? html` (${s.attempts} attempts so far)` : ''}`;
    case 'running':
      return html`${badge('info', 'generating')} <a href="${v.base}/jobs/${s.jobId}">job ${s.jobId}</a>`;
    case 'dead':
      return html`${badge('bad', 'failed')} <a href="${v.base}/jobs/${s.jobId}">job ${s.jobId}</a>`;
    case 'done':
      return html`${badge('muted', 'job done')} <a href="${v.base}/jobs/${s.jobId}">job ${s.jobId}</a>`;
    case 'none':
      return badge('muted', 'no manifest');
  }
}

export function packagePage(v: View, name: string, platforms: readonly PlatformPackage[]): Html {
  const admin = isAdmin(v);
  const sections = platforms.map((p) => {
    const trackForm = admin
      ? form(
          v,
          p.tracked ? '/tracked/remove' : '/tracked',
          html`<input type="hidden" name="platform" value="${p.platform}" /><input
              type="hidden"
              name="name"
              value="${name}"
            /><input type="hidden" name="back" value="/packages/${enc(name)}" /><button
              type="submit"
              class="secondary"
            >
              ${p.tracked ? 'Untrack' : 'Track'} on ${p.platform}
            </button>`,
        )
      : '';
    return html`<section aria-labelledby="p-${enc(p.platform + p.arch).replace(/%/g, '_')}">
      <h2 id="p-${enc(p.platform + p.arch).replace(/%/g, '_')}">
        ${p.platform} <span class="muted">(${p.arch})</span>
      </h2>
      <p>
        Newest version:
        ${p.newestVersion === undefined ? html`<span class="muted">none (withdrawn from the latest catalog)</span>` : html`<code>${p.newestVersion}</code>`}
        · ${p.tracked ? badge('info', 'tracked') : badge('muted', 'not tracked')} ${trackForm}
      </p>
      ${table(
        ['Version', 'First seen', 'Last seen', 'Withdrawn', 'Archive checksum', 'Manifest'],
        p.versions.map(
          (r) =>
            html`<tr>
              ${td('Version', html`<code>${r.version}</code>${r.newest ? html` ${badge('ok', 'newest')}` : ''}`)}${td(
                'First seen',
                time(r.firstSeen, r.firstSeen === undefined ? 'not in a catalog' : formatTime(r.firstSeen)),
              )}${td('Last seen', time(r.lastSeen, r.lastSeen === undefined ? '—' : formatTime(r.lastSeen)))}${td(
                'Withdrawn',
                r.withdrawnAt === undefined
                  ? html`<span class="muted">no</span>`
                  : html`${badge('warn', 'withdrawn')} ${time(r.withdrawnAt, formatTime(r.withdrawnAt))}`,
              )}${td('Archive checksum', archiveChecksum(r))}${td('Manifest', statusCell(v, r.manifest))}
            </tr>`,
        ),
      )}
    </section>`;
  });
  return layout(
    v,
    'packages',
    `Package ${name}`,
    html`${searchForm(v, '')}${platforms.length === 0 ? html`<p>No catalog or manifest mentions a package named “${name}”.</p>` : sections}`,
  );
}

function fileAttributes(f: ManifestFile): Html {
  const bits: (Html | string)[] = [];
  if (f.conffile) bits.push(badge('info', 'config'));
  if (f.capabilities !== undefined) bits.push(html`capabilities <code>${f.capabilities}</code>`);
  if (f.target !== undefined) bits.push(html`→ <code>${f.target}</code>`);
  if (f.linkTo !== undefined) bits.push(html`hard link to <code>${f.linkTo}</code>`);
  if (f.divertedTo !== undefined) bits.push(html`diverted to <code>${f.divertedTo}</code>`);
  if (f.device !== undefined) bits.push(html`device ${f.device}`);
  if (f.distroDigest !== undefined) bits.push(html`distro <code class="hash">${f.distroDigest}</code>`);
  if (f.distroDigestMismatch) bits.push(badge('bad', 'distro digest differs'));
  if (f.mode !== undefined && /^[4-7]/.test(f.mode)) bits.push(badge('warn', 'setuid/setgid/sticky'));
  return html`${bits.map((b, i) => html`${i > 0 ? ' · ' : ''}${b}`)}`;
}

export function manifestPage(v: View, m: ManifestSummary, filter: string, files: Page<ManifestFile>): Html {
  const facts = html`<dl class="facts">
    <dt>Package</dt>
    <dd><a href="${v.base}/packages/${enc(m.name)}">${m.name}</a> <code>${m.version}</code> (${m.arch})</dd>
    <dt>Platform</dt>
    <dd>${m.platform}</dd>
    <dt>Source</dt>
    <dd>${m.source.name} <code>${m.source.version}</code></dd>
    <dt>Generated</dt>
    <dd>${time(m.generatedAt, formatTime(m.generatedAt))}</dd>
    <dt>Signed by</dt>
    <dd><code class="hash">${m.signerFingerprint}</code> at ${time(m.signedAt, formatTime(m.signedAt))}</dd>
    <dt>Stored</dt>
    <dd>${time(m.ingestedAt, formatTime(m.ingestedAt))}</dd>
    <dt>Digest</dt>
    <dd><code class="hash">${m.digest}</code></dd>
    <dt>Paths</dt>
    <dd>${formatCount(m.entryCount)} (${formatCount(m.fileCount)} with content)</dd>
    <dt>Download</dt>
    <dd>
      <a href="${v.base}/manifests/${m.digest}/manifest.json" download>manifest (exact signed bytes)</a> ·
      <a href="${v.base}/manifests/${m.digest}/manifest.json.asc" download>detached signature</a>
      <span class="muted">— check with <code>gpg --verify manifest.json.asc manifest.json</code></span>
    </dd>
  </dl>`;
  const filterForm = html`<form class="row" method="get" action="${v.base}/manifests/${m.digest}">
    <label for="path"
      >Path contains<input
        type="search"
        id="path"
        name="path"
        value="${filter}"
        maxlength="4096"
        spellcheck="false" /></label
    ><button type="submit">Filter</button>
  </form>`;
  const rows = files.items.map(
    (f) =>
      html`<tr>
        ${td('Path', html`<code class="hash">${f.path}</code>`)}${td('Type', f.type)}${td('Mode', f.mode === undefined ? '—' : html`<code>${f.mode}</code>`)}${td(
          'Owner',
          f.uid === undefined ? '—' : `${f.user ?? f.uid}:${f.group ?? f.gid}`,
        )}${td('Size', f.size === undefined ? '—' : formatCount(f.size), 'num')}${td(
          'SHA-256',
          f.sha256 === undefined ? '—' : html`<code class="hash">${f.sha256}</code>`,
        )}${td('Attributes', fileAttributes(f))}
      </tr>`,
  );
  return layout(
    v,
    'packages',
    `Manifest ${m.name} ${m.version}`,
    html`${facts}
      <h2>Files</h2>
      ${filterForm}${
        files.items.length === 0
          ? html`<p>No path ${filter === '' ? '' : html`contains “${filter}”`}.</p>`
          : html`${table(['Path', 'Type', 'Mode', 'Owner', ['Size', 'num'], 'SHA-256', 'Attributes'], rows)}${pager(
              v,
              `/manifests/${m.digest}`,
              files,
              { path: filter },
              'Paths',
            )}`
      }`,
  );
}

/** How many hosts still run an older version than the upgrade's, linking to them. */
function hostsBehindCell(v: View, e: UpgradeEvent): Html | string {
  if (e.hostsBehind === undefined) return html`<span class="muted">—</span>`;
  if (e.hostsBehind === 0) return '0';
  return html`<a
    href="${url(`${v.base}/upgrades/hosts`, { platform: e.platform, name: e.name, arch: e.arch, version: e.to })}"
    aria-label="${formatCount(e.hostsBehind)} hosts run ${e.name} older than ${e.to}"
    >${formatCount(e.hostsBehind)}</a
  >`;
}

const WINDOW_TEXT: Record<UpgradeWindow, string> = { '24h': '24 hours', '7d': '7 days', '30d': '30 days' };

export function upgradesPage(
  v: View,
  window: UpgradeWindow,
  platform: string | undefined,
  platforms: readonly string[],
  report: UpgradesReport,
): Html {
  const tabs = html`<ul class="tabs" aria-label="Period">
    ${UPGRADE_WINDOWS.map(
      (w) =>
        html`<li>
          <a
            href="${url(`${v.base}/upgrades`, { window: w, platform })}"
            ${w === window ? html` aria-current="page"` : ''}
            >Last ${WINDOW_TEXT[w]}</a
          >
        </li>`,
    )}
  </ul>`;
  const filter = html`<form class="row" method="get" action="${v.base}/upgrades">
    <input type="hidden" name="window" value="${window}" /><label for="platform"
      >Platform<select id="platform" name="platform">
        <option value="">every platform</option>
        ${platforms.map((p) => html`<option value="${p}" ${p === platform ? ' selected' : ''}>${p}</option>`)}
      </select></label
    ><button type="submit">Show</button>
  </form>`;
  const totals = report.platforms.map((p) => ({
    platform: p,
    total: report.buckets.reduce((s, b) => s + (b.counts[p] ?? 0), 0),
  }));
  const charts = html`<div class="charts">
    ${report.platforms.map(
      (p) =>
        html`<figure>
          <figcaption>${p}</figcaption>
          ${barChart(
            `Upgrades on ${p} per ${formatDuration(report.bucketSeconds * 1000)}`,
            report.buckets.map((b) => ({ start: b.start, count: b.counts[p] ?? 0 })),
            report.bucketSeconds,
          )}
        </figure>`,
    )}
  </div>`;
  const summary = table(
    ['Platform', ['Upgrades', 'num']],
    totals.map(
      (t) =>
        html`<tr>
          ${td('Platform', t.platform)}${td('Upgrades', formatCount(t.total), 'num')}
        </tr>`,
    ),
    `Packages whose newest version changed, ${formatTime(report.since)} to ${formatTime(report.until)}`,
  );
  const events =
    report.events.items.length === 0
      ? html`<p>No package's newest version changed in the last ${WINDOW_TEXT[window]}.</p>`
      : html`${table(
          ['When', 'Platform', 'Package', 'From', 'To', ['Hosts behind', 'num']],
          report.events.items.map(
            (e) =>
              html`<tr>
                ${td('When', time(e.at, formatTime(e.at)))}${td('Platform', e.platform)}${td(
                  'Package',
                  html`<a href="${v.base}/packages/${enc(e.name)}">${e.name}</a>
                    <span class="muted">(${e.arch})</span>`,
                )}${td('From', e.from === undefined ? html`<span class="muted">new package</span>` : html`<code>${e.from}</code>`)}${td(
                  'To',
                  html`<code>${e.to}</code>`,
                )}${td('Hosts behind', hostsBehindCell(v, e), 'num')}
              </tr>`,
          ),
        )}${pager(v, '/upgrades', report.events, { window, platform }, 'Upgrades')}`;
  return layout(
    v,
    'upgrades',
    'Upgrades',
    html`${tabs}${filter}${report.platforms.length === 0 ? html`<p>No platform has a catalog yet.</p>` : html`${charts}${summary}`}
      <h2>Changes, newest first</h2>
      ${events}`,
  );
}

function card(figure: string | Html, what: string): Html {
  return html`<li><span class="figure">${figure}</span><span class="what">${what}</span></li>`;
}

export function healthPage(v: View, h: HealthInfo): Html {
  const http = h.http;
  const oldest =
    h.queue.oldestPendingCreatedAt === undefined
      ? 'none'
      : formatDuration(v.now.getTime() - Date.parse(h.queue.oldestPendingCreatedAt));
  const requestCards =
    http === undefined
      ? html`<p class="muted">This server records no request metrics.</p>`
      : html`<ul class="cards" aria-label="Requests">
          ${[
            card(formatDuration(http.uptimeSeconds * 1000), 'uptime of this server process'),
            card(
              `${http.requestsPerSecond.toFixed(2)}/s`,
              `requests (${formatCount(http.requests)} in the last ${formatDuration(http.windowSeconds * 1000)})`,
            ),
            card(`${http.latencyMs.p50.toFixed(1)} ms`, 'latency p50'),
            card(`${http.latencyMs.p95.toFixed(1)} ms`, 'latency p95'),
            card(`${http.latencyMs.p99.toFixed(1)} ms`, 'latency p99'),
            card(
              http.errorRate > 0.01
                ? html`${(http.errorRate * 100).toFixed(2)} % ${badge('bad', 'high')}`
                : `${(http.errorRate * 100).toFixed(2)} %`,
              'server errors (5xx)',
            ),
            ...(http.clientErrorRate === undefined
              ? []
              : [card(`${(http.clientErrorRate * 100).toFixed(2)} %`, 'refused requests (4xx)')]),
          ]}
        </ul>`;
  const schemaOk = h.database.schemaApplied === h.database.schemaKnown;
  const dbCards = html`<ul class="cards" aria-label="Database and queue">
    ${[
      card(formatBytes(h.database.bytes), `database size (${h.database.dialect})`),
      card(
        schemaOk
          ? html`${h.database.schemaApplied} ${badge('ok', 'current')}`
          : html`${h.database.schemaApplied}/${h.database.schemaKnown} ${badge('bad', 'behind')}`,
        'schema migrations applied',
      ),
      card(formatCount(h.queue.pending), `jobs queued (${formatCount(h.queue.due)} due now)`),
      card(oldest, 'age of the oldest queued job'),
      card(formatCount(h.queue.running), 'jobs running'),
      card(
        h.queue.dead > 0 ? html`${formatCount(h.queue.dead)} ${badge('bad', 'failed')}` : '0',
        'jobs failed for good',
      ),
    ]}
  </ul>`;
  const workers =
    h.workers.length === 0
      ? html`<p>No worker holds a job right now. Workers appear here while they hold a lease.</p>`
      : table(
          ['Worker', 'Last heartbeat', 'Lease', 'Doing'],
          h.workers.map((w) => {
            const expired = Date.parse(w.leaseExpiresAt) <= v.now.getTime();
            return html`<tr>
              ${td('Worker', html`<code>${w.id}</code>`)}${td('Last heartbeat', time(w.lastHeartbeatAt, ago(w.lastHeartbeatAt, v.now)))}${td(
                'Lease',
                expired
                  ? html`${badge('bad', 'expired')} ${time(w.leaseExpiresAt, ago(w.leaseExpiresAt, v.now))} —
                    presumed dead`
                  : html`${badge('ok', 'live')} until ${time(w.leaseExpiresAt, formatTime(w.leaseExpiresAt))}`,
              )}${td(
                'Doing',
                html`${w.jobs.slice(0, 5).map((j, i) => html`${i > 0 ? ', ' : ''}<a href="${v.base}/jobs/${j.id}">${j.name} ${j.version}</a> <span class="muted">(${j.platform})</span>`)}${w.jobs.length > 5 ? html` and ${w.jobs.length - 5} more` : ''}`,
              )}
            </tr>`;
          }),
        );
  return layout(
    v,
    'health',
    'Health',
    html`<h2>Requests</h2>
      ${requestCards}
      <h2>Database and queue</h2>
      ${dbCards}
      <h2>Workers</h2>
      ${workers}`,
  );
}

const VIEW_TEXT: Record<JobView, string> = { queue: 'Queue', history: 'History', failures: 'Failures' };

function stateBadge(j: JobRow): Html {
  switch (j.state) {
    case 'pending':
      return j.attempts > 0 ? badge('warn', 'retrying') : badge('info', 'queued');
    case 'running':
      return badge('info', 'running');
    case 'done':
      return badge('ok', 'done');
    case 'dead':
      return badge('bad', 'failed');
    default:
      return badge('muted', j.state);
  }
}

function requeueForm(v: View, j: JobRow, back: string): Html | string {
  if (j.state === 'done' || j.state === 'running') return '';
  return form(
    v,
    `/jobs/${j.id}/requeue`,
    html`<input type="hidden" name="back" value="${back}" /><button
        type="submit"
        class="secondary"
        aria-label="Requeue job ${j.id}"
      >
        Requeue
      </button>`,
  );
}

export function jobsPage(v: View, view: JobView, page: Page<JobRow>, counts: HealthInfo['queue']): Html {
  const tabs = html`<ul class="tabs" aria-label="Jobs">
    ${JOB_VIEWS.map(
      (w) =>
        html`<li>
          <a href="${url(`${v.base}/jobs`, { view: w })}" ${w === view ? html` aria-current="page"` : ''}
            >${VIEW_TEXT[w]}
            (${formatCount(w === 'queue' ? counts.pending + counts.running : w === 'history' ? counts.done : counts.dead + counts.retrying)})</a
          >
        </li>`,
    )}
  </ul>`;
  const admin = isAdmin(v);
  const back = url('/jobs', { view, offset: page.offset || undefined });
  const rows = page.items.map(
    (j) =>
      html`<tr>
        ${td('Job', html`<a href="${v.base}/jobs/${j.id}">${j.id}</a>`)}${td('State', stateBadge(j))}${td(
          'Package',
          html`<a href="${v.base}/packages/${enc(j.name)}">${j.name}</a> <code>${j.version}</code>
            <span class="muted">(${j.arch})</span>`,
        )}${td('Platform', j.platform)}${td('Why', j.reason)}${td('Attempts', String(j.attempts), 'num')}${td(
          view === 'history' ? 'Completed' : view === 'queue' ? 'Next run' : 'Updated',
          view === 'history'
            ? time(j.completedAt, formatTime(j.completedAt))
            : view === 'queue'
              ? j.state === 'running'
                ? html`held by <code>${j.leaseOwner ?? '?'}</code>`
                : time(j.nextRunAt, formatTime(j.nextRunAt))
              : time(j.updatedAt, formatTime(j.updatedAt)),
        )}${
          view === 'failures'
            ? td(
                'Last error',
                j.lastError === undefined
                  ? '—'
                  : html`<pre class="log">
${j.lastError.slice(0, 300)}${j.lastError.length > 300 ? '…' : ''}</pre>`,
              )
            : ''
        }${admin ? td('Action', requeueForm(v, j, back)) : ''}
      </tr>`,
  );
  const headers: (string | [string, 'num'])[] = [
    'Job',
    'State',
    'Package',
    'Platform',
    'Why',
    ['Attempts', 'num'],
    view === 'history' ? 'Completed' : view === 'queue' ? 'Next run' : 'Updated',
    ...(view === 'failures' ? ['Last error'] : []),
    ...(admin ? ['Action'] : []),
  ];
  const hint = admin ? '' : html`<p class="note">Log in with an admin token to requeue jobs.</p>`;
  return layout(
    v,
    'jobs',
    'Jobs',
    html`${tabs}${hint}${page.items.length === 0 ? html`<p>No job here.</p>` : html`${table(headers, rows)}${pager(v, '/jobs', page, { view }, 'Jobs')}`}`,
  );
}

export function jobPage(v: View, j: JobRow): Html {
  const facts = html`<dl class="facts">
    <dt>State</dt>
    <dd>${stateBadge(j)}</dd>
    <dt>Package</dt>
    <dd><a href="${v.base}/packages/${enc(j.name)}">${j.name}</a> <code>${j.version}</code> (${j.arch})</dd>
    <dt>Built on</dt>
    <dd>${j.platform}${j.targetPlatform === j.platform ? '' : html` (manifest on ${j.targetPlatform})`}</dd>
    <dt>Why</dt>
    <dd>${j.reason}</dd>
    <dt>Attempts</dt>
    <dd>${j.attempts}</dd>
    <dt>Created</dt>
    <dd>${time(j.createdAt, formatTime(j.createdAt))}</dd>
    <dt>Updated</dt>
    <dd>${time(j.updatedAt, formatTime(j.updatedAt))}</dd>
    ${
      j.state === 'pending'
        ? html`<dt>Next run</dt>
            <dd>${time(j.nextRunAt, formatTime(j.nextRunAt))}</dd>`
        : ''
    }
    ${
      j.leaseOwner === undefined
        ? ''
        : html`<dt>Worker</dt>
            <dd>
              <code>${j.leaseOwner}</code>, lease until
              ${time(j.leaseExpiresAt, formatTime(j.leaseExpiresAt))}
            </dd>`
    }
    ${
      j.completedAt === undefined
        ? ''
        : html`<dt>Completed</dt>
            <dd>${time(j.completedAt, formatTime(j.completedAt))}</dd>`
    }
  </dl>`;
  const log =
    j.lastError === undefined
      ? html`<p class="muted">No failure recorded.</p>`
      : html`<pre class="log">${j.lastError}</pre>`;
  const action = isAdmin(v) ? requeueForm(v, j, `/jobs/${j.id}`) : '';
  return layout(
    v,
    'jobs',
    `Job ${j.id}`,
    html`${facts}${action}
      <h2>Last error</h2>
      ${log}`,
  );
}

export function loginPage(v: View, csrf: string, next: string, error?: string): Html {
  const why = v.readsNeedLogin
    ? 'This server needs a token to read. Log in with any token (reader, generator or admin); changes need an admin token.'
    : 'Reading is public. Log in with an admin token to make changes (requeue jobs, track packages, manage tokens and keys).';
  return layout(
    { ...v, flash: error === undefined ? v.flash : { kind: 'error', text: error } },
    'login',
    'Log in',
    html`<p>${why}</p>
      <form method="post" action="${v.base}/login" class="row">
        <input type="hidden" name="csrf" value="${csrf}" /><input
          type="hidden"
          name="next"
          value="${next}"
        /><label for="token"
          >Token<input
            type="password"
            id="token"
            name="token"
            autocomplete="current-password"
            required
            maxlength="200"
            size="48" /></label
        ><button type="submit">Log in</button>
      </form>
      <p class="note">
        The token is checked once; the browser then keeps a session cookie (HttpOnly, SameSite=Strict) that
        ends when you log out, when it expires, or when the token is revoked.
      </p>`,
  );
}

export function errorPage(v: View, status: number, message: string): Html {
  const title =
    status === 404
      ? 'Not found'
      : status === 403
        ? 'Not allowed'
        : status >= 500
          ? 'Server error'
          : 'Refused';
  return layout(
    v,
    'fleet',
    title,
    html`<p class="flash error" role="alert">${message}</p>
      <p><a href="${v.base}/">Back to the fleet</a></p>`,
  );
}
