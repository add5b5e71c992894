import type {
  Capped,
  HostBehind,
  HostDetail,
  HostFilter,
  HostFinding,
  HostPackage,
  HostReportView,
  HostSummary,
  HostVerdict,
  HostsView,
  Page,
  PackageVersionRef,
  TokenRow,
} from './backend.js';
import { HOST_VERDICTS } from './backend.js';
import { ago, formatCount, formatDuration, formatTime } from './format.js';
import { html, url, type Html } from './html.js';
import { badge, form, isAdmin, layout, pager, table, td, time, type View } from './layout.js';
import { tokensTable } from './admin-page.js';

const enc = encodeURIComponent;

const VERDICT_TEXT: Record<HostVerdict, string> = {
  clean: 'clean',
  findings: 'findings',
  incomplete: 'incomplete',
  'trust-failure': 'trust failure',
  stale: 'stale',
};

const VERDICT_KIND: Record<HostVerdict, 'ok' | 'bad' | 'warn' | 'muted'> = {
  clean: 'ok',
  findings: 'bad',
  incomplete: 'warn',
  'trust-failure': 'bad',
  stale: 'muted',
};

export function verdictBadge(verdict: HostVerdict): Html {
  return badge(VERDICT_KIND[verdict], VERDICT_TEXT[verdict]);
}

export const hostPath = (name: string): string => `/hosts/${enc(name)}`;

/** "3 h ago", the exact time on hover. */
function lastReport(v: View, iso: string): Html {
  return html`<time datetime="${iso}" title="${formatTime(iso)} (${iso})">${ago(iso, v.now)}</time>`;
}

/** Non-zero classes, `modified 3 · unowned 1`; `unverified` and `outdated` have their columns. */
function classCounts(byClass: Record<string, number>): Html {
  const shown = Object.entries(byClass).filter(([c, n]) => n > 0 && c !== 'unverified' && c !== 'outdated');
  if (shown.length === 0) return html`<span class="muted">none</span>`;
  return html`${shown.map(
    ([c, n], i) => html`${i > 0 ? ' · ' : ''}<span class="nowrap">${c} ${formatCount(n)}</span>`,
  )}`;
}

function verdictTabs(v: View, o: HostsView, verdict: HostVerdict | undefined, platform?: string): Html {
  const all = HOST_VERDICTS.reduce((s, x) => s + o.counts[x], 0);
  const tab = (target: HostVerdict | undefined, label: Html | string, n: number): Html =>
    html`<li>
      <a
        href="${url(`${v.base}/hosts`, { verdict: target, platform })}"
        ${target === verdict ? html` aria-current="page"` : ''}
        >${label} <span class="count">${formatCount(n)}</span></a
      >
    </li>`;
  return html`<ul class="tabs verdicts" aria-label="Hosts by verdict">
    ${tab(undefined, 'all', all)}${HOST_VERDICTS.map((x) => tab(x, verdictBadge(x), o.counts[x]))}
  </ul>`;
}

function platformFilter(v: View, o: HostsView, verdict: HostVerdict | undefined, platform?: string): Html {
  return html`<form class="row" method="get" action="${v.base}/hosts">
    ${verdict === undefined ? '' : html`<input type="hidden" name="verdict" value="${verdict}" />`}<label
      for="platform"
      >Platform<select id="platform" name="platform">
        <option value="">every platform</option>
        ${o.platforms.map((p) => html`<option value="${p}" ${p === platform ? ' selected' : ''}>${p}</option>`)}
      </select></label
    ><button type="submit">Show</button>
  </form>`;
}

function hostRow(v: View, h: HostSummary, verdict: HostVerdict | undefined): Html {
  return html`<tr>
    ${td('Host', html`<a href="${v.base}${hostPath(h.name)}">${h.name}</a>`)}${td(
      'Platform',
      html`<a href="${url(`${v.base}/hosts`, { platform: h.platform, verdict })}">${h.platform}</a>`,
    )}${td('Last report', lastReport(v, h.lastReportAt))}${td('Verdict', verdictBadge(h.verdict))}${td(
      'Findings',
      classCounts(h.findingsByClass),
    )}${td('Packages', formatCount(h.packages), 'num')}${td(
      'Unverified',
      h.unverified > 0 ? badge('warn', formatCount(h.unverified)) : '0',
      'num',
    )}${td('Outdated', formatCount(h.outdated), 'num')}
  </tr>`;
}

/** First page / next page links (cursor paging, like `GET /v1/hosts`), and where the list stands. */
function hostsPager(v: View, o: HostsView, filter: HostFilter & { after?: string }): Html {
  const { verdict, platform, after } = filter;
  const total =
    verdict === undefined ? HOST_VERDICTS.reduce((s, x) => s + o.counts[x], 0) : o.counts[verdict];
  const first =
    after === undefined
      ? ''
      : html`<a rel="first" href="${url(`${v.base}/hosts`, { verdict, platform })}">⇤ First page</a>`;
  const next =
    o.next === undefined
      ? ''
      : html`<a rel="next" href="${url(`${v.base}/hosts`, { verdict, platform, after: o.next })}">Next →</a>`;
  const from = after === undefined ? 'from the first' : html`after <strong>${after}</strong>`;
  return html`<nav class="pager" aria-label="Pages of hosts">
    <span>${formatCount(o.hosts.length)} of ${formatCount(total)} hosts, ${from}</span>${first}${next}
  </nav>`;
}

export function hostsPage(v: View, o: HostsView, filter: HostFilter & { after?: string }): Html {
  const { verdict, platform } = filter;
  const what = [
    verdict === undefined ? '' : VERDICT_TEXT[verdict],
    platform === undefined ? '' : `on ${platform}`,
  ]
    .filter((s) => s !== '')
    .join(' ');
  const body =
    o.hosts.length === 0
      ? html`<p>
          ${
            what === ''
              ? html`No host has reported yet. A host reports with <code>sysattest verify --report</code> and
                  a reporter token made for it (Admin → Tokens).`
              : html`No host ${what}.`
          }
        </p>`
      : html`${table(
          [
            'Host',
            'Platform',
            'Last report',
            'Verdict',
            'Findings',
            ['Packages', 'num'],
            ['Unverified', 'num'],
            ['Outdated', 'num'],
          ],
          o.hosts.map((h) => hostRow(v, h, verdict)),
          what === '' ? 'Every host, by name' : `Hosts ${what}, by name`,
        )}${hostsPager(v, o, filter)}`;
  return layout(
    v,
    'hosts',
    'Hosts',
    html`${verdictTabs(v, o, verdict, platform)}${platformFilter(v, o, verdict, platform)}
      <p class="note">
        Each verdict is what the host's own last report says (a rooted host can claim to be clean); a host is
        stale when it has sent nothing for ${formatDuration(o.staleAfterHours * 3600_000)}.
      </p>
      ${body}`,
  );
}

function findingWhat(f: HostFinding): Html {
  const who = f.package === '' ? '' : f.arch === '' ? f.package : `${f.package}:${f.arch}`;
  return html`${f.path === undefined ? '' : html`<code class="hash">${f.path}</code>`}${
    f.location === undefined ? '' : html` <span class="muted">(looked at <code>${f.location}</code>)</span>`
  }${who === '' ? '' : html` <span class="muted">[${who}]</span>`}`;
}

function findingRow(f: HostFinding): Html {
  const change =
    f.expected === undefined && f.actual === undefined
      ? ''
      : html`${f.attribute === undefined ? '' : html`${f.attribute}: `}<code class="hash"
            >${f.expected ?? '—'}</code
          >
          → <code class="hash">${f.actual ?? '—'}</code>`;
  return html`<tr>
    ${td('What', findingWhat(f))}${td('Change', change)}${td(
      'Detail',
      html`${f.accepted === true ? html`${badge('info', 'accepted')} ` : ''}${f.detail}`,
    )}${td('Failure', f.failure ? badge('bad', 'failure') : html`<span class="muted">information</span>`)}
  </tr>`;
}

function moreLine(c: Capped<unknown>, noun: string, reportLink: Html): Html | string {
  return c.total > c.items.length
    ? html`<p class="note">
        Showing ${formatCount(c.items.length)} of ${formatCount(c.total)} ${noun}; the whole report has them
        all: ${reportLink}.
      </p>`
    : '';
}

function findingSections(r: HostReportView, reportLink: Html): Html {
  if (r.findings.length === 0)
    return html`<p>${badge('ok', 'no findings')} every checked file matched its signed manifest.</p>`;
  return html`${r.findings.map(
    (g) =>
      html`<section class="findings" aria-label="${g.class}">
        <h3>
          ${g.title} (${formatCount(g.total)})
          ${g.failures > 0 ? badge('bad', `${formatCount(g.failures)} failing`) : badge('muted', 'information')}
        </h3>
        ${table(['What', 'Change', 'Detail', 'Failure'], g.items.map(findingRow))}
        ${moreLine(g, `${g.class} findings`, reportLink)}
      </section>`,
  )}`;
}

function unverifiedRow(p: HostPackage): Html {
  return html`<tr>
    ${td('Package', html`${p.name} <span class="muted">(${p.arch})</span>`)}${td('Version', html`<code>${p.version}</code>`)}${td(
      'Status',
      p.status === 'unverified' ? badge('warn', 'unverified') : badge('bad', p.status),
    )}${td('Reason', html`${p.reason ?? '—'}${p.origin === undefined ? '' : html` (origin ${p.origin})`}`)}
  </tr>`;
}

function outdatedRow(v: View, p: HostPackage): Html {
  return html`<tr>
    ${td('Package', html`<a href="${v.base}/packages/${enc(p.name)}">${p.name}</a> <span class="muted">(${p.arch})</span>`)}${td(
      'Installed',
      html`<code>${p.version}</code>`,
    )}${td(
      'Newest',
      html`<code>${p.newestVersion ?? '?'}</code
        >${p.newestClaimed === true ? html` <span class="muted">(the server's unsigned claim)</span>` : ''}`,
    )}
  </tr>`;
}

function historyTable(v: View, name: string, d: HostDetail): Html {
  return table(
    ['Received', 'Verdict', ['Exit code', 'num'], ['Failures', 'num'], 'Report'],
    d.history.map(
      (h) =>
        html`<tr>
          ${td('Received', time(h.receivedAt, formatTime(h.receivedAt)))}${td('Verdict', verdictBadge(h.verdict))}${td(
            'Exit code',
            String(h.exitCode),
            'num',
          )}${td('Failures', formatCount(h.failures), 'num')}${td(
            'Report',
            html`<a href="${v.base}${hostPath(name)}/reports/${enc(h.reportId)}.json" download>JSON</a>`,
          )}
        </tr>`,
    ),
    'Newest first',
  );
}

function forgetForm(v: View, name: string): Html | string {
  if (!isAdmin(v)) return '';
  return form(
    v,
    `${hostPath(name)}/forget`,
    html`<button type="submit" class="danger" aria-label="Forget host ${name}">Forget this host</button>`,
    {
      confirm: `Forget ${name}? Its reports are deleted and its reporter tokens revoked.`,
    },
  );
}

/**
 * A host's page. `tokens`: its reporter tokens, given to an admin only (revocable here; forgetting
 * the host revokes them all).
 */
export function hostPage(v: View, d: HostDetail, tokens?: readonly TokenRow[]): Html {
  const h = d.host;
  const r = d.latest;
  const reportLink =
    r === undefined
      ? html`<span class="muted">not readable</span>`
      : html`<a href="${v.base}${hostPath(h.name)}/reports/${enc(r.reportId)}.json" download
          >the report as JSON</a
        >`;
  const facts = html`<dl class="facts">
    <dt>Verdict</dt>
    <dd>${verdictBadge(h.verdict)} <span class="muted">(exit code ${h.exitCode})</span></dd>
    <dt>Platform</dt>
    <dd><a href="${url(`${v.base}/hosts`, { platform: h.platform })}">${h.platform}</a></dd>
    <dt>Last report</dt>
    <dd>${lastReport(v, h.lastReportAt)} <span class="muted">(${formatTime(h.lastReportAt)})</span></dd>
    <dt>Packages</dt>
    <dd>
      ${formatCount(h.packages)}: ${formatCount(h.verified)} verified, ${formatCount(h.unverified)}
      unverified, ${formatCount(h.outdated)} outdated
    </dd>
    <dt>Failures</dt>
    <dd>${formatCount(h.failures)}</dd>
    ${
      r === undefined
        ? ''
        : html`<dt>Checked root</dt>
            <dd><code>${r.root}</code></dd>
            <dt>Report</dt>
            <dd>${reportLink}</dd>`
    }
  </dl>`;
  const claim = html`<p class="note claim" role="note">
    This is the host's own claim. The report was made on the host and sent with its reporter token: a host
    whose root account is compromised can send a clean report. It is evidence of what the host's client saw,
    not an attestation.
  </p>`;
  const latest =
    r === undefined
      ? html`<p class="flash error">The latest report could not be read back.</p>`
      : html`<h2>Findings</h2>
          ${findingSections(r, reportLink)}
          <h2>Unverified packages (${formatCount(r.unverified.total)})</h2>
          ${
            r.unverified.total === 0
              ? html`<p>Every package had a signed manifest.</p>`
              : html`${table(['Package', 'Version', 'Status', 'Reason'], r.unverified.items.map(unverifiedRow))}${moreLine(
                  r.unverified,
                  'unverified packages',
                  reportLink,
                )}`
          }
          <h2>Outdated packages (${formatCount(r.outdated.total)})</h2>
          ${
            r.outdated.total === 0
              ? html`<p>Every package is at the newest version the host's catalog knows.</p>`
              : html`${table(
                  ['Package', 'Installed', 'Newest'],
                  r.outdated.items.map((p) => outdatedRow(v, p)),
                )}${moreLine(r.outdated, 'outdated packages', reportLink)}`
          }
          ${
            r.notes.total === 0
              ? ''
              : html`<h2>Notes</h2>
                  <ul>
                    ${r.notes.items.map((n) => html`<li>${n}</li>`)}
                  </ul>`
          }`;
  return layout(
    v,
    'hosts',
    `Host ${h.name}`,
    html`${claim}${facts}${forgetForm(v, h.name)}${latest}
      <h2>History of verdicts</h2>
      ${historyTable(v, h.name, d)}${
        tokens === undefined
          ? ''
          : html`<h2>Reporter tokens</h2>
              ${
                tokens.length === 0
                  ? html`<p>No reporter token names this host (Admin → Tokens makes one).</p>`
                  : tokensTable(v, tokens, hostPath(h.name))
              }`
      }`,
  );
}

export function hostsBehindPage(v: View, ref: PackageVersionRef, page: Page<HostBehind>): Html {
  const body =
    page.items.length === 0
      ? html`<p>No host's latest report has ${ref.name} older than <code>${ref.version}</code>.</p>`
      : html`${table(
          ['Host', 'Installed', 'Verdict', 'Last report'],
          page.items.map(
            (h) =>
              html`<tr>
                ${td('Host', html`<a href="${v.base}${hostPath(h.host)}">${h.host}</a>`)}${td(
                  'Installed',
                  html`<code>${h.version}</code>`,
                )}${td('Verdict', verdictBadge(h.verdict))}${td('Last report', lastReport(v, h.lastReportAt))}
              </tr>`,
          ),
        )}${pager(v, '/upgrades/hosts', page, { ...ref }, 'Hosts')}`;
  return layout(
    v,
    'upgrades',
    `Hosts behind ${ref.name} ${ref.version}`,
    html`<p>
        Hosts on ${ref.platform} whose latest report has
        <a href="${v.base}/packages/${enc(ref.name)}">${ref.name}</a> (${ref.arch}) at a version older than
        <code>${ref.version}</code>.
      </p>
      ${body}`,
  );
}
