import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { GeneratorError } from '../errors.js';
import {
  acquireLock,
  emptyState,
  MAX_STATE_BYTES,
  readState,
  updateState,
  writeState,
  type ImageState,
  type PlatformImage,
} from './state.js';

const ID = 'a'.repeat(64);
const ID2 = 'b'.repeat(64);

function sampleImage(): PlatformImage {
  return {
    platform: 'debian/bookworm/amd64',
    tag: 'localhost/sysattest/debian:bookworm-amd64',
    imageId: ID2,
    digest: 'sha256:' + 'c'.repeat(64),
    architecture: 'amd64',
    builtAt: '2026-11-25T15:00:00.000Z',
    refreshedAt: '2026-11-25T16:00:00.000Z',
    generation: 2,
    packageCount: 96,
    source: { kind: 'mmdebstrap', suite: 'bookworm', variant: 'minbase', mirrors: [] },
    history: [
      {
        generation: 1,
        kind: 'build',
        createdAt: '2026-11-25T15:00:00.000Z',
        imageId: ID,
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
        createdAt: '2026-11-25T16:00:00.000Z',
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

function tmpHome(t: { after(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-state-test-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function corruptError(file: string, re: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof GeneratorError, String(e));
    assert.equal(e.code, 'STATE_CORRUPT');
    assert.ok(e.message.includes(file), `names the file: ${e.message}`);
    assert.match(e.message, re);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  };
}

describe('image state file', () => {
  it('reads a missing file as an empty state, and round-trips what it writes', async (t) => {
    const file = path.join(tmpHome(t), 'sub', 'images.json');
    assert.deepEqual(await readState(file), emptyState());
    const state: ImageState = { ...emptyState(), images: { 'debian/bookworm/amd64': sampleImage() } };
    await writeState(file, state);
    assert.deepEqual(await readState(file), state);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((f) => f !== 'images.json'),
      [],
      'no temporary file left',
    );
  });

  it('names the file and the problem when it is corrupt', async (t) => {
    const file = path.join(tmpHome(t), 'images.json');
    fs.writeFileSync(file, '{"format": "sysattest-generator-images", "version": 1, "images": {');
    await assert.rejects(readState(file), corruptError(file, /not JSON/));

    fs.writeFileSync(file, JSON.stringify({ format: 'something-else', version: 1, images: {} }));
    await assert.rejects(readState(file), corruptError(file, /"format"/));

    fs.writeFileSync(file, JSON.stringify({ format: 'sysattest-generator-images', version: 9, images: {} }));
    await assert.rejects(readState(file), corruptError(file, /reads version 1/));

    const bad = sampleImage() as unknown as Record<string, unknown>;
    bad.generation = -1;
    fs.writeFileSync(
      file,
      JSON.stringify({
        format: 'sysattest-generator-images',
        version: 1,
        images: { 'debian/bookworm/amd64': bad },
      }),
    );
    await assert.rejects(
      readState(file),
      corruptError(file, /images\["debian\/bookworm\/amd64"\]\.generation/),
    );

    const wrongKey = sampleImage();
    fs.writeFileSync(
      file,
      JSON.stringify({
        format: 'sysattest-generator-images',
        version: 1,
        images: { 'Not A Platform': wrongKey },
      }),
    );
    await assert.rejects(readState(file), corruptError(file, /not a platform id/));
  });

  it('refuses a state file over the size cap without reading it all', async (t) => {
    const file = path.join(tmpHome(t), 'images.json');
    const fd = fs.openSync(file, 'w');
    fs.ftruncateSync(fd, MAX_STATE_BYTES + 1);
    fs.closeSync(fd);
    await assert.rejects(readState(file), corruptError(file, /larger than 16 MiB/));
  });

  it('serializes concurrent updates with the lock', async (t) => {
    const file = path.join(tmpHome(t), 'images.json');
    await writeState(file, emptyState());
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      [1, 2, 3, 4].map((n) =>
        updateState(file, async (s) => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          await new Promise((r) => setTimeout(r, 20));
          const img = sampleImage();
          img.platform = `debian/release${n}/amd64`;
          s.images[img.platform] = img;
          inside--;
        }),
      ),
    );
    assert.equal(maxInside, 1);
    assert.equal(Object.keys((await readState(file)).images).length, 4);
    assert.equal(fs.existsSync(`${file}.lock`), false);
  });

  it('takes over a stale lock and reports a live one as busy', async (t) => {
    const home = tmpHome(t);
    const lock = path.join(home, 'x.lock');
    // A pid that surely is not running: a child that has exited.
    const dead = spawnSync('true').pid;
    fs.writeFileSync(lock, `${dead}\n`);
    const release = await acquireLock(lock, { busyMessage: () => 'busy' });
    assert.equal(fs.readFileSync(lock, 'utf8').trim(), String(process.pid));
    await assert.rejects(
      acquireLock(lock, { busyMessage: (pid) => `held by ${pid}` }),
      (e: unknown) =>
        e instanceof GeneratorError && e.code === 'IMAGE_BUSY' && e.message === `held by ${process.pid}`,
    );
    await release();
    assert.equal(fs.existsSync(lock), false);
  });
});
