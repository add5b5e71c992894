/**
 * The rpm and apk "list + hash + build + sign" step on locally made roots: real rpms built here
 * with `rpmbuild` (SHA-256, SHA-512 and MD5 file digests; setuid, symlink, %config, %ghost,
 * %dir) installed with `rpm --root --nodeps --noscripts`, and an Alpine root written by hand with
 * an installed database carrying correct `Z:` Q1 (SHA-1) checksums. Every manifest is verified
 * with core's verifyManifest and checked against the database and the files on disk. The apk
 * root is also imported into podman (`podman import` of its tarball) and read through a real
 * container mount. No dnf or apk repository is reachable here, so no install runs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  generateSigningKey,
  readRpmDatabase,
  verifyCatalog,
  verifyManifest,
  type Manifest,
  type ManifestEntry,
  type Platform,
} from '@sysattest/core';

import { Podman } from '../podman/podman.js';
import {
  FamilyHashPools,
  catalogFromRoot,
  generateRpmApk,
  installArgv,
  manifestsFromRoot,
  metadataRefreshArgv,
  type RpmApkFamily,
} from './rpm-apk-generator.js';
import {
  SA_BOX_BIN,
  SA_BOX_ETC,
  SA_DATA,
  VAR_EMPTY,
  requireTool,
  rootfsImage,
  rpmAt,
  rpmbuild,
  run,
  specText,
  writeAccounts,
  writeApkPackages,
} from '../testkit/families.js';

const work = fs.mkdtempSync(join(tmpdir(), 'sysattest-rpmapk-'));
let key: SigningKey;
let keyring: TrustedKeyring;
const pools = new FamilyHashPools(2);

before(async () => {
  // Debian packages: rpm (rpmbuild, rpm) and createrepo-c; the tests say so rather than skip.
  requireTool('rpmbuild', 'rpm');
  requireTool('createrepo_c', 'createrepo-c');
  const k = await generateSigningKey({ name: 'rpm/apk generation test' });
  key = await SigningKey.fromArmored(k.armoredSecretKey);
  keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
});
after(async () => {
  await pools.close();
  fs.rmSync(work, { recursive: true, force: true });
});

async function generate(
  root: string,
  family: RpmApkFamily,
  platform: Platform,
  packages: { name: string; version: string; arch?: string }[],
  outDir: string,
): Promise<{ result: Awaited<ReturnType<typeof manifestsFromRoot>>; manifests: Map<string, Manifest> }> {
  const result = await manifestsFromRoot({
    root,
    family,
    platform,
    packages,
    key,
    outDir,
    pools,
    image: { id: 'f'.repeat(64) },
  });
  const manifests = new Map<string, Manifest>();
  for (const m of result.manifests) {
    const verified = await verifyManifest(
      fs.readFileSync(m.file),
      fs.readFileSync(`${m.file}.asc`, 'utf8'),
      keyring,
    );
    manifests.set(m.name, verified.content);
  }
  return { result, manifests };
}

function entry(m: Manifest | undefined, path: string): ManifestEntry {
  const e = m?.entries.find((x) => x.path === path);
  assert.ok(e, `${path} is in the manifest`);
  return e;
}

const modeOf = (e: ManifestEntry): string | undefined => (e.type === 'absent' ? undefined : e.mode);

const sha = (alg: string, file: string): string =>
  createHash(alg).update(fs.readFileSync(file)).digest('hex');

// One package per file digest algorithm rpm can be told to use: 8 = SHA-256 (the default),
// 10 = SHA-512, 1 = MD5 (RHEL 5 and older packages).
const SPECS: { name: string; algo: number; spec: string }[] = [
  {
    name: 'sa-tool',
    algo: 8,
    spec: specText({
      name: 'sa-tool',
      version: '1.0',
      release: '1.fc41',
      epoch: 2,
      install: [
        'mkdir -p %{buildroot}/usr/bin %{buildroot}/etc %{buildroot}/var/log',
        "printf '#!/bin/sh\\necho tool\\n' > %{buildroot}/usr/bin/sa-tool",
        "printf 'suid' > %{buildroot}/usr/bin/sa-suid",
        "echo 'x=1' > %{buildroot}/etc/sa-tool.conf",
        'ln -s sa-tool %{buildroot}/usr/bin/sa-t',
        'ln %{buildroot}/usr/bin/sa-tool %{buildroot}/usr/bin/sa-tool2',
      ],
      files: [
        '%attr(0755,root,root) /usr/bin/sa-tool',
        '%attr(0755,root,root) /usr/bin/sa-tool2',
        '%attr(4755,root,root) /usr/bin/sa-suid',
        '/usr/bin/sa-t',
        '%config(noreplace) /etc/sa-tool.conf',
        '%ghost /var/log/sa-tool.log',
      ],
    }),
  },
  {
    name: 'sa-big',
    algo: 10,
    spec: specText({
      name: 'sa-big',
      version: '0.9~rc1',
      release: '3',
      noarch: true,
      install: [
        'mkdir -p %{buildroot}/usr/share/sa-big',
        'head -c 3000000 /dev/urandom > %{buildroot}/usr/share/sa-big/blob',
        ': > %{buildroot}/usr/share/sa-big/empty',
      ],
      files: ['%dir /usr/share/sa-big', '/usr/share/sa-big/blob', '/usr/share/sa-big/empty'],
    }),
  },
  {
    name: 'sa-old',
    algo: 1,
    spec: specText({
      name: 'sa-old',
      version: '5',
      release: '1.el5',
      noarch: true,
      install: ['mkdir -p %{buildroot}/usr/share/sa-old', 'echo old > %{buildroot}/usr/share/sa-old/readme'],
      files: ['/usr/share/sa-old/readme'],
    }),
  },
];

describe('rpm: manifests from a root made by rpmbuild and rpm --root', () => {
  const root = join(work, 'rpmroot');
  const platform: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };
  let made: Awaited<ReturnType<typeof generate>>;
  const rpms: string[] = [];

  before(async () => {
    for (const { name, algo, spec } of SPECS) rpms.push(...rpmbuild(work, name, spec, algo));
    // The accounts a Fedora image has (the generator names owners from the image's own files).
    writeAccounts(root, '/bin/bash');
    rpmAt(root, '/var/lib/rpm', ['--noscripts', '-i', ...rpms]);
    made = await generate(
      root,
      'rpm',
      platform,
      [
        { name: 'sa-tool', version: '2:1.0-1.fc41', arch: 'x86_64' },
        { name: 'sa-big', version: '0.9~rc1-3' },
        { name: 'sa-old', version: '5-1.el5', arch: 'noarch' },
      ],
      join(work, 'out-rpm'),
    );
  });

  it('makes one signed manifest per package, verified by core, with rpm identity and platform', () => {
    assert.deepEqual(made.result.failures, []);
    assert.deepEqual(made.result.digestMismatches, []);
    assert.deepEqual([...made.manifests.keys()].sort(), ['sa-big', 'sa-old', 'sa-tool']);
    const tool = made.manifests.get('sa-tool');
    assert.equal(tool?.platform, 'fedora/41/x86_64');
    assert.deepEqual(tool?.package, {
      name: 'sa-tool',
      version: '2:1.0-1.fc41',
      architecture: 'x86_64',
      source: { name: 'sa-tool', version: '2:1.0-1.fc41' },
    });
    assert.equal(made.manifests.get('sa-big')?.platform, 'fedora/41/noarch');
    assert.match(tool?.provenance.installer ?? '', /^rpm /);
  });

  it("records rpm's own digest next to ours, in rpm's algorithm, and they agree with the file", () => {
    const cases: [string, string, string][] = [
      ['sa-tool', '/usr/bin/sa-tool', 'sha256'],
      ['sa-big', '/usr/share/sa-big/blob', 'sha512'],
      ['sa-big', '/usr/share/sa-big/empty', 'sha512'],
      ['sa-old', '/usr/share/sa-old/readme', 'md5'],
    ];
    for (const [pkg, p, alg] of cases) {
      const e = entry(made.manifests.get(pkg), p);
      assert.equal(e.type, 'file');
      if (e.type !== 'file') continue;
      assert.equal(e.sha256, sha('sha256', join(root, p)), p);
      assert.deepEqual(e.distroDigest, { algorithm: alg, hex: sha(alg, join(root, p)) }, p);
      assert.equal(e.distroDigestMismatch, undefined);
    }
  });

  it("gives every path the mode, owner, link target and config flag rpm's database records", async () => {
    const db = await readRpmDatabase(root);
    let checked = 0;
    for (const pkg of db.packages) {
      const m = made.manifests.get(pkg.name);
      for (const f of pkg.files) {
        const e = entry(m, f.path);
        if (f.ghost) {
          assert.deepEqual(e, { type: 'absent', path: f.path, reason: 'ghost' }, f.path);
          continue;
        }
        assert.notEqual(e.type, 'absent', f.path);
        if (e.type === 'absent') continue;
        assert.equal(e.mode, ((f.mode ?? 0) & 0o7777).toString(8).padStart(4, '0'), f.path);
        assert.equal(e.user, f.owner, f.path);
        assert.equal(e.group, f.group, f.path);
        assert.equal(e.conffile, f.conffile ? true : undefined, f.path);
        if (f.linkTarget)
          assert.deepEqual([e.type, e.type === 'symlink' && e.target], ['symlink', f.linkTarget]);
        checked++;
      }
    }
    assert.equal(checked, 9); // 5 + 3 + 1 paths, the %ghost apart
    const link = entry(made.manifests.get('sa-tool'), '/usr/bin/sa-tool2');
    assert.ok(
      link.type === 'hardlink' && link.linkTo === '/usr/bin/sa-tool',
      'a hard link names its first path',
    );
    assert.equal(link.distroDigest?.hex, sha('sha256', join(root, 'usr/bin/sa-tool')));
    assert.equal(modeOf(entry(made.manifests.get('sa-tool'), '/usr/bin/sa-suid')), '4755');
    assert.equal(entry(made.manifests.get('sa-tool'), '/etc/sa-tool.conf').conffile, true);
    assert.equal(entry(made.manifests.get('sa-big'), '/usr/share/sa-big').type, 'dir');
  });

  it('flags a file that no longer matches rpm digest (and still records ours)', async () => {
    fs.appendFileSync(join(root, 'usr/share/sa-big/blob'), 'x');
    try {
      const again = await generate(
        root,
        'rpm',
        platform,
        [{ name: 'sa-big', version: '0.9~rc1-3' }],
        join(work, 'out-rpm-2'),
      );
      assert.deepEqual(again.result.digestMismatches, [
        { name: 'sa-big', version: '0.9~rc1-3', paths: ['/usr/share/sa-big/blob'] },
      ]);
      const e = entry(again.manifests.get('sa-big'), '/usr/share/sa-big/blob');
      assert.ok(e.type === 'file' && e.distroDigestMismatch === true);
      assert.ok(e.type === 'file' && e.sha256 === sha('sha256', join(root, 'usr/share/sa-big/blob')));
    } finally {
      fs.truncateSync(join(root, 'usr/share/sa-big/blob'), 3000000);
    }
  });

  it('refuses a version that is not the one installed, naming what is', async () => {
    await assert.rejects(
      manifestsFromRoot({
        root,
        family: 'rpm',
        platform,
        packages: [{ name: 'sa-tool', version: '2:1.0-2.fc41' }],
        key,
        outDir: join(work, 'out-rpm-3'),
        pools,
        image: { id: 'f'.repeat(64) },
      }),
      /sa-tool 2:1\.0-2\.fc41 is not installed .*installed: 2:1\.0-1\.fc41\.x86_64/,
    );
    assert.equal(fs.existsSync(join(work, 'out-rpm-3')), false);
  });
});

/**
 * A small Alpine root: two packages, a setuid file, a symlink, a directory with its own mode, and
 * files under /etc that apk's protected paths treat differently: a config file, an init script
 * (`@etc/init.d`: not configuration), a repository key (`!etc/apk`: not either), and a file the
 * root's own `etc/apk/protected_paths.d/sa-box.list` unprotects.
 */
function makeApkRoot(root: string): void {
  fs.mkdirSync(join(root, 'etc/apk/protected_paths.d'), { recursive: true });
  fs.writeFileSync(
    join(root, 'etc/apk/protected_paths.d/sa-box.list'),
    '# made by sa-box\n-etc/sa-box.d/*.generated\n',
  );
  // (mkdir's mode goes to the parents it makes: /var is 0555 too.)
  fs.mkdirSync(join(root, 'var/empty'), { recursive: true, mode: 0o555 });
  writeApkPackages(root, [
    {
      checksum: 'Q1AAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      name: 'sa-box',
      version: '1.36.1-r29',
      arch: 'x86_64',
      origin: 'sa-box',
      dirs: [
        SA_BOX_BIN,
        SA_BOX_ETC,
        { path: 'etc/apk/keys', files: [{ name: 'sa-test.rsa.pub', content: 'key\n' }] },
        { path: 'etc/init.d', files: [{ name: 'sa-box', content: '#!/sbin/openrc-run\n' }] },
        {
          path: 'etc/sa-box.d',
          files: [
            { name: 'cache.generated', content: 'c\n' },
            { name: 'extra.conf', content: 'b=1\n' },
          ],
        },
        VAR_EMPTY,
      ],
    },
    {
      checksum: 'Q1BBBBBBBBBBBBBBBBBBBBBBBBBBB=',
      name: 'apk-tools',
      version: '2.14.4-r0',
      arch: 'x86_64',
      dirs: [SA_DATA],
    },
  ]);
}

function checkApkManifests(made: Awaited<ReturnType<typeof generate>>, root: string): void {
  assert.deepEqual(made.result.failures, []);
  assert.deepEqual(made.result.digestMismatches, []);
  const box = made.manifests.get('sa-box');
  assert.equal(box?.platform, 'alpine/3.20/x86_64');
  assert.equal(box?.provenance.installer, 'apk-tools 2.14.4-r0');
  for (const p of ['/bin/sa-box', '/bin/sa-ping', '/etc/sa-box.conf']) {
    const e = entry(box, p);
    assert.ok(e.type === 'file', p);
    assert.equal(e.sha256, sha('sha256', join(root, p)));
    assert.deepEqual(e.distroDigest, { algorithm: 'sha1', hex: sha('sha1', join(root, p)) });
  }
  assert.equal(modeOf(entry(box, '/bin/sa-ping')), '4711');
  assert.equal(modeOf(entry(box, '/bin/sa-box')), '0755');
  assert.deepEqual(
    (({ type, target }) => ({ type, target }))(entry(box, '/bin/sa-sh') as { type: string; target?: string }),
    { type: 'symlink', target: 'sa-box' },
  );
  const empty = entry(box, '/var/empty');
  assert.ok(empty.type === 'dir' && empty.mode === '0555');
  const data = entry(made.manifests.get('apk-tools'), '/usr/lib/sa/data');
  assert.ok(data.type === 'file' && data.distroDigest?.algorithm === 'sha1');
  // apk's protected paths, read from the root: its config files are conffiles, nothing else is.
  const conffiles = [...made.manifests.values()]
    .flatMap((m) => m.entries)
    .filter((e) => e.conffile === true)
    .map((e) => e.path)
    .sort();
  assert.deepEqual(conffiles, ['/etc/sa-box.conf', '/etc/sa-box.d/extra.conf']);
  assert.equal(entry(box, '/etc').conffile, undefined);
}

describe('apk: manifests from a hand-made Alpine root with Q1 checksums', () => {
  const root = join(work, 'apkroot');
  const platform: Platform = { distro: 'alpine', release: '3.20', arch: 'x86_64' };
  const wanted = [
    { name: 'sa-box', version: '1.36.1-r29' },
    { name: 'apk-tools', version: '2.14.4-r0' },
  ];

  before(() => makeApkRoot(root));

  it('hashes every file in SHA-256 and SHA-1, next to the Z: checksum, with modes and links', async () => {
    checkApkManifests(await generate(root, 'apk', platform, wanted, join(work, 'out-apk')), root);
  });

  it('flags a file whose Z: checksum disagrees', async () => {
    fs.writeFileSync(join(root, 'etc/sa-box.conf'), 'a=2\n');
    try {
      const again = await generate(root, 'apk', platform, wanted.slice(0, 1), join(work, 'out-apk-2'));
      assert.deepEqual(again.result.digestMismatches[0]?.paths, ['/etc/sa-box.conf']);
    } finally {
      fs.writeFileSync(join(root, 'etc/sa-box.conf'), 'a=1\n');
    }
  });

  it('the same through a real podman mount of the root imported as an image', async (t) => {
    const podman = new Podman({ labels: { 'sysattest.test': String(process.pid) } });
    const tar = join(work, 'apkroot.tar');
    run('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.']);
    const tag = `localhost/sysattest-test-${process.pid}/alpine:local-rootfs`;
    const image = await podman.importImage(tar, { tag });
    let container: string | undefined;
    try {
      // The root has no program to run; a created container can still be mounted.
      container = await podman.createContainer(image, { command: ['/bin/sa-box'] });
      const mount = await podman.mount(container);
      t.diagnostic(`mounted at ${mount}`);
      checkApkManifests(await generate(mount, 'apk', platform, wanted, join(work, 'out-apk-podman')), mount);
    } finally {
      if (container !== undefined) {
        await podman.unmount(container).catch(() => {});
        await podman.removeContainer(container).catch(() => {});
      }
      spawnSync('podman', ['rmi', '--force', tag]);
    }
  });
});

describe('rpm: catalog from the repository metadata dnf cached in the image', () => {
  const root = join(work, 'rpmroot');
  const platform: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };

  /** A real repository of the rpms built above, made by createrepo_c, cached as dnf would. */
  function cacheRepo(cacheDir: string, repoId: string, compress: string): void {
    const repo = join(work, `repo-${repoId}`);
    fs.mkdirSync(repo);
    for (const f of fs.readdirSync(join(work), { recursive: true }) as string[]) {
      if (f.endsWith('.rpm') && f.includes('RPMS/'))
        fs.copyFileSync(join(work, f), join(repo, f.split('/').pop() as string));
    }
    run('createrepo_c', ['--quiet', '--no-database', `--general-compress-type=${compress}`, repo]);
    const dest = join(root, cacheDir, `${repoId}-0123456789abcdef`);
    fs.mkdirSync(dest, { recursive: true });
    fs.cpSync(join(repo, 'repodata'), join(dest, 'repodata'), { recursive: true });
  }

  it('reads gzip (dnf5 cache) and xz (dnf4 cache) primary files, checked against repomd.xml, and signs', async () => {
    cacheRepo('var/cache/libdnf5', 'sa-gz', 'gz');
    cacheRepo('var/cache/dnf', 'sa-xz', 'xz');
    const { catalog, signed, warnings } = await catalogFromRoot({
      root,
      family: 'rpm',
      platform,
      key,
      imageId: 'f'.repeat(64),
    });
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      catalog.provenance.sources.map((s) => s.name),
      ['sa-gz', 'sa-xz'],
    );
    const verified = await verifyCatalog(signed.bytes, signed.signature, keyring);
    assert.equal(verified.content.platform, 'fedora/41/x86_64');
    // Each package once (both repositories offer the same three), with the archive's own SHA-256.
    assert.deepEqual(
      verified.content.packages.map((p) => `${p.name} ${p.version} ${p.architecture}`),
      ['sa-big 0.9~rc1-3 noarch', 'sa-old 5-1.el5 noarch', 'sa-tool 2:1.0-1.fc41 x86_64'],
    );
    for (const p of verified.content.packages) {
      const file = join(work, `repo-sa-gz`, p.filename as string);
      assert.equal(p.sha256, sha('sha256', file));
      assert.equal(p.size, fs.statSync(file).size);
    }
    assert.deepEqual(verified.content.packages.find((p) => p.name === 'sa-tool')?.source, {
      name: 'sa-tool',
      version: '2:1.0-1.fc41',
    });
  });

  it('refuses a primary file that does not match repomd.xml, and a root without metadata', async () => {
    const dir = join(root, 'var/cache/dnf/sa-xz-0123456789abcdef/repodata');
    const primary = fs.readdirSync(dir).find((f) => f.endsWith('primary.xml.xz')) as string;
    const saved = fs.readFileSync(join(dir, primary));
    fs.appendFileSync(join(dir, primary), 'x');
    try {
      await assert.rejects(
        catalogFromRoot({ root, family: 'rpm', platform, key, imageId: 'f'.repeat(64) }),
        /primary\.xml\.xz: its sha256 does not match repomd\.xml/,
      );
    } finally {
      fs.writeFileSync(join(dir, primary), saved);
    }
    await assert.rejects(
      catalogFromRoot({ root: join(work, 'apkroot'), family: 'rpm', platform, key, imageId: 'f'.repeat(64) }),
      /no dnf repository metadata cached/,
    );
    await assert.rejects(
      catalogFromRoot({ root: join(work, 'apkroot'), family: 'apk', platform, key, imageId: 'f'.repeat(64) }),
      /no APKINDEX cached in \/var\/cache\/apk, \/etc\/apk\/cache, \/lib\/apk\/db/,
    );
  });
});

/** `podman import` of a root's tarball; `use` gets the image id and the podman handle. */
async function withImportedImage<T>(
  root: string,
  name: string,
  use: (podman: Podman, image: string) => Promise<T>,
): Promise<T> {
  const podman = new Podman({ labels: { 'sysattest.test': String(process.pid) } });
  const tar = join(work, `${name}.tar`);
  run('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.']);
  const tag = `localhost/sysattest-test-${process.pid}/${name}:local-rootfs`;
  const image = await podman.importImage(tar, { tag });
  try {
    return await use(podman, image);
  } finally {
    spawnSync('podman', ['rmi', '--force', tag]);
  }
}

describe('rpm: through podman, on the rpm root imported as an image', () => {
  const root = join(work, 'rpmroot');
  const platform: Platform = { distro: 'fedora', release: '41', arch: 'x86_64' };

  it('lists, hashes and signs through the container mount, and reads the catalog there', async () => {
    await withImportedImage(root, 'fedora', async (podman, image) => {
      const container = await podman.createContainer(image, { command: ['/usr/bin/sa-tool'] });
      try {
        const mount = await podman.mount(container);
        const made = await generate(
          mount,
          'rpm',
          platform,
          [
            { name: 'sa-tool', version: '2:1.0-1.fc41', arch: 'x86_64' },
            { name: 'sa-big', version: '0.9~rc1-3' },
          ],
          join(work, 'out-rpm-podman'),
        );
        assert.deepEqual(made.result.failures, []);
        assert.deepEqual(made.result.digestMismatches, []);
        assert.equal(modeOf(entry(made.manifests.get('sa-tool'), '/usr/bin/sa-suid')), '4755');
        const blob = entry(made.manifests.get('sa-big'), '/usr/share/sa-big/blob');
        assert.ok(blob.type === 'file' && blob.distroDigest?.algorithm === 'sha512');
        assert.equal(blob.sha256, sha('sha256', join(root, 'usr/share/sa-big/blob')));
        const { catalog } = await catalogFromRoot({
          root: mount,
          family: 'rpm',
          platform,
          key,
          imageId: image,
        });
        assert.equal(catalog.packages.length, 3);
      } finally {
        await podman.unmount(container).catch(() => {});
        await podman.removeContainer(container).catch(() => {});
      }
    });
  });

  it('generation in fresh containers: an image without dnf is refused, saying so, leaving no container', async () => {
    await withImportedImage(root, 'fedora-nodnf', async (podman, imageId) => {
      const events: string[] = [];
      await assert.rejects(
        generateRpmApk({
          family: 'rpm',
          platform,
          image: rootfsImage('fedora/41/x86_64', 't', imageId, { path: '/dev/null', bytes: 0 }),
          podman,
          key,
          outDir: join(work, 'out-nodnf'),
          requests: [
            { name: 'sa-tool', version: '2:1.0-1.fc41', arch: 'x86_64' },
            { name: '--oops', version: '1-1' },
          ],
          network: 'none',
          onEvent: (e) => events.push(e.kind === 'failed' ? `failed ${e.request}` : e.kind),
        }),
        /"dnf": executable file not found/,
      );
      // The invalid request failed before any container; the image was read (mounted, nothing run)
      // and then the one batch's install was tried.
      assert.deepEqual(events, ['failed --oops=1-1', 'batch-start']);
      const left = spawnSync('podman', ['ps', '-a', '-q', '--filter', `ancestor=${imageId}`], {
        encoding: 'utf8',
      });
      assert.equal(left.stdout.trim(), '');
      assert.equal(fs.existsSync(join(work, 'out-nodnf')), false);
    });
  });
});

describe('install commands (argument vectors, no shell)', () => {
  it('dnf installs the exact NEVRA or NEVR, apk name=version', () => {
    assert.deepEqual(installArgv('rpm', [{ name: 'sa-big', version: '0.9~rc1-3' }]).slice(-2), [
      '--',
      'sa-big-0.9~rc1-3',
    ]);
    assert.deepEqual(installArgv('apk', [{ name: 'musl', version: '1.2.5-r0' }]).slice(-1), [
      'musl=1.2.5-r0',
    ]);
    assert.throws(() => installArgv('rpm', [{ name: 'x', version: '1-1', arch: 'x86 64' }]));
    // The catalog's metadata refresh, run as a throwaway container's one command.
    assert.deepEqual(metadataRefreshArgv('rpm'), ['dnf', 'makecache', '--refresh']);
    assert.deepEqual(metadataRefreshArgv('apk'), ['apk', 'update']);
  });
});
