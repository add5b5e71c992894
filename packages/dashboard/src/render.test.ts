import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { barChart } from './chart.js';
import { formatDuration, formatPercent } from './format.js';
import { escapeHtml, html, url } from './html.js';
import { fleetPage } from './pages.js';
import { csrfToken, parseCookies, parseSession, sessionKey, signSession, verifySession } from './session.js';

describe('html templates', () => {
  it('escape every interpolated value, including inside attributes', () => {
    const name = `"><script>alert('x')</script>&`;
    const out = html`<a title="${name}">${name}</a>`.text;
    assert.equal(
      out,
      `<a title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</a>`,
    );
    assert.ok(!out.includes('<script>'));
  });

  it('nest templates without escaping them twice, and drop null, undefined and false', () => {
    assert.equal(
      html`<p>${html`<b>${'<i>'}</b>`}${null}${undefined}${false}${[html`<br />`, 'a&b']}</p>`.text,
      '<p><b>&lt;i&gt;</b><br />a&amp;b</p>',
    );
  });

  it('build URLs with encoded query values', () => {
    assert.equal(
      url('/dashboard/packages', { q: 'a b&c', offset: undefined, empty: '' }),
      '/dashboard/packages?q=a+b%26c',
    );
    assert.equal(escapeHtml('`'), '&#96;');
  });
});

describe('sessions', () => {
  const serverSecret = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
  /** What the database holds for token 7: its stored hash. */
  const binding = Buffer.from('f'.repeat(64), 'hex');
  const key = sessionKey(serverSecret, 7, binding);
  const claims = { tokenId: 7, expires: 2_000_000_000, nonce: 'abcdefghijklmnop' };

  it('verify a cookie signed with the session key, until it expires', () => {
    const cookie = signSession(claims, key);
    assert.match(cookie, /^v2\.7\.2000000000\./);
    assert.deepEqual(verifySession(cookie, key, 1_900_000_000), claims);
    assert.equal(verifySession(cookie, key, 2_000_000_000), undefined, 'expired');
  });

  it('refuse a cookie signed with another key or altered in any field', () => {
    const cookie = signSession(claims, key);
    assert.equal(verifySession(cookie, sessionKey(Buffer.alloc(32, 1), 7, binding), 0), undefined);
    assert.equal(verifySession(cookie, sessionKey(serverSecret, 8, binding), 0), undefined);
    assert.equal(verifySession(cookie.replace('v2.7.', 'v2.8.'), key, 0), undefined);
    assert.equal(verifySession(cookie.replace('.2000000000.', '.2000000001.'), key, 0), undefined);
    assert.equal(parseSession('v2.7.1.short.sig'), undefined);
    assert.equal(parseSession('x'.repeat(400)), undefined);
  });

  it('refuse what the database alone can sign: a v1 cookie, or a key made from the token hash', () => {
    // v1 keyed sessions by the token's stored hash alone: anyone with a copy of the database could mint one.
    const v1 = signSession(claims, binding).replace(/^v2\./, 'v1.');
    assert.equal(parseSession(v1), undefined);
    const guessed = signSession(claims, sessionKey(binding, 7, binding));
    assert.equal(verifySession(guessed, key, 0), undefined);
    assert.throws(() => sessionKey(Buffer.alloc(31), 7, binding), /at least 32 bytes/);
  });

  it('derive a CSRF token bound to the session', () => {
    const a = csrfToken(claims, key);
    assert.equal(a, csrfToken(claims, key));
    assert.notEqual(a, csrfToken({ ...claims, nonce: 'qrstuvwxyzabcdef' }, key));
    assert.notEqual(a, csrfToken(claims, sessionKey(Buffer.alloc(32, 2), 7, binding)));
  });

  it('read cookies, first one wins', () => {
    const c = parseCookies('a=1; b=2; a=3; broken; c=x=y');
    assert.equal(c.get('a'), '1');
    assert.equal(c.get('c'), 'x=y');
    assert.equal(c.has('broken'), false);
  });
});

describe('charts and figures', () => {
  it('draw one bar per bucket with its figure as text', () => {
    const svg = barChart(
      'Upgrades <on> x',
      [
        { start: '2026-11-24T00:00:00.000Z', count: 3 },
        { start: '2026-11-25T00:00:00.000Z', count: 0 },
      ],
      86_400,
    ).text;
    assert.equal((svg.match(/<rect\s/g) ?? []).length, 2);
    assert.match(svg, /aria-label="Upgrades &lt;on&gt; x: 3 in total"/);
    assert.match(svg, /<title>2026-11-24: 3<\/title>/);
  });

  it('format durations and shares', () => {
    assert.equal(formatDuration(59_000), '59 s');
    assert.equal(formatDuration(3 * 3600_000 + 120_000), '3 h 2 min');
    assert.equal(formatDuration(60 * 3600_000), '2 d 12 h');
    assert.equal(formatPercent(2, 3), '66.7 %');
    assert.equal(formatPercent(0, 0), '—');
  });
});

describe('fleet page', () => {
  const view = {
    base: '/dashboard',
    now: new Date('2026-12-06T12:00:00Z'),
    readsNeedLogin: false,
    path: '/dashboard/',
  };
  const row = {
    platform: 'debian/bookworm/amd64',
    latestCatalogAt: '2026-12-06T10:00:00Z',
    snapshots: 1,
    packages: 10,
    versions: 10,
    trackedPackages: 0,
    trackedCovered: 0,
    manifests: 4,
    jobs: { pending: 6, running: 0, done: 4, dead: 1, retrying: 0 },
  };

  it('shows a whole-catalog backlog with its progress, and nothing when there is none', () => {
    const withBacklog = fleetPage(view, [{ ...row, backlog: { left: 5, done: 4, dead: 1 } }], 48).text;
    assert.match(withBacklog, /backlog: 4 of 10 made \(40(\.0)?\s?%\),\s+5\s+left/);
    assert.match(withBacklog, /1 failed/);
    assert.doesNotMatch(fleetPage(view, [row], 48).text, /backlog:/);
  });
});
