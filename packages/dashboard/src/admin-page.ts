/**
 * The admin page, section by section: a new token's secret (shown once), tokens, trusted
 * generator keys, tracked packages and catalog syncs. Every form posts to an admin action
 * (routes/admin.ts) with the session's CSRF token (layout.ts `form`).
 */
import type { KeyRow, Page, TokenRow, TrackedRow } from './backend.js';
import { formatCount, formatTime } from './format.js';
import { html, type Html } from './html.js';
import { badge, form, layout, pager, table, td, time, type View } from './layout.js';

const enc = encodeURIComponent;

export interface AdminView {
  platforms: readonly string[];
  /** Every token but the reporters'. */
  tokens: readonly TokenRow[];
  /** Reporter tokens (one per host or more), a page of them: a fleet has thousands. */
  reporters: Page<TokenRow>;
  keys: readonly KeyRow[];
  tracked: Page<TrackedRow>;
  canSync: boolean;
  createdSecret?: { id: number; secret: string };
}

export function adminPage(v: View, o: AdminView): Html {
  return layout(
    v,
    'admin',
    'Admin',
    html`${createdSecret(o.createdSecret)} ${tokensSection(v, o.tokens, o.reporters)}
    ${keysSection(v, o.keys)} ${trackedSection(v, o.platforms, o.tracked)}
    ${o.canSync ? syncSection(v, o.platforms) : ''}`,
  );
}

function createdSecret(created: AdminView['createdSecret']): Html | '' {
  if (created === undefined) return '';
  return html`<div class="flash secret" role="status">
    <p>Token ${created.id} created. Its secret is shown this once and is not stored anywhere:</p>
    <p>
      <code id="new-secret">${created.secret}</code>
      <button type="button" class="secondary" data-copy="new-secret" hidden>Copy</button>
    </p>
  </div>`;
}

function tokensSection(v: View, tokens: readonly TokenRow[], reporters: Page<TokenRow>): Html {
  return html`<h2>Tokens</h2>
    <p class="note">
      A reporter token sends one host's reports (<code>sysattest verify --report</code>) and nothing else:
      name the host it is for. Whatever a report says, it is filed under the token's host.
    </p>
    ${createTokenForm(v)} ${tokensTable(v, tokens, '/admin')}
    <h3>Reporter tokens (${formatCount(reporters.total ?? reporters.items.length)})</h3>
    ${
      reporters.items.length === 0
        ? html`<p>No reporter token yet.</p>`
        : html`${tokensTable(v, reporters.items, '/admin')}${pager(
            v,
            '/admin',
            reporters,
            {},
            'Reporter tokens',
            'reporters',
          )}`
    }`;
}

function createTokenForm(v: View): Html {
  return form(
    v,
    '/tokens',
    html`<label for="token-name"
        >Name<input type="text" id="token-name" name="name" required maxlength="200" /></label
      ><label for="token-role"
        >Role<select id="token-role" name="role">
          <option value="reader">reader</option>
          <option value="generator">generator</option>
          <option value="admin">admin</option>
          <option value="reporter">reporter (one host)</option>
        </select></label
      ><label for="token-host"
        >Host (reporter only)<input
          type="text"
          id="token-host"
          name="host"
          maxlength="253"
          spellcheck="false"
          autocomplete="off" /></label
      ><button type="submit">Create token</button>`,
    { className: 'row', label: 'Create a token' },
  );
}

/** Tokens with their role (a reporter's host linked) and a revoke button; `back`: where to return. */
export function tokensTable(v: View, tokens: readonly TokenRow[], back: string): Html {
  return table(
    ['Id', 'Name', 'Role', 'Created', 'State', 'Action'],
    tokens.map(
      (t) =>
        html`<tr>
          ${td('Id', String(t.id))}${td('Name', t.name)}${td(
            'Role',
            t.host === undefined
              ? t.role
              : html`${t.role} for <a href="${v.base}/hosts/${enc(t.host)}">${t.host}</a>`,
          )}${td('Created', time(t.createdAt, formatTime(t.createdAt)))}${td(
            'State',
            t.revokedAt === undefined
              ? badge('ok', 'active')
              : html`${badge('muted', 'revoked')} ${time(t.revokedAt, formatTime(t.revokedAt))}`,
          )}${td('Action', t.revokedAt === undefined ? revokeForm(v, t, back) : '')}
        </tr>`,
    ),
  );
}

function revokeForm(v: View, t: TokenRow, back: string): Html {
  return form(
    v,
    `/tokens/${t.id}/revoke`,
    html`<input type="hidden" name="back" value="${back}" /><button
        type="submit"
        class="danger"
        aria-label="Revoke token ${t.id} (${t.name})"
      >
        Revoke
      </button>`,
    { confirm: `Revoke token ${t.id} (${t.name})? Anything using it stops working.` },
  );
}

function keysSection(v: View, keys: readonly KeyRow[]): Html {
  const trustForm = form(
    v,
    '/keys',
    html`<label for="key-armored" class="wide"
        >Armored OpenPGP public key<textarea
          id="key-armored"
          name="armored"
          required
          spellcheck="false"
          placeholder="-----BEGIN PGP PUBLIC KEY BLOCK-----"
        ></textarea></label
      ><button type="submit">Trust this key</button>`,
    { className: 'row', label: 'Trust a key' },
  );
  return html`<h2>Trusted generator keys</h2>
    ${trustForm} ${keysTable(v, keys)}`;
}

function keysTable(v: View, keys: readonly KeyRow[]): Html {
  if (keys.length === 0) return html`<p>No generator key is trusted: every upload is refused.</p>`;
  return table(
    ['Fingerprint', 'Added', 'State', 'Action'],
    keys.map(
      (k) =>
        html`<tr>
          ${td('Fingerprint', html`<code class="hash">${k.fingerprint}</code>`)}${td(
            'Added',
            time(k.addedAt, formatTime(k.addedAt)),
          )}${td(
            'State',
            k.removedAt === undefined
              ? badge('ok', 'trusted')
              : html`${badge('muted', 'distrusted')} ${time(k.removedAt, formatTime(k.removedAt))}`,
          )}${td('Action', k.removedAt === undefined ? distrustForm(v, k) : '')}
        </tr>`,
    ),
  );
}

function distrustForm(v: View, k: KeyRow): Html {
  return form(
    v,
    `/keys/${k.fingerprint}/remove`,
    html`<button type="submit" class="danger" aria-label="Distrust key ${k.fingerprint}">Distrust</button>`,
    { confirm: `Stop trusting ${k.fingerprint}? Uploads signed by it will be refused.` },
  );
}

function platformSelect(id: string, platforms: readonly string[]): Html {
  return html`<select id="${id}" name="platform" required>
    ${platforms.map((p) => html`<option value="${p}">${p}</option>`)}
  </select>`;
}

function trackedSection(v: View, platforms: readonly string[], tracked: Page<TrackedRow>): Html {
  const trackForm = form(
    v,
    '/tracked',
    html`<label for="track-platform">Platform ${platformSelect('track-platform', platforms)}</label
      ><label for="track-name"
        >Package<input
          type="text"
          id="track-name"
          name="name"
          required
          maxlength="200"
          spellcheck="false" /></label
      ><input type="hidden" name="back" value="/admin" /><button type="submit">Track</button>`,
    { className: 'row', label: 'Track a package' },
  );
  return html`<h2>Tracked packages</h2>
    <p class="note">
      The newest version of a tracked package always gets a manifest: tracking queues a job whenever a catalog
      shows a new version.
    </p>
    ${trackForm} ${trackedTable(v, tracked)}`;
}

function trackedTable(v: View, tracked: Page<TrackedRow>): Html {
  if (tracked.items.length === 0) return html`<p>No package is tracked.</p>`;
  const rows = tracked.items.map(
    (t) =>
      html`<tr>
        ${td('Platform', t.platform)}${td(
          'Package',
          html`<a href="${v.base}/packages/${enc(t.name)}">${t.name}</a>`,
        )}${td('Why', t.source)}${td('Since', time(t.since, formatTime(t.since)))}${td(
          'Action',
          t.source === 'config' ? untrackForm(v, t) : html`<span class="muted">asked by a client</span>`,
        )}
      </tr>`,
  );
  return html`${table(['Platform', 'Package', 'Why', 'Since', 'Action'], rows)}${pager(
    v,
    '/admin',
    tracked,
    {},
    'Tracked packages',
  )}`;
}

function untrackForm(v: View, t: TrackedRow): Html {
  return form(
    v,
    '/tracked/remove',
    html`<input type="hidden" name="platform" value="${t.platform}" /><input
        type="hidden"
        name="name"
        value="${t.name}"
      /><input type="hidden" name="back" value="/admin" /><button
        type="submit"
        class="secondary"
        aria-label="Untrack ${t.name} on ${t.platform}"
      >
        Untrack
      </button>`,
  );
}

function syncSection(v: View, platforms: readonly string[]): Html {
  return html`<h2>Catalogs</h2>
    ${form(v, '/sync', html`<label for="sync-platform">Platform ${platformSelect('sync-platform', platforms)}</label><button type="submit">Sync the catalog now</button>`, { className: 'row', label: 'Sync a catalog' })}`;
}
