import type { Page, Principal } from './backend.js';
import { formatCount } from './format.js';
import { html, url, type Html, type Interpolation } from './html.js';

/** What every page needs to know about the request it answers. */
export interface View {
  /** The dashboard's URL prefix, e.g. `/dashboard`. */
  base: string;
  principal?: Principal;
  /** The CSRF token for this session's forms (absent when nobody is logged in). */
  csrf?: string;
  now: Date;
  /** Whether reading needs a login (the login page says so). */
  readsNeedLogin: boolean;
  flash?: { kind: 'info' | 'error'; text: string };
  /** The path of this request, for "log in and come back". */
  path: string;
}

export type Section = 'fleet' | 'hosts' | 'packages' | 'upgrades' | 'health' | 'jobs' | 'admin' | 'login';

const SECTIONS: readonly [Section, string, string][] = [
  ['fleet', 'Fleet', '/'],
  ['hosts', 'Hosts', '/hosts'],
  ['packages', 'Packages', '/packages'],
  ['upgrades', 'Upgrades', '/upgrades'],
  ['health', 'Health', '/health'],
  ['jobs', 'Jobs', '/jobs'],
  ['admin', 'Admin', '/admin'],
];

export const isAdmin = (v: View): boolean => v.principal?.role === 'admin';

/** A POST form with the session's CSRF token. */
export function form(
  v: View,
  action: string,
  body: Interpolation,
  o: { className?: string; confirm?: string; label?: string } = {},
): Html {
  return html`<form
    method="post"
    action="${v.base}${action}"
    class="${o.className ?? 'inline'}"
    ${o.confirm === undefined ? '' : html` data-confirm="${o.confirm}"`}${o.label === undefined ? '' : html` aria-label="${o.label}"`}
  >
    <input type="hidden" name="csrf" value="${v.csrf ?? ''}" />${body}
  </form>`;
}

export function layout(v: View, section: Section, title: string, body: Interpolation): Html {
  const who =
    v.principal === undefined
      ? html`<a href="${url(`${v.base}/login`, { next: v.path })}">Log in</a>`
      : html`<span>${v.principal.name} <span class="badge muted">${v.principal.role}</span></span
          >${form(v, '/logout', html`<button type="submit">Log out</button>`)}`;
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>${title} · sysattest</title>
        <link rel="stylesheet" href="${v.base}/assets/dashboard.css" />
        <script src="${v.base}/assets/dashboard.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <header class="top">
          <a class="brand" href="${v.base}/">sysattest</a>
          <nav aria-label="Dashboard">
            <ul>
              ${SECTIONS.map(
                ([s, name, path]) =>
                  html`<li>
                    <a href="${v.base}${path}" ${s === section ? html` aria-current="page"` : ''}>${name}</a>
                  </li>`,
              )}
            </ul>
          </nav>
          <div class="who">${who}</div>
        </header>
        <main id="main" tabindex="-1">
          <h1>${title}</h1>
          ${v.flash === undefined ? '' : html`<p class="flash ${v.flash.kind}" role="${v.flash.kind === 'error' ? 'alert' : 'status'}">${v.flash.kind === 'error' ? 'Error: ' : ''}${v.flash.text}</p>`}
          ${body}
        </main>
      </body>
    </html>`;
}

/** Previous / next links for a page of results (the other query parameters kept). */
export function pager<T>(
  v: View,
  path: string,
  page: Page<T>,
  query: Record<string, string | undefined>,
  noun: string,
  /** The query parameter that holds the offset (a page with two lists names them apart). */
  param = 'offset',
): Html {
  const first = page.items.length === 0 ? 0 : page.offset + 1;
  const last = page.offset + page.items.length;
  const of = page.total === undefined ? '' : ` of ${formatCount(page.total)}`;
  const prev =
    page.offset > 0
      ? html`<a
          rel="prev"
          href="${url(`${v.base}${path}`, { ...query, [param]: Math.max(0, page.offset - page.limit) || undefined })}"
          >← Previous</a
        >`
      : '';
  const next = page.hasMore
    ? html`<a rel="next" href="${url(`${v.base}${path}`, { ...query, [param]: page.offset + page.limit })}"
        >Next →</a
      >`
    : '';
  return html`<nav class="pager" aria-label="Pages of ${noun}">
    <span>${noun} ${formatCount(first)}–${formatCount(last)}${of}</span>${prev}${next}
  </nav>`;
}

/** A table that becomes a stack of labelled rows on a narrow screen. */
export function table(
  headers: readonly (string | [string, 'num'])[],
  rows: readonly Html[],
  caption?: string,
): Html {
  return html`<div class="scroll">
    <table class="stack">
      ${
        caption === undefined
          ? ''
          : html`<caption class="muted">
              ${caption}
            </caption>`
      }
      <thead>
        <tr>
          ${headers.map((h) =>
            typeof h === 'string'
              ? html`<th scope="col">${h}</th>`
              : html`<th scope="col" class="num">${h[0]}</th>`,
          )}
        </tr>
      </thead>
      <tbody>
        ${rows}
      </tbody>
    </table>
  </div>`;
}

/** A cell with its column name, for the narrow-screen layout. */
export function td(labelText: string, content: Interpolation, className?: string): Html {
  // The inner span keeps the content one grid item in the narrow layout (label | value).
  return html`<td data-label="${labelText}" ${className === undefined ? '' : html` class="${className}"`}>
    <span>${content}</span>
  </td>`;
}

export function badge(kind: 'ok' | 'bad' | 'warn' | 'info' | 'muted', text: string): Html {
  return html`<span class="badge ${kind}">${text}</span>`;
}

export function time(iso: string | undefined, text: string): Html {
  return iso === undefined
    ? html`<span class="muted">${text}</span>`
    : html`<time datetime="${iso}" title="${iso}">${text}</time>`;
}
