/**
 * `generate`, `catalog` and the worker dispatch rpm and apk platforms to their own code, on
 * podman images made here (see testkit/families.ts for what they are and what the stand-in dnf and
 * apk do and do not do):
 *
 * - fedora/41/x86_64: built by the fleet's `image build --rootfs` code from a root holding
 *   Debian's real rpm, rpms made by rpmbuild and their createrepo_c metadata. `generate` (the real
 *   CLI process) installs in fresh containers — the stand-in dnf runs the image's real `rpm -i` —
 *   then the host reads the container's rpm database through the mount, hashes and signs;
 *   `catalog` reads the cached repodata; the real worker process claims jobs from a real server
 *   (SQLite) and uploads manifests it verifies.
 * - alpine/3.20/x86_64: a hand-made root imported with `podman import`; generation (packages
 *   already installed) and the APKINDEX catalog through the dispatch functions.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  SigningKey,
  TrustedKeyring,
  verifyCatalog,
  verifyManifest,
  type Manifest,
  type Platform,
} from '@sysattest/core';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { ServerApi } from '../worker/server-api.js';
import { WorkerLog } from '../worker/log.js';
import {
  GENERATOR_BIN,
  ServerProcess,
  WorkerProcess,
  createToken,
  testKey,
  type TestKey,
} from '../testkit/worker-service.js';
import { catalogForPlatform, generateForPlatform } from './dispatch.js';
import {
  buildRpms,
  buildStandIn,
  makeAlpineRoot,
  makeFedoraRoot,
  rootfsImage,
  rpmAt,
  run,
  sha256File,
  specText,
  type BuiltRpm,
} from '../testkit/families.js';

const work = fs.mkdtempSync(join(tmpdir(), 'sysattest-dispatch-'));
const NAMESPACE = `localhost/sysattest-test-dispatch-${process.pid}`;
const FEDORA = 'fedora/41/x86_64';
const podman = new Podman({ labels: { 'sysattest.test': String(process.pid) } });

/**
 * Generation containers of this test's image left behind (the CLI runs in its own process, so its
 * containers carry no label of this test; another run's generation on the host is not ours).
 */
function leftoverContainers(imageTag: string | undefined): string {
  const filters = ['--filter', 'label=sysattest.purpose=generate'];
  if (imageTag !== undefined) filters.push('--filter', `ancestor=${imageTag}`);
  return run('podman', ['ps', '-aq', ...filters]).trim();
}
let key: TestKey;
let signingKey: SigningKey;
let keyring: TrustedKeyring;
let standIn: string;
let rpms: BuiltRpm[];
const home = join(work, 'home');
const refRoot = join(work, 'reference-root');

const SPECS: Record<string, string> = {
  'sa-tool': specText({
    name: 'sa-tool',
    version: '1.0',
    release: '1.fc41',
    epoch: 2,
    install: [
      'mkdir -p %{buildroot}/usr/bin %{buildroot}/etc',
      "printf '#!/bin/sh\\necho tool\\n' > %{buildroot}/usr/bin/sa-tool",
      "printf 'suid' > %{buildroot}/usr/bin/sa-suid",
      "echo 'x=1' > %{buildroot}/etc/sa-tool.conf",
      'ln -s sa-tool %{buildroot}/usr/bin/sa-t',
    ],
    files: [
      '%attr(0755,root,root) /usr/bin/sa-tool',
      '%attr(4755,root,root) /usr/bin/sa-suid',
      '/usr/bin/sa-t',
      '%config(noreplace) /etc/sa-tool.conf',
    ],
  }),
  'sa-big': specText({
    name: 'sa-big',
    version: '0.9~rc1',
    release: '3',
    noarch: true,
    install: [
      'mkdir -p %{buildroot}/usr/share/sa-big',
      'head -c 200000 /dev/urandom > %{buildroot}/usr/share/sa-big/blob',
    ],
    files: ['%dir /usr/share/sa-big', '/usr/share/sa-big/blob'],
  }),
  'sa-base': specText({
    name: 'sa-base',
    version: '5',
    release: '1.fc41',
    noarch: true,
    install: ['mkdir -p %{buildroot}/usr/share/sa-base', 'echo base > %{buildroot}/usr/share/sa-base/readme'],
    files: ['/usr/share/sa-base/readme'],
  }),
};

const rpmOf = (name: string): BuiltRpm => rpms.find((r) => r.name === name) as BuiltRpm;

before(async () => {
  key = await testKey(work);
  signingKey = await SigningKey.fromArmored(fs.readFileSync(key.secretFile, 'utf8'));
  keyring = await TrustedKeyring.fromArmored(key.publicKey);
  standIn = join(work, 'stand-in');
  buildStandIn(work, standIn);
  rpms = buildRpms(work, SPECS);
  // What the rpms install, on the host: the reference the manifests are checked against.
  rpmAt(refRoot, '/var/lib/rpm', ['--noscripts', '-i', ...rpms.map((r) => r.file)]);
  const root = join(work, 'fedora-root');
  makeFedoraRoot(work, root, [rpmOf('sa-base')], rpms, standIn);
  const tar = join(work, 'fedora-rootfs.tar');
  run('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.']);
  // The code behind `image build fedora/41/x86_64 --rootfs TAR` (in our own image namespace).
  const fleet = new ImageFleet({ home, podman, namespace: NAMESPACE });
  const built = await fleet.buildImage(FEDORA, { rootfs: tar });
  assert.equal(built.image.packageCount, 1, 'the image lists its packages with its own (real) rpm');
});

after(async () => {
  const fleet = new ImageFleet({ home, podman, namespace: NAMESPACE });
  await fleet.removeImage(FEDORA, { force: true }).catch(() => {});
  const left = run('podman', [
    'images',
    '--format',
    '{{.Repository}}:{{.Tag}}',
    '--filter',
    `reference=${NAMESPACE}/*`,
  ]);
  for (const ref of left.split('\n').filter(Boolean)) run('podman', ['rmi', '--force', ref]);
  fs.rmSync(work, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [GENERATOR_BIN, ...args], {
      env: { ...process.env, SYSATTEST_GENERATOR_HOME: home, SYSATTEST_GENERATOR_KEY: key.secretFile },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function readManifest(file: string): Promise<Manifest> {
  const v = await verifyManifest(fs.readFileSync(file), fs.readFileSync(`${file}.asc`, 'utf8'), keyring);
  return v.content;
}

function entry(m: Manifest, p: string) {
  const e = m.entries.find((x) => x.path === p);
  assert.ok(e, `${p} is in the manifest of ${m.package.name}`);
  return e;
}

describe('sysattest-generator generate / catalog on an rpm platform', { timeout: 10 * 60_000 }, () => {
  it('installs in fresh containers with dnf, splits a refused batch, and writes verified manifests', async () => {
    const out = join(work, 'manifests');
    const r = await cli([
      'generate',
      FEDORA,
      'sa-tool:x86_64=2:1.0-1.fc41',
      'sa-big=0.9~rc1-3',
      'sa-missing=1-1',
      '--out',
      out,
      '--batch-size',
      '3',
      '--network',
      'none',
    ]);
    assert.equal(r.code, 1, `one package fails, so exit 1:\n${r.stderr}`);
    // The batch of three was refused (dnf: no match), split, and retried without the missing one.
    assert.match(
      r.stderr,
      /failed: sa-missing=1-1: dnf install failed: .*No match for argument: sa-missing-1-1/s,
    );
    assert.match(r.stderr, /2 manifest\(s\), 1 failure\(s\) in .* \(dnf \d+\.\d s, podman/);
    const files = r.stdout.trim().split('\n').sort();
    assert.deepEqual(files, [
      join(out, 'fedora/41/noarch/sa-big_0.9~rc1-3_noarch.json'),
      join(out, 'fedora/41/x86_64/sa-tool_2%3a1.0-1.fc41_x86_64.json'),
    ]);
    const tool = await readManifest(files[1] as string);
    assert.deepEqual(tool.package, {
      name: 'sa-tool',
      version: '2:1.0-1.fc41',
      architecture: 'x86_64',
      source: { name: 'sa-tool', version: '2:1.0-1.fc41' },
    });
    // Hashed from the host through the container's mount, after the install in the container:
    // the same bytes as the rpm installed on the host, rpm's own digest next to ours.
    for (const p of ['/usr/bin/sa-tool', '/usr/bin/sa-suid', '/etc/sa-tool.conf']) {
      const e = entry(tool, p);
      assert.ok(e.type === 'file');
      assert.equal(e.sha256, sha256File(join(refRoot, p)), p);
      assert.deepEqual(e.distroDigest, { algorithm: 'sha256', hex: e.sha256 });
    }
    const suid = entry(tool, '/usr/bin/sa-suid');
    assert.ok(suid.type === 'file' && suid.mode === '4755');
    assert.equal(entry(tool, '/etc/sa-tool.conf').conffile, true);
    const link = entry(tool, '/usr/bin/sa-t');
    assert.ok(link.type === 'symlink' && link.target === 'sa-tool');
    const image = await new ImageFleet({ home, podman, namespace: NAMESPACE }).getImage(FEDORA);
    assert.equal(tool.provenance.image.id, image?.imageId);
    const big = await readManifest(files[0] as string);
    const blob = entry(big, '/usr/share/sa-big/blob');
    assert.ok(blob.type === 'file' && blob.sha256 === sha256File(join(refRoot, 'usr/share/sa-big/blob')));
    // Nothing for sa-base (in the image already, not asked for).
    assert.equal(fs.existsSync(join(out, 'fedora/41/noarch/sa-base_5-1.fc41_noarch.json')), false);
    // No container left behind.
    assert.equal(leftoverContainers(image?.tag), '');
  });

  it('--jobs runs containers at once, one batch each', async () => {
    const out = join(work, 'manifests-jobs');
    const r = await cli([
      'generate',
      FEDORA,
      'sa-tool=2:1.0-1.fc41',
      'sa-big:noarch=0.9~rc1-3',
      '--out',
      out,
      '--network',
      'none',
      '--jobs',
      '2',
      '--batch-size',
      '1',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as {
      manifests: { name: string; architecture: string }[];
      failures: unknown[];
    };
    assert.deepEqual(json.failures, []);
    assert.deepEqual(json.manifests.map((m) => `${m.name} ${m.architecture}`).sort(), [
      'sa-big noarch',
      'sa-tool x86_64',
    ]);
    assert.equal(
      leftoverContainers(
        (await new ImageFleet({ home, podman, namespace: NAMESPACE }).getImage(FEDORA))?.tag,
      ),
      '',
    );
  });

  it('--with-deps also makes the manifests of what the install added, not of the image', async () => {
    const out = join(work, 'manifests-deps');
    const r = await cli([
      'generate',
      FEDORA,
      'sa-tool:x86_64=2:1.0-1.fc41',
      '--out',
      out,
      '--network',
      'none',
      '--with-deps',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { manifests: { name: string }[] };
    assert.deepEqual(
      json.manifests.map((m) => m.name),
      ['sa-tool'],
    );
  });

  it('refuses, with the reason, what rpm/apk generation cannot do', async () => {
    const unversioned = await cli(['generate', FEDORA, 'sa-tool']);
    assert.notEqual(unversioned.code, 0);
    assert.match(
      unversioned.stderr,
      /^sysattest-generator: fedora\/41\/x86_64: give an exact version for sa-tool \(PACKAGE=VERSION\): choosing the newest version is implemented for apt platforms only\n$/,
    );
    const arch = await cli(['generate', 'alpine/3.20/x86_64', 'musl:x86_64=1.2.5-r0']);
    assert.match(arch.stderr, /musl:x86_64: PACKAGE:ARCH is for rpm platforms/);
    const unknown = await cli(['generate', 'plan9/4/x86_64', 'rc=1']);
    assert.match(
      unknown.stderr,
      /plan9\/4\/x86_64: unknown distribution "plan9"; generation is implemented for/,
    );
    const noImage = await cli(['catalog', 'alpine/3.20/x86_64']);
    assert.match(
      noImage.stderr,
      /no image for alpine\/3\.20\/x86_64; build it with: sysattest-generator image build/,
    );
  });

  it('catalog: runs dnf makecache --refresh in a container, then signs the cached repodata', async () => {
    const file = join(work, 'fedora.catalog.json');
    const r = await cli(['catalog', FEDORA, '--out', file, '--network', 'none']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /running dnf makecache --refresh in a container of the image/);
    assert.match(r.stderr, /fedora\/41\/x86_64: 3 package versions from 1 index\(es\), signed by /);
    const c = await verifyCatalog(fs.readFileSync(file), fs.readFileSync(`${file}.asc`, 'utf8'), keyring);
    assert.deepEqual(
      c.content.packages.map((p) => `${p.name} ${p.version} ${p.architecture} ${p.sha256}`),
      ['sa-base', 'sa-big', 'sa-tool'].map((n) => {
        const b = rpmOf(n);
        return `${n} ${b.version} ${b.arch} ${sha256File(b.file)}`;
      }),
    );
    assert.deepEqual(
      c.content.provenance.sources.map((s) => s.name),
      ['sa-repo'],
    );
    const noRefresh = await cli(['catalog', FEDORA, '--out', join(work, 'f2.json'), '--no-refresh']);
    assert.equal(noRefresh.code, 0, noRefresh.stderr);
    assert.doesNotMatch(noRefresh.stderr, /makecache/);
  });
});

/** `podman import` of a root; the PlatformImage record the fleet would keep for it. */
async function importRoot(root: string, name: string, platform: string): Promise<PlatformImage> {
  const tar = join(work, `${name}.tar`);
  run('tar', ['-C', root, '--numeric-owner', '-cf', tar, '.']);
  const imageId = await podman.importImage(tar, { tag: `${NAMESPACE}/${name}:local-rootfs` });
  return rootfsImage(platform, `${NAMESPACE}/${name}:local-rootfs`, imageId, {
    path: tar,
    bytes: fs.statSync(tar).size,
  });
}

describe('an apk platform through the dispatch functions', { timeout: 5 * 60_000 }, () => {
  const platform: Platform = { distro: 'alpine', release: '3.20', arch: 'x86_64' };

  it('generates with apk add (a stand-in: the packages are in the image) and reads the Z: checksums', async () => {
    const root = join(work, 'alpine-root');
    makeAlpineRoot(join(work, 'alpine-material'), root, standIn);
    const image = await importRoot(root, 'alpine', 'alpine/3.20/x86_64');
    const out = join(work, 'apk-manifests');
    const events: string[] = [];
    const r = await generateForPlatform({
      platform,
      image,
      podman,
      key: signingKey,
      outDir: out,
      requests: [
        { name: 'sa-box', version: '1.36.1-r29' },
        { name: 'sa-gone', version: '1.0-r0' },
      ],
      network: 'none',
      onEvent: (e) => events.push(e.kind),
    });
    assert.deepEqual(
      r.manifests.map((m) => m.name),
      ['sa-box'],
    );
    assert.equal(r.failures.length, 1);
    assert.match(
      r.failures[0]?.message ?? '',
      /^sa-gone=1\.0-r0: apk add failed: .*sa-gone=1\.0-r0 \(no such package\)/s,
    );
    const m = await readManifest(r.manifests[0]?.file as string);
    assert.equal(m.platform, 'alpine/3.20/x86_64');
    const box = entry(m, '/bin/sa-box');
    assert.ok(box.type === 'file' && box.sha256 === sha256File(join(root, 'bin/sa-box')));
    assert.equal(box.distroDigest?.algorithm, 'sha1');
    assert.equal(m.provenance.installer, 'apk-tools 2.14.4-r0');

    const c = await catalogForPlatform({
      platform,
      image,
      podman,
      key: signingKey,
      network: 'none',
      refresh: true,
    });
    const verified = await verifyCatalog(c.signed.bytes, c.signed.signature, keyring);
    assert.deepEqual(
      verified.content.packages.map(
        (p) => `${p.name} ${p.version} ${p.source.name} ${p.apkChecksum?.slice(0, 2)} ${p.sha256}`,
      ),
      [
        'apk-tools 2.14.4-r0 apk-tools Q1 undefined',
        'apk-tools-doc 2.14.4-r0 apk-tools Q1 undefined',
        'sa-box 1.36.1-r29 sa-box Q1 undefined',
      ],
    );
    assert.equal(
      verified.content.provenance.sources[0]?.name,
      'APKINDEX.2c4ac24e.tar.gz v3.20.3-140-g0123456789a',
    );
  });

  it('an image without apk: the refresh fails saying so, and --no-refresh still reads the index', async () => {
    const root = join(work, 'alpine-root-bare');
    makeAlpineRoot(join(work, 'alpine-material-bare'), root, undefined);
    const image = await importRoot(root, 'alpine-bare', 'alpine/3.20/x86_64');
    await assert.rejects(
      catalogForPlatform({ platform, image, podman, key: signingKey, network: 'none', refresh: true }),
      /"apk": executable file not found/,
    );
    const c = await catalogForPlatform({ platform, image, podman, key: signingKey, refresh: false });
    assert.equal(c.catalog.packages.length, 3);
  });
});

describe('the worker on an rpm platform, with a real server', { timeout: 10 * 60_000 }, () => {
  let server: ServerProcess | undefined;

  after(async () => {
    await server?.kill('SIGKILL');
  });

  it('syncs the catalog, claims the jobs a lookup queued, generates with dnf and uploads', async () => {
    const dir = join(work, 'service');
    fs.mkdirSync(dir);
    const database = join(dir, 'server.sqlite');
    const tokenFile = createToken(database, 'generator', dir);
    server = await new ServerProcess(database, key.publicFile).start();
    const args = [
      '--server',
      server.url,
      '--token-file',
      tokenFile,
      '--key',
      key.secretFile,
      '--platform',
      FEDORA,
      '--poll-interval',
      '500ms',
      '--network',
      'none',
      '--exit-when-idle',
    ];
    const env = { SYSATTEST_GENERATOR_HOME: home };
    const first = new WorkerProcess(args, env);
    assert.equal(await first.exited(), 0, first.stderr.slice(-3000));
    const uploaded = first.events('catalog-uploaded')[0];
    assert.equal(uploaded?.platform, FEDORA);
    assert.equal(uploaded?.packages, 3);

    const lookup = async () => {
      const res = await fetch(`${server?.url}/v1/lookup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          platform: FEDORA,
          items: [
            { name: 'sa-tool', version: '2:1.0-1.fc41', arch: 'x86_64' },
            { name: 'sa-big', version: '0.9~rc1-3', arch: 'noarch' },
            { name: 'sa-tool', version: '2:9-1.fc41', arch: 'x86_64' },
          ],
        }),
      });
      assert.equal(res.status, 200);
      return (await res.json()) as {
        items: { status: string; manifest?: { bytes?: string; signature?: string } }[];
      };
    };
    const queued = await lookup();
    assert.deepEqual(
      queued.items.map((i) => i.status),
      ['pending', 'pending', 'not-in-catalog'],
    );

    const second = new WorkerProcess(args, env);
    assert.equal(await second.exited(), 0, second.stderr.slice(-3000));
    assert.equal(second.events('job-complete').length, 2, second.stderr.slice(-3000));
    assert.equal(second.events('job-failed').length, 0);
    const done = await lookup();
    assert.deepEqual(
      done.items.map((i) => i.status),
      ['ok', 'ok', 'not-in-catalog'],
    );

    // An apk catalog (APKINDEX checksums, no archive SHA-256): the server stores it.
    const alpine = await catalogForPlatform({
      platform: { distro: 'alpine', release: '3.20', arch: 'x86_64' },
      image: await importRoot(join(work, 'alpine-root-bare'), 'alpine-bare-2', 'alpine/3.20/x86_64'),
      podman,
      key: signingKey,
    });
    const api = new ServerApi({
      baseUrl: server.url,
      token: fs.readFileSync(tokenFile, 'utf8').trim(),
      log: new WorkerLog('json', { write: () => true }),
      signal: new AbortController().signal,
    });
    const stored = await api.uploadCatalog(alpine.signed.bytes, alpine.signed.signature);
    assert.deepEqual([stored.duplicate, stored.added], [false, 3]);
  });
});
