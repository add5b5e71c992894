import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  parsePlatform,
  verifyCatalog,
  verifyManifest,
  type Manifest,
} from '@sysattest/core';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { GENERATOR_VERSION } from '../version.js';
import { sharedTestImage } from '../testkit/worker-service.js';
import { catalogDebian, generateDebian } from './debian-generator.js';
import type { GenerationEvent } from './results.js';

/**
 * Real generation on a real bookworm image, checked against the truth: the .deb files themselves
 * (their file list, md5sums and contents, through dpkg-deb) and stock gpg for every signature.
 */

const PLATFORM = 'debian/bookworm/amd64';
const TEST_LABEL = `sysattest.test=generation-${process.pid}`;

function leftoverContainers(): string[] {
  const r = spawnSync(
    'podman',
    // This test's containers only: another generation on the host is not ours to count.
    [
      'ps',
      '-a',
      '--filter',
      'label=sysattest.purpose=generate',
      '--filter',
      `label=${TEST_LABEL}`,
      '--format',
      '{{.Names}}',
    ],
    {
      encoding: 'utf8',
    },
  );
  return r.stdout.split('\n').filter(Boolean);
}

describe('Debian generation in fresh podman containers', { timeout: 15 * 60_000 }, () => {
  let home: string;
  let outDir: string;
  let podman: Podman;
  let image: PlatformImage;
  let key: SigningKey;
  let publicKey: string;
  let keyring: TrustedKeyring;
  const events: GenerationEvent[] = [];
  let result: Awaited<ReturnType<typeof generateDebian>>;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-gen-test-'));
    outDir = path.join(home, 'out');
    podman = new Podman({ labels: { 'sysattest.test': TEST_LABEL.split('=')[1] as string } });
    const fleet = new ImageFleet({ home, podman, namespace: `localhost/sysattest-test-${process.pid}` });
    image = (await fleet.buildImage(PLATFORM)).image;
    const k = await generateSigningKey({ name: 'generation test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    publicKey = k.armoredPublicKey;
    keyring = await TrustedKeyring.fromArmored(publicKey);
    result = await generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir,
      // hello: plain files; iputils-ping: a file capability set by postinst; adduser: conffiles,
      // arch all; plus one unknown package and one unknown version, which must fail alone.
      requests: [
        { name: 'hello' },
        { name: 'iputils-ping' },
        { name: 'adduser' },
        { name: 'no-such-package-sysattest' },
        { name: 'jq', version: '0.0-nope' },
      ],
      batchSize: 10,
      onEvent: (e) => events.push(e),
    });
  });

  after(() => {
    spawnSync('podman', ['rmi', '--force', image.tag]);
    spawnSync('podman', ['rmi', '--force', ...image.history.map((h) => h.imageId)]);
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('makes one manifest per requested package version and fails the bad requests alone', () => {
    assert.deepEqual(result.manifests.map((m) => m.name).sort(), ['adduser', 'hello', 'iputils-ping']);
    const failures = result.failures.map((f) => f.message).join('\n');
    assert.match(failures, /no-such-package-sysattest: no such package/);
    assert.match(failures, /jq: version 0\.0-nope is not offered .*\(offered: 1\.6/);
    assert.equal(result.failures.length, 2);
    // Coded: the worker tells "not offered by the image" from a failed install by the code.
    assert.deepEqual(result.failures.map((f) => [f.name, f.code]).sort(), [
      ['jq', 'UNKNOWN_VERSION'],
      ['no-such-package-sysattest', 'UNKNOWN_PACKAGE'],
    ]);
    const adduser = result.manifests.find((m) => m.name === 'adduser');
    assert.equal(adduser?.architecture, 'all');
    assert.match(adduser?.file ?? '', /debian\/bookworm\/all\/adduser_[^/]+_all\.json$/);
  });

  it('writes signatures that stock gpg --verify accepts and pinned-key verification accepts', async () => {
    const gnupg = fs.mkdtempSync(path.join(home, 'gnupg-'));
    execFileSync('gpg', ['--homedir', gnupg, '--batch', '--import'], {
      input: publicKey,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    for (const m of result.manifests) {
      const status = execFileSync(
        'gpg',
        ['--homedir', gnupg, '--batch', '--status-fd', '1', '--verify', `${m.file}.asc`, m.file],
        {
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        },
      );
      assert.match(status, new RegExp(`VALIDSIG ${key.fingerprint} `), m.file);
      const verified = await verifyManifest(
        fs.readFileSync(m.file),
        fs.readFileSync(`${m.file}.asc`, 'utf8'),
        keyring,
      );
      assert.equal(verified.content.package.name, m.name);
    }
  });

  it('matches the .deb archives: same paths, same md5sums, same content hashes', async () => {
    const debs = path.join(home, 'debs');
    fs.mkdirSync(debs);
    for (const m of result.manifests) {
      const manifest = JSON.parse(fs.readFileSync(m.file, 'utf8')) as Manifest;
      const spec = `${manifest.package.name}=${manifest.package.version}`;
      // The archive the image's apt would fetch, downloaded by apt inside a container of the image.
      const dl = spawnSync(
        'podman',
        [
          'run',
          '--rm',
          '--label',
          TEST_LABEL,
          '-v',
          `${debs}:/out`,
          '--workdir',
          '/out',
          image.imageId,
          'apt-get',
          'download',
          spec,
        ],
        { encoding: 'utf8' },
      );
      assert.equal(dl.status, 0, dl.stderr);
      const deb = fs.readdirSync(debs).find((f) => f.startsWith(`${manifest.package.name}_`)) as string;
      const debPath = path.join(debs, deb);
      // The archive is the one the catalog names.
      assert.equal(
        createHash('sha256').update(fs.readFileSync(debPath)).digest('hex'),
        manifest.provenance.archiveSha256,
      );

      const listing = execFileSync('dpkg-deb', ['--fsys-tarfile', debPath]);
      const tarPaths = execFileSync('tar', ['-t'], { input: listing, encoding: 'utf8', maxBuffer: 64 << 20 })
        .split('\n')
        .filter((l) => l && l !== './')
        .map((l) => l.replace(/^\./, '').replace(/\/$/, ''));
      const manifestPaths = manifest.entries.map((e) => e.path);
      assert.deepEqual([...manifestPaths].sort(), [...new Set(tarPaths)].sort(), `${deb}: paths`);

      const extracted = path.join(home, 'x', manifest.package.name);
      fs.mkdirSync(extracted, { recursive: true });
      execFileSync('dpkg-deb', ['-x', debPath, extracted]);
      const ctrl = path.join(home, 'ctrl', manifest.package.name);
      fs.mkdirSync(ctrl, { recursive: true });
      execFileSync('dpkg-deb', ['-e', debPath, ctrl]);
      const md5sums = new Map(
        (fs.existsSync(path.join(ctrl, 'md5sums')) ? fs.readFileSync(path.join(ctrl, 'md5sums'), 'utf8') : '')
          .split('\n')
          .filter(Boolean)
          .map((l): [string, string] => [`/${l.slice(34)}`, l.slice(0, 32)]),
      );
      const conffiles = new Set(
        (fs.existsSync(path.join(ctrl, 'conffiles'))
          ? fs.readFileSync(path.join(ctrl, 'conffiles'), 'utf8')
          : ''
        )
          .split('\n')
          .filter(Boolean),
      );
      let files = 0;
      for (const e of manifest.entries) {
        if (e.type !== 'file' && e.type !== 'hardlink') continue;
        files++;
        const content = fs.readFileSync(path.join(extracted, e.path));
        assert.equal(
          e.sha256,
          createHash('sha256').update(content).digest('hex'),
          `${deb}: ${e.path} sha256`,
        );
        assert.equal(e.size, content.length, `${deb}: ${e.path} size`);
        const md5 = md5sums.get(e.path);
        if (md5 !== undefined) {
          assert.deepEqual(e.distroDigest, { algorithm: 'md5', hex: md5 }, `${deb}: ${e.path} md5`);
          assert.equal(e.distroDigestMismatch, undefined);
        }
        assert.equal(e.conffile === true, conffiles.has(e.path), `${deb}: ${e.path} conffile flag`);
      }
      assert.ok(files > 0, `${deb} has files`);
      fs.rmSync(debPath);
    }
  });

  it('records what the fresh install has: the capability postinst set on ping, owners, modes', () => {
    const ping = JSON.parse(
      fs.readFileSync(result.manifests.find((m) => m.name === 'iputils-ping')?.file as string, 'utf8'),
    ) as Manifest;
    const bin = ping.entries.find((e) => e.path === '/bin/ping');
    assert.ok(bin && bin.type === 'file');
    assert.equal(bin.capabilities?.slice(0, 8), '01000002', 'VFS_CAP_REVISION_2 xattr');
    assert.equal(bin.mode, '0755');
    assert.equal(bin.user, 'root');
    const adduser = JSON.parse(
      fs.readFileSync(result.manifests.find((m) => m.name === 'adduser')?.file as string, 'utf8'),
    ) as Manifest;
    assert.ok(adduser.entries.some((e) => e.path === '/etc/deluser.conf' && e.conffile === true));
  });

  it('with dependencies, also makes manifests for what the install pulled in (and not for the image)', async () => {
    const r = await generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir: path.join(home, 'deps'),
      requests: [{ name: 'jq' }],
      withDeps: true,
    });
    const names = r.manifests.map((m) => m.name).sort();
    // jq depends on libjq1, which depends on libonig5; base-files is in the image already.
    assert.ok(
      ['jq', 'libjq1', 'libonig5'].every((n) => names.includes(n)),
      names.join(' '),
    );
    assert.ok(!names.includes('base-files'));
    assert.deepEqual(r.failures, []);
  });

  it('leaves no container behind', () => {
    assert.deepEqual(leftoverContainers(), []);
  });

  it('signs a catalog of the image lists that names the versions it generated', async () => {
    const { signed, catalog } = await catalogDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
    });
    const verified = await verifyCatalog(signed.bytes, signed.signature, keyring);
    assert.ok(verified.content.packages.length > 50_000, `${verified.content.packages.length} packages`);
    for (const m of result.manifests) {
      assert.ok(
        catalog.packages.some((p) => p.name === m.name && p.version === m.version),
        `${m.name} ${m.version} in the catalog`,
      );
    }
    assert.ok(catalog.provenance.sources.some((s) => /bookworm\/main amd64/.test(s.name) && s.date));
  });

  it('removes the container when interrupted mid-install', async () => {
    const controller = new AbortController();
    const run = generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir: path.join(home, 'interrupted'),
      requests: [{ name: 'python3' }],
      signal: controller.signal,
      onEvent: (e) => {
        if (e.kind === 'batch-start') setTimeout(() => controller.abort(), 1500);
      },
    });
    await assert.rejects(run, (e: unknown) => (e as { code?: string }).code === 'INTERRUPTED');
    assert.deepEqual(leftoverContainers(), []);
    assert.equal(fs.existsSync(path.join(home, 'interrupted', 'debian')), false);
  });
});

/**
 * dpkg diversions a package makes are signed in its manifest: bookworm's dash (in the image
 * already, so its manifest comes from a fresh container where apt-get has nothing to do) diverts
 * /bin/sh and sh(1)'s man page; hello diverts nothing. The truth is dpkg-divert's own listing in a
 * container of the same image.
 */
describe('Debian generation: the diversions a package makes', { timeout: 15 * 60_000 }, () => {
  let home: string;
  let image: PlatformImage;
  let key: SigningKey;
  let publicKey: string;
  let keyring: TrustedKeyring;
  let result: Awaited<ReturnType<typeof generateDebian>>;
  /** `dpkg-divert --list` in a container of the image: [from, to, by]. */
  let listed: [string, string, string][];

  const manifestOf = (name: string): { file: string; text: string; manifest: Manifest } => {
    const file = result.manifests.find((m) => m.name === name)?.file as string;
    assert.ok(file, `${name} has a manifest`);
    const text = fs.readFileSync(file, 'utf8');
    return { file, text, manifest: JSON.parse(text) as Manifest };
  };

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-gen-diversions-'));
    image = await sharedTestImage();
    const k = await generateSigningKey({ name: 'diversions test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    publicKey = k.armoredPublicKey;
    keyring = await TrustedKeyring.fromArmored(publicKey);
    const list = spawnSync(
      'podman',
      ['run', '--rm', '--label', TEST_LABEL, image.imageId, 'dpkg-divert', '--list'],
      { encoding: 'utf8' },
    );
    assert.equal(list.status, 0, list.stderr);
    listed = list.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const m = /^diversion of (\S+) to (\S+) by (\S+)$/.exec(l);
        assert.ok(m, l);
        return [m[1], m[2], m[3]] as [string, string, string];
      });
    result = await generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman: new Podman({ labels: { 'sysattest.test': TEST_LABEL.split('=')[1] as string } }),
      key,
      outDir: path.join(home, 'out'),
      requests: [{ name: 'dash' }, { name: 'hello' }],
    });
  });

  after(() => {
    fs.rmSync(home, { recursive: true, force: true });
  });

  it("signs dash's diversions in its manifest, as dpkg-divert lists them in the image", async () => {
    assert.deepEqual(result.failures, []);
    const { file, manifest } = manifestOf('dash');
    const expected = listed
      .filter(([, , by]) => by === 'dash')
      .map(([from, to]) => ({ from, to }))
      .sort((a, b) => (a.from < b.from ? -1 : 1));
    assert.deepEqual(expected, [
      { from: '/bin/sh', to: '/bin/sh.distrib' },
      { from: '/usr/share/man/man1/sh.1.gz', to: '/usr/share/man/man1/sh.distrib.1.gz' },
    ]);
    assert.deepEqual(manifest.diversions, expected);
    assert.equal(manifest.provenance.generator.version, GENERATOR_VERSION);
    // dash's own files at the paths it diverts stay where they are (no divertedTo).
    const sh = manifest.entries.find((e) => e.path === '/bin/sh');
    assert.ok(sh && sh.type === 'symlink' && sh.target === 'dash' && sh.divertedTo === undefined);
    // What the pinned key verified carries them.
    const verified = await verifyManifest(
      fs.readFileSync(file),
      fs.readFileSync(`${file}.asc`, 'utf8'),
      keyring,
    );
    assert.deepEqual(verified.content.diversions, expected);
  });

  it('a package that diverts nothing has no diversions field', () => {
    const { text, manifest } = manifestOf('hello');
    assert.equal('diversions' in manifest, false);
    assert.doesNotMatch(text, /"diversions"/);
  });

  it('stock gpg --verify accepts both signatures', () => {
    const gnupg = fs.mkdtempSync(path.join(home, 'gnupg-'));
    execFileSync('gpg', ['--homedir', gnupg, '--batch', '--import'], {
      input: publicKey,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    for (const name of ['dash', 'hello']) {
      const { file } = manifestOf(name);
      const status = execFileSync(
        'gpg',
        ['--homedir', gnupg, '--batch', '--status-fd', '1', '--verify', `${file}.asc`, file],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
      );
      assert.match(status, new RegExp(`VALIDSIG ${key.fingerprint} `), file);
    }
  });
});

describe(
  'Debian generation: an exact version older than the image, locked to its siblings',
  { timeout: 15 * 60_000 },
  () => {
    let home: string;
    let image: PlatformImage;
    let keyring: TrustedKeyring;
    let result: Awaited<ReturnType<typeof generateDebian>>;
    /** The oldest systemd the image's lists offer, and the libsystemd0 the image has installed. */
    let oldSystemd: string;
    let imageLibsystemd: string;

    const inImage = (...command: string[]): string => {
      const r = spawnSync('podman', ['run', '--rm', '--label', TEST_LABEL, image.imageId, ...command], {
        encoding: 'utf8',
      });
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };

    before(async () => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-gen-siblings-'));
      image = await sharedTestImage();
      const k = await generateSigningKey({ name: 'siblings test' });
      const key = await SigningKey.fromArmored(k.armoredSecretKey);
      keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
      // `apt-cache madison` lists the versions newest first: bookworm's point release and the
      // newer one of bookworm-updates/security. systemd pins libsystemd0 with `(= version)`.
      const versions = inImage('apt-cache', 'madison', 'systemd')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('|')[1]?.trim() as string);
      oldSystemd = versions[versions.length - 1] as string;
      imageLibsystemd = inImage('dpkg-query', '-W', '-f', '${Version}', 'libsystemd0');
      assert.ok(
        versions.length > 1 && oldSystemd !== imageLibsystemd,
        `systemd versions: ${versions.join(', ')}`,
      );
      result = await generateDebian({
        platform: parsePlatform(PLATFORM),
        image,
        podman: new Podman({ labels: { 'sysattest.test': TEST_LABEL.split('=')[1] as string } }),
        key,
        outDir: path.join(home, 'out'),
        // libsystemd0 at the image's own version cannot share a container with the old systemd
        // (which needs libsystemd0 at its own version): a real conflict, bisected apart.
        requests: [
          { name: 'systemd', version: oldSystemd },
          { name: 'hello' },
          { name: 'libsystemd0', version: imageLibsystemd },
        ],
        batchSize: 10,
      });
    });

    after(() => {
      fs.rmSync(home, { recursive: true, force: true });
    });

    it('installs the old systemd with its same-source siblings and signs its own manifest at the version asked for', async () => {
      assert.deepEqual(result.failures, []);
      const version = (name: string): string | undefined =>
        result.manifests.find((m) => m.name === name)?.version;
      assert.deepEqual(result.manifests.map((m) => m.name).sort(), ['hello', 'libsystemd0', 'systemd']);
      assert.equal(version('systemd'), oldSystemd);
      assert.equal(version('libsystemd0'), imageLibsystemd);
      const file = result.manifests.find((m) => m.name === 'systemd')?.file as string;
      const verified = await verifyManifest(
        fs.readFileSync(file),
        fs.readFileSync(`${file}.asc`, 'utf8'),
        keyring,
      );
      assert.equal(verified.content.package.name, 'systemd');
      assert.equal(verified.content.package.version, oldSystemd);
      assert.ok(verified.content.entries.some((e) => e.path === '/bin/systemctl'));
    });
  },
);
