/**
 * The dashboard in a real browser (Debian's headless Chromium driven by playwright-core) against a
 * real server: buildApp over an SQLite file filled through the store's own write paths with signed
 * catalogs and manifests (testkit/read-model.ts). Screenshots of every page go to
 * test-artifacts/dashboard/ at the repository root.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { verifyManifest } from '@sysattest/core';
import type { FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { buildApp } from '../http/index.js';
import { openStore, type Store } from '../store/index.js';
import { TestGenerator, createTestDatabase, type TestDatabase } from '../testkit/store.js';
import { launchChromium } from '../testkit/browser.js';
import {
  HOSTILE_FINDING_PATH,
  HOSTILE_NOTE,
  seedSimulatedFleet,
  type FleetPackage,
  type SimulatedHost,
} from '../testkit/simulated-fleet.js';
import {
  AMD64,
  ARM64,
  DASHBOARD_STORE_OPTIONS,
  HOSTILE_LOG,
  HOSTILE_PATH,
  seedDashboardStore,
  type Fixture,
} from '../testkit/read-model.js';

const SESSION_SECRET = Buffer.alloc(32, 3);

/** The simulated fleet: 120 hosts (two pages of 100) on amd64 with the fixture's packages and more. */
const HOSTS = 120;
const FLEET_PACKAGES: FleetPackage[] = [
  { name: 'bash', arch: 'amd64', version: '5.2.15-2+b2', newestVersion: '5.2.15-2+b2' },
  { name: 'coreutils', arch: 'amd64', version: '9.1-1', newestVersion: '9.1-1' },
  {
    name: 'openssl',
    arch: 'amd64',
    version: '3.0.15-1~deb12u1',
    newestVersion: '3.0.15-1~deb12u1',
    olderVersion: '3.0.13-1~deb12u1',
  },
  { name: 'tzdata', arch: 'all', version: '2024a-0+deb12u1', newestVersion: '2024a-0+deb12u1' },
  ...Array.from({ length: 36 }, (_, i) => ({
    name: `lib-fleet${i}`,
    arch: 'amd64',
    version: `1.${i}-1`,
    newestVersion: `1.${i}-1`,
  })),
];

const ARTIFACTS = fileURLToPath(new URL('../../../../test-artifacts/dashboard/', import.meta.url));

describe('dashboard in Chromium (SQLite file)', () => {
  let db: TestDatabase;
  let store: Store;
  let gen: TestGenerator;
  let app: FastifyInstance;
  let origin: string;
  let context: BrowserContext;
  let page: Page;
  let profile: string;
  let fx: Fixture;
  let adminSecret: string;
  let readerSecret: string;
  let hosts: SimulatedHost[];
  /** The store's clock skew (seconds): the fleet's stale hosts report in the past. */
  let skew = 0;

  before(async () => {
    db = await createTestDatabase('sqlite');
    store = await openStore(db.url, {
      ...DASHBOARD_STORE_OPTIONS,
      now: () => new Date(Date.now() + skew * 1000),
    });
    gen = await TestGenerator.create();
    fx = await seedDashboardStore(store, gen, new Date());
    hosts = await seedSimulatedFleet(store, {
      platform: AMD64,
      hosts: HOSTS,
      packages: FLEET_PACKAGES,
      skew: (s) => {
        skew = s;
      },
      // Every third host still runs openssl 3.0.13 (the fixture's catalog moved to 3.0.15 2 h ago).
      behind: (i) => new Set(i % 3 === 0 ? ['openssl'] : []),
      history: (i) => (i === 85 ? 3 : 0),
      hostile: (i) => i === 85,
    });
    adminSecret = (await store.createToken('admin', 'browser admin')).secret;
    readerSecret = (await store.createToken('reader', 'browser reader')).secret;
    app = buildApp({ store });
    await app.listen({ host: '127.0.0.1', port: 0 });
    origin = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-chromium-'));
    context = await launchChromium(profile);
    page = context.pages()[0] ?? (await context.newPage());
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await context?.close();
    await app?.close();
    await store?.close();
    await db?.drop();
    if (profile !== undefined) fs.rmSync(profile, { recursive: true, force: true });
  });

  const shot = (name: string) =>
    page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  const text = async (selector: string) => (await page.locator(selector).innerText()).replace(/\s+/g, ' ');
  const row = (contains: string) => page.locator('tr', { hasText: contains });

  async function login(secret: string): Promise<void> {
    await page.goto(`${origin}/dashboard/login`);
    await page.fill('#token', secret);
    await page.press('#token', 'Enter');
    await page.waitForURL(`${origin}/dashboard/`);
  }

  async function logout(): Promise<void> {
    await context.clearCookies();
  }

  it('the root sends to the fleet: one row per platform with counts, freshness and jobs', async () => {
    const res = await page.goto(`${origin}/`);
    assert.equal(res?.status(), 200);
    assert.equal(page.url(), `${origin}/dashboard/`);
    assert.equal(await page.title(), 'Fleet · sysattest');
    const amd64 = await row(AMD64).innerText();
    // 7 packages (bash, coreutils, curl, libc6, openssl, ripgrep, tzdata), one version each in the
    // latest snapshot; 3 tracked, openssl and bash with their newest manifest.
    assert.match(amd64, /\t7\t7\t3\t2\t/);
    assert.match(amd64, /66\.7 %/);
    assert.match(amd64, /2 of 3 tracked/);
    assert.match(amd64, /fresh/);
    assert.match(amd64, /2 pending/); // libc6, ripgrep
    assert.match(amd64, /1 running/);
    assert.match(amd64, /1 failed/);
    assert.doesNotMatch(amd64, /\d+ hosts?\b/, 'hosts per platform only after a login, as GET /v1/hosts');
    assert.equal(
      (await page.goto(`${origin}/dashboard/hosts`))?.url(),
      `${origin}/dashboard/login?next=%2Fdashboard%2Fhosts`,
    );
    await page.goto(`${origin}/dashboard/`);
    const arm64 = await row('debian/bookworm/arm64').innerText();
    assert.match(arm64, /stale/, 'a catalog 60 hours old is stale (and says so in words, not only red)');
    assert.match(arm64, /\t5\t5\t0\t0\t/);
    await shot('fleet');
  });

  it('search finds a package by part of its name, and its page lists every version per platform', async () => {
    await page.goto(`${origin}/dashboard/packages`);
    await page.keyboard.press('/');
    assert.equal(await page.evaluate('document.activeElement?.id'), 'q', '"/" focuses the search box');
    await page.keyboard.type('ssl');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/dashboard\/packages\?q=ssl/);
    const results = await text('main table');
    assert.match(results, /openssl/);
    assert.match(results, /3\.0\.15-1~deb12u1/);
    assert.doesNotMatch(results, /\bbash\b/);
    await shot('packages-search');

    await page.click('a:text-is("openssl")');
    await page.waitForURL(`${origin}/dashboard/packages/openssl`);
    const amd = page.locator('section', { hasText: `${AMD64}` });
    const newest = await amd.locator('tr', { hasText: '3.0.15-1~deb12u1' }).innerText();
    assert.match(newest, /newest/);
    assert.match(newest, /signed manifest/);
    const withdrawn = await amd.locator('tr', { hasText: '3.0.11-1~deb12u1' }).innerText();
    assert.match(withdrawn, /withdrawn/);
    assert.match(withdrawn, /no manifest/);
    // Version order is dpkg's, newest first.
    const versions = await amd.locator('tbody tr td:first-child code').allInnerTexts();
    assert.deepEqual(versions, ['3.0.15-1~deb12u1', '3.0.13-1~deb12u1', '3.0.11-1~deb12u1']);
    const arm = await page.locator('section', { hasText: 'debian/bookworm/arm64' }).innerText();
    assert.match(arm, /3\.0\.13-1~deb12u1/);
    await shot('package');
  });

  it('downloads a manifest and its signature that verify against the generator key', async () => {
    await page.goto(`${origin}/dashboard/packages/openssl`);
    const link = page.locator('a', { hasText: /^manifest$/ }).first();
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const bytes = fs.readFileSync(await download.path());
    const sigLink = page.locator('a', { hasText: /^signature$/ }).first();
    const [sigDownload] = await Promise.all([page.waitForEvent('download'), sigLink.click()]);
    const signature = fs.readFileSync(await sigDownload.path(), 'utf8');
    assert.equal(download.suggestedFilename(), 'openssl_3.0.15-1~deb12u1_amd64.json');
    const verified = await verifyManifest(bytes, signature, gen.keyring);
    assert.equal(verified.content.package.name, 'openssl');
    assert.equal(verified.digest, fx.opensslDigest);
  });

  it("shows a manifest's files with hashes and attributes, escaped, paginated and filterable", async () => {
    await page.goto(`${origin}/dashboard/manifests/${fx.opensslDigest}`);
    const files = await text('main table');
    assert.match(files, /\/usr\/bin\/openssl/);
    assert.match(files, /0755/);
    assert.match(files, /root:root/);
    assert.ok(files.includes(HOSTILE_PATH), 'a path with markup is shown as text');
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    const sha = (
      await page.locator('tr', { hasText: '/usr/bin/openssl' }).locator('code.hash').nth(1).innerText()
    ).trim();
    assert.match(sha, /^[0-9a-f]{64}$/);
    await shot('manifest');
    await page.fill('#path', 'etc/');
    await page.press('#path', 'Enter');
    await page.waitForURL(/path=etc/);
    const filtered = await page.locator('main tbody tr').allInnerTexts();
    assert.equal(filtered.length, 1);
    assert.match(filtered[0] as string, /openssl\.cnf/);
  });

  it('upgrades: per window, per platform, with a chart', async () => {
    await page.goto(`${origin}/dashboard/upgrades?window=7d`);
    const events = (await page.locator('main table').last().innerText()).replace(/\s+/g, ' ');
    assert.match(events, /openssl \(amd64\) 3\.0\.13-1~deb12u1 3\.0\.15-1~deb12u1/);
    assert.match(events, /openssl \(amd64\) 3\.0\.11-1~deb12u1 3\.0\.13-1~deb12u1/);
    assert.match(events, /curl \(amd64\) 7\.88\.1-10 7\.88\.1-10\+deb12u5/);
    assert.match(events, /ripgrep \(amd64\) new package 13\.0\.0-4\+b2/);
    const chart = page.locator(`figure:has-text("${AMD64}") svg`);
    assert.equal(await chart.getAttribute('role'), 'img');
    assert.match((await chart.getAttribute('aria-label')) ?? '', /4 in total/);
    await shot('upgrades');
    await page.click('a:text-is("Last 24 hours")');
    await page.waitForURL(/window=24h/);
    const day = await page.locator('main tbody').last().innerText();
    assert.match(day, /3\.0\.15-1~deb12u1/);
    assert.doesNotMatch(day, /curl/);
  });

  it('health: database, queue, oldest job, workers and what they hold', async () => {
    await page.goto(`${origin}/dashboard/health`);
    const body = await text('main');
    assert.match(body, /database size \(sqlite\)/);
    assert.match(body, /\d+(\.\d)? (KiB|MiB)/);
    assert.match(body, /requests \(\d+ in the last 5 min\)/);
    assert.match(body, /latency p99/);
    assert.match(body, /age of the oldest queued job/);
    const worker = await row('gen-worker-1').innerText();
    assert.match(worker, /curl 7\.88\.1-10\+deb12u5/);
    assert.match(worker, /live/);
    await shot('health');
  });

  it('jobs: queue, history and failures with their log shown as text', async () => {
    await page.goto(`${origin}/dashboard/jobs`);
    const queue = await text('main table');
    assert.match(queue, /libc6/);
    assert.match(queue, /held by gen-worker-1/);
    await page.click('a:has-text("Failures")');
    await page.waitForURL(/view=failures/);
    const log = await page.locator('tr', { hasText: 'coreutils' }).locator('pre.log').innerText();
    assert.ok(log.includes('<img src=x onerror="window.__pwned=1">'), log);
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    assert.equal(
      await page.locator('button:has-text("Requeue")').count(),
      0,
      'no requeue button without an admin login',
    );
    await shot('jobs');
    await page.goto(`${origin}/dashboard/jobs/${fx.deadJobId}`);
    assert.equal((await page.locator('pre.log').innerText()).trim(), HOSTILE_LOG);
  });

  it('refuses admin actions without a login, for a reader, and without the CSRF token', async () => {
    await logout();
    const anonymous = await page.request.post(`${origin}/dashboard/jobs/${fx.deadJobId}/requeue`, {
      form: { csrf: 'x', back: '/jobs' },
      maxRedirects: 0,
    });
    assert.equal(anonymous.status(), 401);
    assert.equal((await store.getJob(fx.deadJobId))?.state, 'dead');
    await page.goto(`${origin}/dashboard/admin`);
    assert.match(page.url(), /\/dashboard\/login\?next=%2Fdashboard%2Fadmin$/);

    await login(readerSecret);
    const reader = await page.request.post(`${origin}/dashboard/jobs/${fx.deadJobId}/requeue`, {
      form: { csrf: 'x' },
      maxRedirects: 0,
    });
    assert.equal(reader.status(), 403);
    await logout();

    await login(adminSecret);
    const noToken = await page.request.post(`${origin}/dashboard/jobs/${fx.deadJobId}/requeue`, {
      form: { back: '/jobs' },
      maxRedirects: 0,
    });
    assert.equal(noToken.status(), 403);
    assert.match(await noToken.text(), /CSRF/);
    const wrongToken = await page.request.post(`${origin}/dashboard/jobs/${fx.deadJobId}/requeue`, {
      form: { csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
      maxRedirects: 0,
    });
    assert.equal(wrongToken.status(), 403);
    // The right token from another site's page (a foreign Origin) is refused too.
    await page.goto(`${origin}/dashboard/jobs?view=failures`);
    const csrf = await page.locator('input[name="csrf"]').first().getAttribute('value');
    assert.match(csrf ?? '', /^[A-Za-z0-9_-]{43}$/);
    const foreign = await page.request.post(`${origin}/dashboard/jobs/${fx.deadJobId}/requeue`, {
      form: { csrf: csrf as string },
      headers: { origin: 'http://attacker.example' },
      maxRedirects: 0,
    });
    assert.equal(foreign.status(), 403);
    assert.equal((await store.getJob(fx.deadJobId))?.state, 'dead');
    const cookie = (await context.cookies()).find((c) => c.name === 'sysattest_session');
    assert.equal(cookie?.httpOnly, true);
    assert.equal(cookie?.sameSite, 'Strict');
  });

  it('an admin requeues a failed job from the failures page', async () => {
    await page.goto(`${origin}/dashboard/jobs?view=failures`);
    await page.click(`button[aria-label="Requeue job ${fx.deadJobId}"]`);
    await page.waitForURL(/view=failures/);
    assert.match(
      await page.locator('.flash').innerText(),
      new RegExp(`job ${fx.deadJobId} \\(coreutils 9\\.1-1\\) is queued again`),
    );
    assert.match(await page.locator('main').innerText(), /No job here/, 'a requeued job is no failure');
    const job = await store.getJob(fx.deadJobId);
    assert.equal(job?.state, 'pending');
    assert.equal(job?.attempts, 0);
  });

  it('an admin creates and revokes a token, tracks and untracks a package', async () => {
    await page.goto(`${origin}/dashboard/admin`);
    await page.fill('#token-name', 'ci <reader>');
    await page.selectOption('#token-role', 'reader');
    await page.click('button:text-is("Create token")');
    const secret = (await page.locator('#new-secret').innerText()).trim();
    const created = await store.authenticate(secret);
    assert.equal(created?.name, 'ci <reader>');
    assert.equal(created?.role, 'reader');
    await shot('admin');
    page.once('dialog', (d) => void d.accept());
    await page.click(`button[aria-label="Revoke token ${created?.id} (ci <reader>)"]`);
    await page.waitForURL(`${origin}/dashboard/admin`);
    assert.equal(await store.authenticate(secret), undefined);

    await page.selectOption('#track-platform', AMD64);
    await page.fill('#track-name', 'ripgrep');
    await page.click('button:text-is("Track")');
    await page.waitForURL(`${origin}/dashboard/admin`);
    assert.match(await page.locator('.flash').innerText(), /ripgrep is tracked on debian\/bookworm\/amd64/);
    assert.ok(
      (await store.listTrackedPackages(AMD64)).some((t) => t.name === 'ripgrep' && t.source === 'config'),
    );
    await page.click(`button[aria-label="Untrack ripgrep on ${AMD64}"]`);
    await page.waitForURL(`${origin}/dashboard/admin`);
    assert.ok(
      !(await store.listTrackedPackages(AMD64)).some((t) => t.name === 'ripgrep' && t.source === 'config'),
    );
  });

  it('hosts: verdict counts as links, filters by verdict and platform, pages 120 hosts', async () => {
    await page.goto(`${origin}/dashboard/hosts`);
    const expected = { clean: 0, findings: 0, incomplete: 0, 'trust-failure': 0, stale: 0 };
    for (const h of hosts) expected[h.verdict]++;
    assert.ok(expected.stale > 0 && expected.findings > 0 && expected['trust-failure'] > 0);
    const tabs = (await text('ul.verdicts')).trim();
    assert.equal(
      tabs,
      `all ${HOSTS} clean ${expected.clean} findings ${expected.findings} incomplete ${expected.incomplete} trust failure ${expected['trust-failure']} stale ${expected.stale}`,
    );
    assert.equal(await page.locator('main tbody tr').count(), 100, 'a page holds 100 hosts');
    await shot('hosts');
    await page.click('a[rel="next"]');
    await page.waitForURL(/after=host-0099/);
    assert.equal(await page.locator('main tbody tr').count(), HOSTS - 100);
    assert.match(await row('host-0119').innerText(), /host-0119/);

    await page.click('ul.verdicts a:has-text("findings")');
    await page.waitForURL(/\/dashboard\/hosts\?verdict=findings$/);
    const verdicts = await page.locator('main tbody td[data-label="Verdict"]').allInnerTexts();
    assert.equal(verdicts.length, expected.findings);
    assert.ok(verdicts.every((v) => v.trim() === 'findings'));
    const findings = await row('host-0085').innerText();
    assert.match(findings, /modified 3 · unowned 1/);
    assert.match(findings, /(\d+ (s|min) ago)/, 'the last report, relative');
    const title = await row('host-0085').locator('time').getAttribute('title');
    assert.match(title ?? '', /^\d{4}-\d\d-\d\d \d\d:\d\d UTC \(/, 'the exact time on hover');

    await page.goto(`${origin}/dashboard/hosts?verdict=stale`);
    const stale = await page.locator('main tbody td[data-label="Host"]').allInnerTexts();
    assert.deepEqual(
      stale.map((s) => s.trim()),
      hosts.filter((h) => h.verdict === 'stale').map((h) => h.name),
    );
    assert.match(await text('main tbody'), /2 d 1 h ago/);
    await page.goto(`${origin}/dashboard/hosts?platform=${encodeURIComponent(ARM64)}`);
    assert.match(await text('main'), /No host on debian\/bookworm\/arm64\./);
  });

  it('a host page: the host’s claim, findings by class shown as text, packages, history, its report', async () => {
    await page.goto(`${origin}/dashboard/hosts/host-0085`);
    assert.equal(await page.title(), 'Host host-0085 · sysattest');
    assert.match(await text('p.claim'), /This is the host's own claim/);
    const modified = await text('section[aria-label="modified"]');
    assert.match(modified, /Modified content \(3\) 3 failing/);
    assert.ok(modified.includes(HOSTILE_FINDING_PATH), 'a finding path with markup is shown as text');
    assert.match(await text('section[aria-label="unowned"]'), /\/usr\/local\/sbin\/backdoor/);
    assert.ok((await text('main')).includes(HOSTILE_NOTE));
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    const history = await page
      .locator('h2:text-is("History of verdicts") + div.scroll tbody tr')
      .allInnerTexts();
    assert.equal(history.length, 4, 'the latest and three older reports');
    assert.match(history[0] as string, /findings/);
    // An admin (logged in by the tests above) sees the host's reporter token, to revoke it alone.
    assert.match(
      await text('h2:text-is("Reporter tokens") + div.scroll'),
      /reporter host-0085 reporter for host-0085/,
    );
    await shot('host');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('dd a', { hasText: 'the report as JSON' }).click(),
    ]);
    const report = JSON.parse(fs.readFileSync(await download.path(), 'utf8')) as {
      findings: { path?: string }[];
    };
    assert.ok(report.findings.some((f) => f.path === HOSTILE_FINDING_PATH));

    await page.goto(`${origin}/dashboard/hosts/host-0003`);
    assert.match(
      await text('main'),
      /Outdated packages \(1\) .*openssl \(amd64\) 3\.0\.13-1~deb12u1 3\.0\.15-1~deb12u1/,
    );
    const incomplete = hosts.find((h) => h.verdict === 'incomplete') as SimulatedHost;
    await page.goto(`${origin}/dashboard/hosts/${incomplete.name}`);
    assert.match(
      await text('main'),
      /Unverified packages \(1\) .*lib-fleet35 \(amd64\) 1\.35-1 unverified foreign-origin \(origin Docker\)/,
    );
    assert.equal((await page.goto(`${origin}/dashboard/hosts/no-such-host`))?.status(), 404);
  });

  it('the fleet links each platform to its hosts; upgrades count the hosts still behind', async () => {
    await page.goto(`${origin}/dashboard/`);
    await row(AMD64)
      .locator('a', { hasText: `${HOSTS} hosts` })
      .click();
    await page.waitForURL(/\/dashboard\/hosts\?platform=debian%2Fbookworm%2Famd64$/);
    assert.equal(await page.locator('main tbody tr').count(), 100);

    await page.goto(`${origin}/dashboard/upgrades?window=24h`);
    const behind = hosts.filter((_, i) => i % 3 === 0).map((h) => h.name);
    const upgrade = row('3.0.15-1~deb12u1');
    assert.equal(
      (await upgrade.locator('td[data-label="Hosts behind"]').innerText()).trim(),
      String(behind.length),
    );
    await upgrade.locator('td[data-label="Hosts behind"] a').click();
    await page.waitForURL(/\/dashboard\/upgrades\/hosts\?/);
    const listed = await page.locator('main tbody td[data-label="Host"]').allInnerTexts();
    assert.deepEqual(
      listed.map((s) => s.trim()),
      behind,
    );
    assert.match(await row('host-0000').innerText(), /3\.0\.13-1~deb12u1/);
    await shot('hosts-behind');
  });

  it('an admin creates a reporter token bound to a host, revokes it, and forgets a host', async () => {
    await page.goto(`${origin}/dashboard/admin`);
    await page.fill('#token-name', 'web timer');
    await page.selectOption('#token-role', 'reporter');
    await page.fill('#token-host', 'host-0042');
    await page.click('button:text-is("Create token")');
    const secret = (await page.locator('#new-secret').innerText()).trim();
    const created = await store.authenticate(secret);
    assert.equal(created?.role, 'reporter');
    assert.match(await row('web timer').innerText(), /reporter for host-0042/);
    page.once('dialog', (d) => void d.accept());
    await page.click(`button[aria-label="Revoke token ${created?.id} (web timer)"]`);
    await page.waitForURL(`${origin}/dashboard/admin`);
    assert.equal(await store.authenticate(secret), undefined);

    await page.goto(`${origin}/dashboard/hosts/host-0007`);
    page.once('dialog', (d) => void d.accept());
    await page.click('button[aria-label="Forget host host-0007"]');
    await page.waitForURL(`${origin}/dashboard/hosts`);
    assert.match(
      await page.locator('.flash').innerText(),
      /host host-0007 is forgotten: 1 report\(s\) deleted, 1 reporter token\(s\) revoked/,
    );
    assert.equal(await store.hostDetail('host-0007'), undefined);
    assert.equal((await page.goto(`${origin}/dashboard/hosts/host-0007`))?.status(), 404);
  });

  it('works on a narrow screen and from the keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      for (const [name, url] of [
        ['fleet-narrow', '/dashboard/'],
        ['package-narrow', '/dashboard/packages/openssl'],
        ['jobs-narrow', '/dashboard/jobs?view=failures'],
        ['hosts-narrow', '/dashboard/hosts'],
        ['host-narrow', '/dashboard/hosts/host-0085'],
      ] as const) {
        await page.goto(`${origin}${url}`);
        const overflow = Number(
          await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'),
        );
        assert.ok(overflow <= 0, `${url} scrolls sideways by ${overflow}px on a 390px screen`);
        await shot(name);
      }
      await page.goto(`${origin}/dashboard/`);
      await page.keyboard.press('Tab');
      assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
      await page.keyboard.press('Enter');
      // Tab through the navigation to Packages and follow it.
      await page.goto(`${origin}/dashboard/`);
      for (let i = 0; i < 10; i++) {
        await page.keyboard.press('Tab');
        if ((await page.evaluate('document.activeElement?.textContent')) === 'Packages') break;
      }
      await page.keyboard.press('Enter');
      await page.waitForURL(`${origin}/dashboard/packages`);
    } finally {
      await page.setViewportSize({ width: 1280, height: 900 });
    }
  });
});

describe('dashboard when reads need a token', () => {
  let db: TestDatabase;
  let store: Store;
  let app: FastifyInstance;

  before(async () => {
    db = await createTestDatabase('sqlite');
    store = await openStore(db.url, DASHBOARD_STORE_OPTIONS);
    await seedDashboardStore(store, await TestGenerator.create(), new Date());
    app = buildApp({ store, readsNeedToken: true, sessionSecret: SESSION_SECRET });
    await app.ready();
  });
  after(async () => {
    await app?.close();
    await store?.close();
    await db?.drop();
  });

  it('sends anonymous readers to the login page and lets a reader in', async () => {
    for (const url of ['/dashboard/', '/dashboard/packages?q=ssl', '/dashboard/health', '/dashboard/jobs']) {
      const res = await app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 303, url);
      assert.match(String(res.headers.location), /^\/dashboard\/login\?next=/);
    }
    const form = await app.inject({ method: 'GET', url: '/dashboard/login' });
    const csrf = /name="csrf" value="([^"]+)"/.exec(form.body)?.[1] as string;
    const cookie = String(form.headers['set-cookie']).split(';')[0] as string;
    const reader = (await store.createToken('reader', 'r')).secret;
    const bad = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, token: 'sat_nope', next: '/dashboard/' }).toString(),
    });
    assert.equal(bad.statusCode, 401);
    const noCsrf = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: reader }).toString(),
    });
    assert.equal(noCsrf.statusCode, 403, 'the login form needs its CSRF cookie and field');
    const ok = await app.inject({
      method: 'POST',
      url: '/dashboard/login',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ csrf, token: reader, next: '/dashboard/health' }).toString(),
    });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/dashboard/health');
    const session = ([] as string[])
      .concat(ok.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('sysattest_session='));
    assert.match(String(session), /HttpOnly; SameSite=Strict/);
    const fleet = await app.inject({
      method: 'GET',
      url: '/dashboard/',
      headers: { cookie: String(session).split(';')[0] },
    });
    assert.equal(fleet.statusCode, 200);
    assert.match(fleet.body, /debian\/bookworm\/amd64/);
    // Another server with the same session secret accepts the session (nothing is kept in
    // memory); one with another secret does not.
    for (const [secret, status] of [
      [SESSION_SECRET, 200],
      [Buffer.alloc(32, 7), 303],
    ] as const) {
      const second = buildApp({ store, readsNeedToken: true, sessionSecret: secret });
      try {
        const again = await second.inject({
          method: 'GET',
          url: '/dashboard/health',
          headers: { cookie: String(session).split(';')[0] },
        });
        assert.equal(again.statusCode, status);
      } finally {
        await second.close();
      }
    }
  });
});
