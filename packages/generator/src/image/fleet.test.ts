import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PlatformError } from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import { Podman, SYSATTEST_LABEL_FILTER } from '../podman/podman.js';
import { mountsUnder } from '../podman/tempdir.js';
import { ImageFleet, type FleetOptions } from './fleet.js';
import { readState } from './state.js';

/**
 * The image fleet against the real podman and Debian's archive: one debian/bookworm/amd64 image
 * is built (mmdebstrap, ~30-60 s) and shared by the tests below, which run in order.
 */

const PLATFORM = 'debian/bookworm/amd64';
const RUN = `${process.pid}-${Date.now().toString(36)}`;
const TEST_LABEL = `sysattest.test=fleet-${RUN}`;
const NAMESPACE = `localhost/sysattest-test-${RUN}`;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-fleet-test-'));
/** Parent of every temporary directory the fleets make: must be empty between operations. */
const tmpDir = path.join(work, 'tmp');
fs.mkdirSync(tmpDir);
const podman = new Podman({ labels: { 'sysattest.test': `fleet-${RUN}` } });
const progress: string[] = [];

function fleet(name: string, opts: FleetOptions = {}): ImageFleet {
  return new ImageFleet({
    home: path.join(work, name),
    podman,
    namespace: `${NAMESPACE}-${name}`,
    tmpDir,
    onProgress: (m) => progress.push(m),
    ...opts,
  });
}

const main = fleet('main');

function podmanOut(args: string[]): string {
  return execFileSync('podman', args, { encoding: 'utf8' });
}

/** Containers made by this test file (labelled sysattest=1 and with this run's test label). */
function leftoverContainers(): string[] {
  return podmanOut([
    'ps',
    '-aq',
    '--filter',
    `label=${SYSATTEST_LABEL_FILTER}`,
    '--filter',
    `label=${TEST_LABEL}`,
  ])
    .split('\n')
    .filter(Boolean);
}

function tagsOf(namespacePrefix: string): string[] {
  return podmanOut(['images', '--format', '{{.Repository}}:{{.Tag}}'])
    .split('\n')
    .filter((t) => t.startsWith(namespacePrefix))
    .sort();
}

async function assertNothingLeft(): Promise<void> {
  assert.deepEqual(leftoverContainers(), [], 'no container left');
  assert.deepEqual(fs.readdirSync(tmpDir), [], 'no temporary directory left');
  assert.deepEqual(await mountsUnder(tmpDir), [], 'nothing left mounted');
}

function oneLine(code: string, re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof GeneratorError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/, 'one line');
    return true;
  };
}

describe('image fleet: bad input (no build needed)', () => {
  it('rejects an invalid platform id', async () => {
    await assert.rejects(main.buildImage('debian/bookworm'), (e: unknown) => {
      assert.ok(e instanceof PlatformError);
      assert.equal(e.code, 'INVALID_PLATFORM');
      return true;
    });
    await assert.rejects(main.refreshImage('Debian/Bookworm/AMD64'), { code: 'INVALID_PLATFORM' });
  });

  it('says a non-Debian platform needs --from-image or --rootfs', async () => {
    await assert.rejects(
      main.buildImage('fedora/41/x86_64'),
      oneLine('UNSUPPORTED_PLATFORM', /--from-image.*--rootfs/),
    );
    await assert.rejects(
      main.buildImage(PLATFORM, { fromImage: 'x', rootfs: '/y' }),
      oneLine('INVALID_ARGUMENT', /not both/),
    );
    await assert.rejects(
      main.buildImage(PLATFORM, { rootfs: path.join(work, 'nope.tar') }),
      oneLine('INVALID_ARGUMENT', /no such file/),
    );
  });

  it('says how to install podman when it is missing', async () => {
    const noPodman = fleet('nopodman', { podman: new Podman({ binary: '/nonexistent/podman' }) });
    await assert.rejects(
      noPodman.buildImage(PLATFORM),
      oneLine('PODMAN_MISSING', /install podman \(apt-get install podman runc\)/),
    );
    await assert.rejects(noPodman.refreshImage(PLATFORM), { code: 'PODMAN_MISSING' });
  });

  it('names a corrupt images.json', async () => {
    const corrupt = fleet('corrupt');
    fs.mkdirSync(corrupt.home, { recursive: true });
    fs.writeFileSync(corrupt.stateFile, '{ "format": "sysattest-generator-images", "images": [');
    await assert.rejects(corrupt.listImages(), (e: unknown) => {
      assert.ok(e instanceof GeneratorError && e.code === 'STATE_CORRUPT');
      assert.ok(e.message.includes(corrupt.stateFile), e.message);
      return true;
    });
    await assert.rejects(corrupt.buildImage(PLATFORM), { code: 'STATE_CORRUPT' });
    await assertNothingLeft();
  });

  it('refreshing a platform without an image says to build it', async () => {
    await assert.rejects(
      main.refreshImage('debian/trixie/amd64'),
      oneLine('IMAGE_NOT_FOUND', /image build debian\/trixie\/amd64/),
    );
    await assert.rejects(main.removeImage('debian/trixie/amd64'), { code: 'IMAGE_NOT_FOUND' });
  });
});

describe('image fleet: a real debian/bookworm/amd64 image', () => {
  let builtId = '';
  let currentTag = '';

  before(async () => {
    const r = await main.buildImage(PLATFORM);
    builtId = r.image.imageId;
    currentTag = r.image.tag;
    console.log(`# built ${PLATFORM} in ${(r.durationMs / 1000).toFixed(1)} s`);
  });

  after(async () => {
    for (const f of [main, fleet('rootfs'), fleet('failing')]) {
      for (const image of await f.listImages().catch(() => [])) {
        await f.removeImage(image.platform, { force: true }).catch(() => {});
      }
    }
    await podman.removeLabelledContainers({ labels: [SYSATTEST_LABEL_FILTER, TEST_LABEL] }).catch(() => {});
    for (const tag of tagsOf(NAMESPACE)) spawnSync('podman', ['rmi', '--force', tag]);
    assert.deepEqual(tagsOf(NAMESPACE), [], 'no test image left');
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('lists the image with its package count, as dpkg-query in the image counts them', async () => {
    const [image, ...rest] = await main.listImages();
    assert.equal(rest.length, 0);
    assert.ok(image);
    assert.equal(image.platform, PLATFORM);
    assert.equal(image.imageId, builtId);
    assert.equal(image.tag, `${NAMESPACE}-main/debian:bookworm-amd64`);
    assert.equal(image.generation, 1);
    assert.equal(image.architecture, 'amd64');
    assert.equal(image.refreshedAt, null);
    assert.deepEqual(image.source, {
      kind: 'mmdebstrap',
      suite: 'bookworm',
      variant: 'minbase',
      mirrors: [],
    });
    assert.equal(image.history.length, 1);
    assert.equal(image.history[0]!.changes, null);
    const count = podmanOut(['run', '--rm', '--network=none', currentTag, 'dpkg-query', '-W'])
      .split('\n')
      .filter(Boolean).length;
    assert.ok(count > 50, `a minbase system has dozens of packages (${count})`);
    assert.equal(image.packageCount, count);
    const listed = await main.listImagesWithStatus();
    assert.equal(listed[0]!.present, true);
    await assertNothingLeft();
  });

  it('has no command or entrypoint of ours, our apt settings, and working apt', async () => {
    const info = await podman.imageInspect(currentTag);
    assert.equal(info.id, builtId);
    assert.equal(info.cmd, null);
    assert.equal(info.entrypoint, null);
    assert.ok(info.env.includes('DEBIAN_FRONTEND=noninteractive'));
    assert.equal(info.labels['org.sysattest.platform'], PLATFORM);
    const aptConfig = podmanOut(['run', '--rm', '--network=none', currentTag, 'apt-config', 'dump']);
    assert.match(aptConfig, /^APT::Install-Recommends "false";$/m);
    assert.match(aptConfig, /^Acquire::Retries "5";$/m);
    // The package lists of the build are kept, and apt can fetch new ones.
    const lists = podmanOut(['run', '--rm', '--network=none', currentTag, 'ls', '/var/lib/apt/lists']);
    assert.match(lists, /_Packages$/m);
    const update = spawnSync('podman', ['run', '--rm', currentTag, 'apt-get', 'update', '--error-on=any'], {
      encoding: 'utf8',
    });
    assert.equal(update.status, 0, update.stderr);
    assert.match(update.stdout, /Reading package lists/);
    assert.equal(
      spawnSync('podman', ['run', '--rm', '--network=none', currentTag, 'bash', '-c', 'true']).status,
      0,
    );
  });

  it('refuses to build over an existing image without --force', async () => {
    await assert.rejects(main.buildImage(PLATFORM), oneLine('IMAGE_EXISTS', /image refresh.*--force/));
  });

  it('refresh records a new generation with what changed, and keeps the previous image', async () => {
    const r = await main.refreshImage(PLATFORM);
    console.log(`# refreshed ${PLATFORM} in ${(r.durationMs / 1000).toFixed(1)} s`);
    assert.equal(r.generation.generation, 2);
    assert.equal(r.generation.kind, 'refresh');
    assert.ok(Array.isArray(r.generation.changes));
    for (const c of r.generation.changes!) {
      assert.equal(typeof c.name, 'string');
      assert.ok(c.from !== null || c.to !== null);
    }
    const [image] = await main.listImages();
    assert.ok(image);
    assert.equal(image.generation, 2);
    assert.notEqual(image.imageId, builtId);
    assert.ok(image.refreshedAt !== null);
    assert.deepEqual(
      image.history.map((g) => [g.generation, g.kind, g.removedAt]),
      [
        [1, 'build', null],
        [2, 'refresh', null],
      ],
    );
    assert.equal((await podman.imageInspect(image.tag)).id, image.imageId, 'the current tag moved');
    assert.equal(await podman.imageExists(builtId), true, 'generation 1 is kept');
    assert.equal((await podman.imageInspect(image.imageId)).cmd, null, 'still no command');
    await assertNothingLeft();
  });

  it('a failed refresh changes nothing and leaves nothing behind', async () => {
    const before = await readState(main.stateFile);
    const tagsBefore = tagsOf(NAMESPACE);
    await assert.rejects(
      // No network: apt cannot download (no retries, to keep the test short).
      main.refreshImage(PLATFORM, { network: 'none', aptOptions: ['Acquire::Retries=0'] }),
      oneLine(
        'REFRESH_FAILED',
        /cannot refresh debian\/bookworm\/amd64: apt-get -o Acquire::Retries=0 update --error-on=any in container .* exited with 100/,
      ),
    );
    assert.deepEqual(await readState(main.stateFile), before);
    assert.deepEqual(tagsOf(NAMESPACE), tagsBefore);
    await assertNothingLeft();
  });

  it('an interrupted refresh removes its container and changes nothing', async () => {
    const before = await readState(main.stateFile);
    const ac = new AbortController();
    const interrupting = fleet('main', {
      onProgress: (m) => {
        if (m.startsWith('apt-get update')) setTimeout(() => ac.abort(), 200);
      },
    });
    await assert.rejects(interrupting.refreshImage(PLATFORM, { signal: ac.signal }), { code: 'INTERRUPTED' });
    assert.deepEqual(await readState(main.stateFile), before);
    await assertNothingLeft();
  });

  it('rebuilds from an image (--from-image, --force) as the next generation and prunes the oldest', async () => {
    const previous = (await main.getImage(PLATFORM))!;
    const r = await main.buildImage(PLATFORM, { fromImage: previous.tag, force: true });
    assert.equal(r.generation.generation, 3);
    assert.equal(r.generation.kind, 'build');
    assert.deepEqual(r.generation.source, { kind: 'image', ref: previous.tag, imageId: previous.imageId });
    assert.deepEqual(r.generation.changes, [], 'same packages as the image it came from');
    assert.equal(r.image.packageCount, previous.packageCount);
    assert.deepEqual(r.pruned, [1], 'keeps the last 2 generations');
    assert.equal(await podman.imageExists(builtId), false);
    const history = (await main.getImage(PLATFORM))!.history;
    assert.ok(history[0]!.removedAt !== null);
    assert.deepEqual(
      history.map((g) => g.generation),
      [1, 2, 3],
    );
    await assertNothingLeft();
  });

  it('removes one old generation, refuses the current one', async () => {
    await assert.rejects(
      main.removeImage(PLATFORM, { generation: 3 }),
      oneLine('INVALID_ARGUMENT', /current image/),
    );
    await assert.rejects(
      main.removeImage(PLATFORM, { generation: 1 }),
      oneLine('IMAGE_NOT_FOUND', /already removed/),
    );
    const g2 = (await main.getImage(PLATFORM))!.history[1]!;
    const r = await main.removeImage(PLATFORM, { generation: 2 });
    assert.equal(r.platformRemoved, false);
    assert.deepEqual(r.removedTags, [g2.tag]);
    assert.equal(await podman.imageExists(g2.imageId), false);
    assert.ok((await main.getImage(PLATFORM))!.history[1]!.removedAt !== null);
  });

  it('builds from an operator-supplied root filesystem tarball (--rootfs)', async () => {
    const tar = path.join(work, 'rootfs.tar');
    const c = await podman.createContainer(currentTag, { command: ['true'], network: 'none' });
    try {
      await podman.exportContainer(c, tar);
    } finally {
      await podman.removeContainer(c);
    }
    const rootfsFleet = fleet('rootfs');
    const r = await rootfsFleet.buildImage(PLATFORM, { rootfs: tar });
    assert.deepEqual(r.generation.source, { kind: 'rootfs', path: tar, bytes: fs.statSync(tar).size });
    assert.equal(r.image.packageCount, (await main.getImage(PLATFORM))!.packageCount);
    const info = await podman.imageInspect(r.image.tag);
    assert.equal(info.cmd, null);
    assert.deepEqual(tagsOf(`${NAMESPACE}-rootfs`), [
      `${NAMESPACE}-rootfs/debian:bookworm-amd64`,
      `${NAMESPACE}-rootfs/debian:bookworm-amd64-g1`,
    ]);
    fs.rmSync(tar);
    await assertNothingLeft();
  });

  it('failed builds (not a tarball, not a root filesystem, a bad mirror) leave nothing behind', async () => {
    const failing = fleet('failing');
    const junk = path.join(work, 'junk.tar');
    fs.writeFileSync(junk, 'this is not a tarball');
    await assert.rejects(
      failing.buildImage(PLATFORM, { rootfs: junk }),
      oneLine('BUILD_FAILED', /cannot build/),
    );
    // A tarball without dpkg: the image is imported, then found to be no Debian system.
    const empty = path.join(work, 'empty');
    fs.mkdirSync(path.join(empty, 'etc'), { recursive: true });
    const emptyTar = path.join(work, 'empty.tar');
    execFileSync('tar', ['-C', empty, '-cf', emptyTar, '.']);
    await assert.rejects(failing.buildImage(PLATFORM, { rootfs: emptyTar }), { code: 'BUILD_FAILED' });
    await assert.rejects(
      failing.buildImage(PLATFORM, { mirrors: ['file:///nonexistent-sysattest-mirror'] }),
      oneLine('BUILD_FAILED', /mmdebstrap .* failed/),
    );
    assert.deepEqual(await failing.listImages(), []);
    assert.deepEqual(tagsOf(`${NAMESPACE}-failing`), []);
    await assertNothingLeft();
  });

  it('an interrupted mmdebstrap build cleans up its chroot, mounts and temporary files', async () => {
    const ac = new AbortController();
    let sawMounts = false;
    const interrupted = fleet('failing', {
      onToolOutput: (line) => {
        if (/installing essential packages/.test(line) && !ac.signal.aborted) {
          setTimeout(() => {
            void mountsUnder(tmpDir).then((m) => {
              sawMounts = m.length > 0;
              ac.abort();
            });
          }, 1000);
        }
      },
    });
    await assert.rejects(interrupted.buildImage(PLATFORM, { signal: ac.signal }), { code: 'INTERRUPTED' });
    console.log(`# interrupted mmdebstrap ${sawMounts ? 'with' : 'without'} its chroot mounts in place`);
    assert.deepEqual(await interrupted.listImages(), []);
    await assertNothingLeft();
  });
});
