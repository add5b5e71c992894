import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { ImageFleet } from '../image/fleet.js';
import { emptyState, writeState, type PlatformImage } from '../image/state.js';
import { Podman } from '../podman/podman.js';
import { registerImageCommands } from './image.js';

/** The `image` commands without podman: a hand-written state file and a podman that is missing. */

const ID1 = '1'.repeat(64);
const ID2 = '2'.repeat(64);

function sample(): PlatformImage {
  return {
    platform: 'debian/bookworm/amd64',
    tag: 'localhost/sysattest/debian:bookworm-amd64',
    imageId: ID2,
    digest: null,
    architecture: 'amd64',
    builtAt: '2026-11-25T15:00:00.000Z',
    refreshedAt: '2026-11-26T09:30:00.000Z',
    generation: 2,
    packageCount: 96,
    source: { kind: 'mmdebstrap', suite: 'bookworm', variant: 'minbase', mirrors: [] },
    history: [
      {
        generation: 1,
        kind: 'build',
        createdAt: '2026-11-25T15:00:00.000Z',
        imageId: ID1,
        tag: 'localhost/sysattest/debian:bookworm-amd64-g1',
        digest: null,
        packageCount: 96,
        source: { kind: 'mmdebstrap', suite: 'bookworm', variant: 'minbase', mirrors: [] },
        changes: null,
        removedAt: null,
      },
      {
        generation: 2,
        kind: 'refresh',
        createdAt: '2026-11-26T09:30:00.000Z',
        imageId: ID2,
        tag: 'localhost/sysattest/debian:bookworm-amd64-g2',
        digest: null,
        packageCount: 96,
        changes: [{ name: 'libc6', arch: 'amd64', from: '2.36-9+deb12u9', to: '2.36-9+deb12u10' }],
        removedAt: null,
      },
    ],
  };
}

async function setup(t: { after(fn: () => void): void }, withImage = true) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-imagecmd-test-'));
  t.after(() => fs.rmSync(home, { recursive: true, force: true }));
  if (withImage)
    await writeState(path.join(home, 'images.json'), {
      ...emptyState(),
      images: { [sample().platform]: sample() },
    });
  let stdout = '';
  let stderr = '';
  const program = new Command('sysattest-generator').exitOverride();
  program.configureOutput({ writeOut: (s) => (stdout += s), writeErr: (s) => (stderr += s) });
  registerImageCommands(program, {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    fleet: (o) => new ImageFleet({ ...o, home, podman: new Podman({ binary: '/nonexistent/podman' }) }),
  });
  return {
    run: (...args: string[]) => program.parseAsync(args, { from: 'user' }),
    out: () => stdout,
    err: () => stderr,
  };
}

describe('image commands', () => {
  it('has help for every subcommand', async (t) => {
    const cli = await setup(t);
    for (const sub of ['build', 'list', 'refresh', 'rm']) {
      await assert.rejects(cli.run('image', sub, '--help'), (e: unknown) => e instanceof CommanderError);
    }
    const help = cli.out();
    assert.match(help, /Usage: sysattest-generator image build \[options\] <platform>/);
    assert.match(help, /--from-image <ref>/);
    assert.match(help, /--rootfs <file>/);
    assert.match(help, /debian\/bookworm\/arm64/);
    assert.match(help, /Usage: sysattest-generator image list\|ls \[options\] \[platform\]/);
    assert.match(help, /--json/);
    assert.match(help, /Usage: sysattest-generator image refresh/);
    assert.match(help, /Usage: sysattest-generator image rm\|remove \[options\] <platform>/);
    assert.match(help, /--generation <n>/);
  });

  it('lists images as a table, with the history of generations', async (t) => {
    const cli = await setup(t);
    await cli.run('image', 'list', '--history');
    const out = cli.out();
    assert.match(out, /^PLATFORM\s+GEN\s+IMAGE\s+PACKAGES\s+BUILT\s+REFRESHED\s+TAG$/m);
    assert.match(
      out,
      /^debian\/bookworm\/amd64\s+2\s+222222222222\s+96\s+2026-11-25 15:00 UTC\s+2026-11-26 09:30 UTC\s+localhost\/sysattest\/debian:bookworm-amd64$/m,
    );
    assert.match(out, /generation 2 \(refresh, .*current\): 96 packages, 1 change\(s\)/);
    assert.match(out, /libc6:amd64 2\.36-9\+deb12u9 → 2\.36-9\+deb12u10/);
    assert.match(cli.err(), /podman could not be asked/);
  });

  it('lists images as JSON', async (t) => {
    const cli = await setup(t);
    await cli.run('image', 'list', '--json');
    const list = JSON.parse(cli.out()) as Array<PlatformImage & { present: boolean | null }>;
    assert.equal(list.length, 1);
    assert.equal(list[0]!.platform, 'debian/bookworm/amd64');
    assert.equal(list[0]!.imageId, ID2);
    assert.equal(list[0]!.packageCount, 96);
    assert.equal(list[0]!.present, null);
  });

  it('says how to start when there is no image, and errors for an unknown platform', async (t) => {
    const cli = await setup(t, false);
    await cli.run('image', 'list');
    assert.match(cli.out(), /no images yet; build one with: sysattest-generator image build/);
    await cli.run('image', 'list', '--json');
    assert.match(cli.out(), /\[\]/);
    await assert.rejects(cli.run('image', 'list', 'debian/sid/amd64'), { code: 'IMAGE_NOT_FOUND' });
  });

  it('passes errors through as one-line GeneratorErrors and rejects bad option values', async (t) => {
    const cli = await setup(t);
    await assert.rejects(cli.run('image', 'build', 'fedora/41/x86_64'), { code: 'UNSUPPORTED_PLATFORM' });
    await assert.rejects(cli.run('image', 'refresh', 'debian/bookworm/amd64'), { code: 'PODMAN_MISSING' });
    await assert.rejects(
      cli.run('image', 'rm', 'debian/bookworm/amd64', '--generation', 'two'),
      (e: unknown) => e instanceof CommanderError && /generation number/.test(cli.err()),
    );
  });
});
