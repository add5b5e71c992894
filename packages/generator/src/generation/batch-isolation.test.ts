import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  generateSigningKey,
  parsePlatform,
  SigningKey,
  TrustedKeyring,
  verifyManifest,
  type Manifest,
  type ManifestEntry,
} from '@sysattest/core';
import {
  archiveKey,
  buildDeb,
  serveArchive,
  writeArchive,
  type ArchiveServer,
} from '../testkit/local-archive.js';
import type { AptSourceSpec } from '../image/apt-sources.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { PLATFORM, sharedTestImage, tempDir, workerHome } from '../testkit/worker-service.js';
import { isolationReason, type ImageBaseline } from './batch-isolation.js';
import { generateDebian } from './debian-generator.js';
import type { BuiltManifest } from './manifest-builder.js';
import type { GenerationEvent, GenerationResult } from './results.js';

const baseline: ImageBaseline = {
  uids: new Set([0, 42, 65534]),
  gids: new Set([0, 42, 65534]),
  installedNames: new Set(['dash', 'base-files']),
};

function built(entries: ManifestEntry[], digestMismatches: string[] = []): BuiltManifest {
  const manifest = {
    schema: 'sysattest.manifest',
    schemaVersion: 1,
    platform: 'debian/bookworm/all',
    package: { name: 'p', version: '1', architecture: 'all', source: { name: 'p', version: '1' } },
    provenance: {},
    entries,
  } as unknown as Manifest;
  return { manifest, digestMismatches };
}

const file = (p: string, uid = 0, gid = 0, names: { user?: string; group?: string } = {}): ManifestEntry =>
  ({
    type: 'file',
    path: p,
    mode: '0644',
    uid,
    gid,
    ...names,
    size: 1,
    sha256: '0'.repeat(64),
  }) as ManifestEntry;

describe('batch isolation rules', () => {
  it('keeps a manifest whose files match their digests and whose owners the image had', () => {
    assert.equal(isolationReason('p', built([file('/usr/bin/p', 0, 0)]), [], baseline), undefined);
  });

  it('sets aside a manifest with a file that disagrees with its own digest', () => {
    const b = built([file('/usr/share/p/data')], ['/usr/share/p/data']);
    assert.equal(isolationReason('p', b, [], baseline), 'digest-mismatch');
  });

  it('sets aside a manifest with an owner the container allocated (the id depends on the batch)', () => {
    assert.equal(isolationReason('p', built([file('/var/lib/p', 101, 0)]), [], baseline), 'batch-owner');
    assert.equal(isolationReason('p', built([file('/var/lib/p', 0, 104)]), [], baseline), 'batch-owner');
  });

  it("keeps an owner the container allocated when the package's own scripts name the account", () => {
    const own = (account: string) => account === 'pd' || account === 'pgroup';
    const b = built([file('/var/lib/p', 101, 104, { user: 'pd', group: 'pgroup' })]);
    assert.equal(isolationReason('p', b, [], baseline, own), undefined);
  });

  it('sets aside an allocated owner no script of the package names, or one without a name', () => {
    const own = (account: string) => account === 'pd';
    const user = built([file('/var/lib/p', 101, 0, { user: 'other' })]);
    assert.equal(isolationReason('p', user, [], baseline, own), 'batch-owner');
    const group = built([file('/var/lib/p', 101, 104, { user: 'pd', group: 'other' })]);
    assert.equal(isolationReason('p', group, [], baseline, own), 'batch-owner');
    // A bare id could only be compared by number, and the number depends on the batch.
    const unnamed = built([file('/var/lib/p', 101, 0)]);
    assert.equal(
      isolationReason('p', unnamed, [], baseline, () => true),
      'batch-owner',
    );
  });

  it('sets aside a manifest with a path another batch package diverts, not one the image diverts', () => {
    const b = built([file('/usr/bin/p')]);
    const by = (who: string) => [{ from: '/usr/bin/p', to: '/usr/bin/p.real', by: who }];
    assert.equal(isolationReason('p', b, by('other'), baseline), 'batch-diversion');
    assert.equal(isolationReason('p', b, by('dash'), baseline), undefined);
    assert.equal(isolationReason('p', b, by('p'), baseline), undefined);
    assert.equal(isolationReason('p', b, by(':'), baseline), undefined);
  });
});

/**
 * In one container: `victim` ships a file that `meddler`'s postinst appends to; `selfish`'s own
 * postinst edits its own file; `bystander` is left alone. Real apt, real dpkg, a local signed
 * archive on loopback.
 */
const VICTIM = { name: 'sysattest-victim', version: '1.0-1' };
const MEDDLER = { name: 'sysattest-meddler', version: '1.0-1' };
const SELFISH = { name: 'sysattest-selfish', version: '1.0-1' };
const BYSTANDER = { name: 'sysattest-bystander', version: '1.0-1' };
const GENUINE = 'genuine victim data\n';
/** Creates its own system user and gives it its state file: kept from the batch. */
const DAEMON = { name: 'sysattest-daemon', version: '1.0-1' };
/** `usurper`'s postinst gives `usurped`'s file to a user only `usurper` creates. */
const USURPED = { name: 'sysattest-usurped', version: '1.0-1' };
const USURPER = { name: 'sysattest-usurper', version: '1.0-1' };
const useradd = (user: string) => `useradd --system --no-create-home --shell /usr/sbin/nologin ${user}`;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('batch isolation in real containers', { timeout: 20 * 60_000 }, () => {
  let dir: string;
  let server: ArchiveServer;
  let fleet: ImageFleet;
  let podman: Podman;
  let image: PlatformImage;
  let key: SigningKey;
  let keyring: TrustedKeyring;
  let aptCache: string;
  let batch: GenerationResult;
  const events: GenerationEvent[] = [];
  const namespace = `localhost/sysattest-isolation-test-${process.pid}`;

  before(async () => {
    dir = tempDir('batch-isolation');
    const debs = path.join(dir, 'debs');
    fs.mkdirSync(debs);
    const served = path.join(dir, 'served');
    const archive = archiveKey(dir, 'isolation test archive');
    writeArchive(served, {
      base: 'local/debian',
      suite: 'stable',
      component: 'main',
      origin: 'Local',
      key: archive,
      debs: [
        buildDeb(debs, { ...VICTIM, files: { '/usr/share/sysattest-victim/data': GENUINE } }),
        buildDeb(debs, {
          ...MEDDLER,
          // Configured after the victim: dpkg configures a dependency first.
          depends: VICTIM.name,
          files: { '/usr/share/doc/sysattest-meddler/README': 'meddler\n' },
          postinst: 'echo "meddled" >> /usr/share/sysattest-victim/data',
        }),
        buildDeb(debs, {
          ...SELFISH,
          files: { '/usr/share/sysattest-selfish/state': 'as shipped\n' },
          postinst: 'echo "configured" >> /usr/share/sysattest-selfish/state',
        }),
        buildDeb(debs, { ...BYSTANDER, files: { '/usr/share/sysattest-bystander/data': 'bystander\n' } }),
        buildDeb(debs, {
          ...DAEMON,
          files: { '/var/lib/sysattest-daemon/state': 'state\n' },
          postinst: `${useradd('sysattestd')}; chown sysattestd /var/lib/sysattest-daemon/state`,
        }),
        buildDeb(debs, { ...USURPED, files: { '/usr/share/sysattest-usurped/data': 'usurped\n' } }),
        buildDeb(debs, {
          ...USURPER,
          depends: USURPED.name,
          files: { '/usr/share/doc/sysattest-usurper/README': 'usurper\n' },
          postinst: `${useradd('usurper')}; chown usurper /usr/share/sysattest-usurped/data`,
        }),
      ],
    });
    server = await serveArchive(served);
    const sources: AptSourceSpec[] = [
      {
        name: 'local',
        kind: 'repository',
        uri: `${server.url}/local/debian`,
        suites: ['stable'],
        components: ['main'],
        signedBy: archive.publicKeyFile,
      },
    ];
    await sharedTestImage();
    podman = new Podman();
    fleet = new ImageFleet({ home: workerHome(dir, 'fleet'), podman, namespace, keepGenerations: 50 });
    image = (await fleet.refreshImage(PLATFORM, { sources, network: 'host' })).image;
    const k = await generateSigningKey({ name: 'batch isolation test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
    aptCache = path.join(dir, 'apt-cache');
    batch = await generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir: path.join(dir, 'batch'),
      network: 'host',
      aptCache,
      batchSize: 10,
      requests: [VICTIM, MEDDLER, SELFISH, BYSTANDER, DAEMON, USURPED, USURPER],
      onEvent: (e) => events.push(e),
    });
  });

  after(async () => {
    await server?.close().catch(() => {});
    for (const g of (await fleet?.getImage(PLATFORM))?.history ?? []) {
      if (g.tag.startsWith(namespace))
        await podman.removeImage(g.tag, { ignoreMissing: true }).catch(() => {});
    }
    await podman?.removeImage(`${namespace}/debian:bookworm-amd64`, { ignoreMissing: true }).catch(() => {});
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  async function manifestOf(result: GenerationResult, name: string): Promise<Manifest> {
    const m = result.manifests.find((x) => x.name === name);
    assert.ok(m, `a manifest for ${name}`);
    return (await verifyManifest(fs.readFileSync(m.file), fs.readFileSync(`${m.file}.asc`, 'utf8'), keyring))
      .content;
  }

  it('makes one manifest per package, none failed', () => {
    assert.deepEqual(batch.failures, []);
    assert.deepEqual(
      batch.manifests.map((m) => m.name).sort(),
      [BYSTANDER, MEDDLER, SELFISH, VICTIM, DAEMON, USURPED, USURPER].map((p) => p.name).sort(),
    );
  });

  it("never signs the meddler's change as the victim's content: the victim is made again alone", async () => {
    const isolated = events.filter((e) => e.kind === 'isolated');
    assert.deepEqual(isolated.map((e) => e.kind === 'isolated' && `${e.name}:${e.reason}`).sort(), [
      `${SELFISH.name}:digest-mismatch`,
      `${USURPED.name}:batch-owner`,
      `${VICTIM.name}:digest-mismatch`,
    ]);
    const victim = await manifestOf(batch, VICTIM.name);
    const data = victim.entries.find((e) => e.path === '/usr/share/sysattest-victim/data');
    assert.equal(data?.type === 'file' ? data.sha256 : undefined, sha256(GENUINE));
    assert.equal(data?.type === 'file' ? data.distroDigestMismatch : 'not a file', undefined);
  });

  it("keeps the owner a package's own postinst gives its file, by name, without making it again", async () => {
    const daemon = await manifestOf(batch, DAEMON.name);
    const state = daemon.entries.find((e) => e.path === '/var/lib/sysattest-daemon/state');
    assert.equal(state?.type === 'file' ? state.user : undefined, 'sysattestd');
    assert.notEqual(state?.type === 'file' ? state.uid : 0, 0);
  });

  it("never signs another package's chown as the package's owner: it is made again alone", async () => {
    const usurped = await manifestOf(batch, USURPED.name);
    const data = usurped.entries.find((e) => e.path === '/usr/share/sysattest-usurped/data');
    assert.deepEqual(data?.type === 'file' ? [data.uid, data.user] : undefined, [0, 'root']);
  });

  it("signs a package's own postinst change as before, with the mismatch recorded", async () => {
    const selfish = await manifestOf(batch, SELFISH.name);
    const state = selfish.entries.find((e) => e.path === '/usr/share/sysattest-selfish/state');
    assert.equal(state?.type === 'file' ? state.sha256 : undefined, sha256('as shipped\nconfigured\n'));
    assert.equal(state?.type === 'file' ? state.distroDigestMismatch : undefined, true);
  });

  it('makes the same entries in a batch as alone', async () => {
    for (const pkg of [BYSTANDER, MEDDLER]) {
      const alone = await generateDebian({
        platform: parsePlatform(PLATFORM),
        image,
        podman,
        key,
        outDir: path.join(dir, `alone-${pkg.name}`),
        network: 'host',
        aptCache,
        requests: [pkg],
      });
      assert.deepEqual(alone.failures, []);
      assert.deepEqual(
        (await manifestOf(batch, pkg.name)).entries,
        (await manifestOf(alone, pkg.name)).entries,
      );
    }
  });

  it('downloads into the shared cache, and a second run takes the .debs from it', async () => {
    const cached = fs.readdirSync(aptCache).filter((f) => f.endsWith('.deb'));
    assert.ok(cached.includes(`${VICTIM.name}_${VICTIM.version}_all.deb`), cached.join(', '));
    await server.close();
    // The archive is gone: only the cache can serve the .deb (apt still checks it against the lists).
    const again = await generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir: path.join(dir, 'again'),
      network: 'host',
      aptCache,
      requests: [BYSTANDER],
    });
    assert.deepEqual(again.failures, []);
    assert.equal(again.manifests.length, 1);
  });
});
