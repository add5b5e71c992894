import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  generateSigningKey,
  parsePlatform,
  SigningKey,
  TrustedKeyring,
  verifyCatalog,
  verifyManifest,
  type Catalog,
} from '@sysattest/core';
import {
  archiveKey,
  buildDeb,
  serveArchive,
  writeArchive,
  type ArchiveKey,
  type ArchiveServer,
} from '../testkit/local-archive.js';
import { isGeneratorError } from '../errors.js';
import type { AptSourceSpec } from '../image/apt-sources.js';
import { ImageFleet } from '../image/fleet.js';
import type { PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { PLATFORM, sharedTestImage, tempDir, workerHome } from '../testkit/worker-service.js';
import { catalogDebian, generateDebian } from './debian-generator.js';

/**
 * Extra apt sources end to end, on a real bookworm image and real apt: a snapshot-style archive
 * (a version the live archive no longer carries) and a third-party repository, each made with
 * dpkg-deb, dpkg-scanpackages, apt-ftparchive and gpg and served on loopback. The image trusts
 * each through its own key (the public snapshot service would be checked with Debian's archive
 * keyring: not reachable here). apt keeps the chain: a .deb that does not match the signed index,
 * and an index signed by a key the source does not name, are refused.
 */

const SNAPSHOT_STAMP = '20240210T000000Z';
const DROPPED = { name: 'sysattest-dropped', version: '1.0-1' };
const VENDOR = { name: 'vendor-tool', version: '2.0-1' };
const SWAPPED = { name: 'vendor-swapped', version: '1.0-1' };

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

describe('extra apt sources: snapshot archive and third-party repository', { timeout: 20 * 60_000 }, () => {
  let dir: string;
  let server: ArchiveServer;
  let snapshotKey: ArchiveKey;
  let vendorKey: ArchiveKey;
  let fleet: ImageFleet;
  let podman: Podman;
  let image: PlatformImage;
  let baseImage: PlatformImage;
  let key: SigningKey;
  let keyring: TrustedKeyring;
  const namespace = `localhost/sysattest-sources-test-${process.pid}`;
  const files = {
    dropped: '#!/bin/sh\necho "a version the archive dropped"\n',
    vendor: 'vendor configuration\n',
  };

  const sources = (): AptSourceSpec[] => [
    {
      name: 'snapshot-20240210',
      kind: 'snapshot',
      uri: `${server.url}/archive/debian/${SNAPSHOT_STAMP}/`,
      suites: ['bookworm'],
      components: ['main'],
      signedBy: snapshotKey.publicKeyFile,
    },
    {
      name: 'vendor',
      kind: 'repository',
      uri: `${server.url}/vendor/debian`,
      suites: ['stable'],
      components: ['main'],
      signedBy: vendorKey.publicKeyFile,
    },
  ];

  /** Generation on the image with its extra sources (on loopback: the host's network). */
  const generate = (out: string, requests: { name: string; version: string }[]) =>
    generateDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
      outDir: path.join(dir, out),
      network: 'host',
      requests,
    });

  before(async () => {
    dir = tempDir('extra-sources');
    const debs = path.join(dir, 'debs');
    fs.mkdirSync(debs);
    const served = path.join(dir, 'served');
    snapshotKey = archiveKey(dir, 'snapshot archive');
    vendorKey = archiveKey(dir, 'vendor archive');
    writeArchive(served, {
      base: `archive/debian/${SNAPSHOT_STAMP}`,
      suite: 'bookworm',
      component: 'main',
      origin: 'Debian',
      key: snapshotKey,
      debs: [buildDeb(debs, { ...DROPPED, files: { '/usr/bin/sysattest-dropped': files.dropped } })],
    });
    writeArchive(served, {
      base: 'vendor/debian',
      suite: 'stable',
      component: 'main',
      origin: 'Vendor',
      key: vendorKey,
      debs: [
        buildDeb(debs, { ...VENDOR, files: { '/etc/vendor-tool.conf': files.vendor } }),
        buildDeb(debs, { ...SWAPPED, files: { '/usr/share/doc/vendor-swapped/README': 'genuine\n' } }),
        // A newer `hostname` than the image's: a refresh must not take it (priority 100).
        buildDeb(debs, {
          name: 'hostname',
          version: '99.0',
          files: { '/usr/share/doc/hostname/VENDOR': 'x\n' },
        }),
      ],
    });
    server = await serveArchive(served);
    baseImage = await sharedTestImage();
    podman = new Podman();
    fleet = new ImageFleet({ home: workerHome(dir, 'fleet'), podman, namespace, keepGenerations: 50 });
    image = (await fleet.refreshImage(PLATFORM, { sources: sources(), network: 'host' })).image;
    const k = await generateSigningKey({ name: 'extra sources test' });
    key = await SigningKey.fromArmored(k.armoredSecretKey);
    keyring = await TrustedKeyring.fromArmored(k.armoredPublicKey);
  });

  after(async () => {
    await server?.close();
    for (const g of (await fleet?.getImage(PLATFORM))?.history ?? []) {
      if (g.tag.startsWith(namespace))
        await podman.removeImage(g.tag, { ignoreMissing: true }).catch(() => {});
    }
    await podman?.removeImage(`${namespace}/debian:bookworm-amd64`, { ignoreMissing: true }).catch(() => {});
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists the extra sources’ packages in the signed catalog with their origin', async () => {
    const { catalog, signed } = await catalogDebian({
      platform: parsePlatform(PLATFORM),
      image,
      podman,
      key,
    });
    const verified = (await verifyCatalog(signed.bytes, signed.signature, keyring)).content as Catalog;
    const find = (name: string) => verified.packages.find((p) => p.name === name);
    assert.equal(find(DROPPED.name)?.origin, 'snapshot-20240210');
    assert.equal(find(VENDOR.name)?.origin, 'vendor');
    // The distribution's own packages carry no origin.
    assert.equal(find('coreutils')?.origin, undefined);
    const origins = catalog.provenance.sources.flatMap((s) => (s.origin ? [s.origin] : []));
    assert.deepEqual(
      origins.find((o) => o.name === 'snapshot-20240210'),
      { name: 'snapshot-20240210', kind: 'snapshot', snapshotDate: '2024-02-10T00:00:00Z' },
    );
    assert.deepEqual(
      origins.find((o) => o.name === 'vendor'),
      { name: 'vendor', kind: 'repository' },
    );
  });

  it('a refresh never takes the image’s packages from an extra source', async () => {
    const hostname = execFileSync(
      'podman',
      ['run', '--rm', '--network=none', image.imageId, 'dpkg-query', '-W', '-f=${Version}', 'hostname'],
      {
        encoding: 'utf8',
      },
    );
    assert.notEqual(hostname, '99.0');
    const before = execFileSync(
      'podman',
      ['run', '--rm', '--network=none', baseImage.imageId, 'dpkg-query', '-W', '-f=${Version}', 'hostname'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(hostname, before);
  });

  it('generates manifests for a dropped version and a vendor package, apt checking each .deb', async () => {
    const result = await generate('out', [DROPPED, VENDOR]);
    assert.deepEqual(result.failures, []);
    const byName = new Map(result.manifests.map((m) => [m.name, m]));
    for (const [pkg, file, content] of [
      [DROPPED, '/usr/bin/sysattest-dropped', files.dropped],
      [VENDOR, '/etc/vendor-tool.conf', files.vendor],
    ] as const) {
      const m = byName.get(pkg.name);
      assert.ok(m, `a manifest for ${pkg.name}`);
      assert.equal(m.version, pkg.version);
      const bytes = fs.readFileSync(m.file);
      const signature = fs.readFileSync(`${m.file}.asc`, 'utf8');
      const manifest = (await verifyManifest(bytes, signature, keyring)).content;
      const entry = manifest.entries.find((f) => f.path === file);
      assert.equal(
        entry?.type === 'file' ? entry.sha256 : undefined,
        sha256(content),
        `${file} hashed as the package ships it`,
      );
    }
  });

  it('refuses a .deb whose bytes do not match the signed index', async () => {
    const pool = `/vendor/debian/pool/main/${SWAPPED.name}_${SWAPPED.version}_all.deb`;
    const other = buildDeb(path.join(dir, 'debs'), {
      name: SWAPPED.name,
      version: SWAPPED.version,
      files: { '/usr/share/doc/vendor-swapped/README': 'trojan\n' },
    });
    server.replace.set(pool, fs.readFileSync(other));
    const result = await generate('out-swapped', [SWAPPED]);
    assert.ok(server.requests.includes(pool), 'apt fetched the swapped file');
    assert.equal(result.manifests.length, 0);
    assert.equal(result.failures.length, 1);
    assert.match(result.failures[0]!.message, /hash sum mismatch|unexpected size|checksum/i);
  });

  it('refuses an index signed by a key the source does not name, and keeps the image', async () => {
    const wrongKey = sources().map((s) =>
      s.name === 'vendor' ? { ...s, signedBy: snapshotKey.publicKeyFile } : s,
    );
    await assert.rejects(
      fleet.refreshImage(PLATFORM, { sources: wrongKey, network: 'host' }),
      (e: unknown) =>
        isGeneratorError(e) && /NO_PUBKEY|not signed|signature|InRelease/i.test((e as Error).message),
    );
    assert.equal((await fleet.getImage(PLATFORM))?.imageId, image.imageId);
  });
});
