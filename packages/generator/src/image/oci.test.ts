import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parsePlatform } from '@sysattest/core';
import { checkCanRunArch, hostOciArch, imageNames, ociArch } from './oci.js';

describe('platform → image facts', () => {
  it('maps package-manager architectures to OCI ones', () => {
    assert.deepEqual(ociArch(parsePlatform('debian/bookworm/amd64')), { arch: 'amd64' });
    assert.deepEqual(ociArch(parsePlatform('debian/bookworm/arm64')), { arch: 'arm64' });
    assert.deepEqual(ociArch(parsePlatform('fedora/41/x86_64')), { arch: 'amd64' });
    assert.deepEqual(ociArch(parsePlatform('alpine/3.20/aarch64')), { arch: 'arm64' });
    assert.deepEqual(ociArch(parsePlatform('debian/bookworm/armhf')), { arch: 'arm', variant: 'v7' });
    assert.throws(() => ociArch(parsePlatform('debian/bookworm/all')), { code: 'UNSUPPORTED_PLATFORM' });
    assert.equal(hostOciArch('x64'), 'amd64');
    assert.equal(hostOciArch('arm64'), 'arm64');
  });

  it('names images per platform and generation', () => {
    const n = imageNames(parsePlatform('debian/bookworm/amd64'));
    assert.equal(n.repository, 'localhost/sysattest/debian');
    assert.equal(n.current, 'localhost/sysattest/debian:bookworm-amd64');
    assert.equal(n.generation(3), 'localhost/sysattest/debian:bookworm-amd64-g3');
    const odd = imageNames(parsePlatform('my.distro/1.0+x/x86_64'), 'localhost/other');
    assert.equal(odd.current, 'localhost/other/my-distro:1.0_x-x86_64');
    assert.throws(() => imageNames(parsePlatform('debian/bookworm/amd64'), '-bad'), {
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('checkCanRunArch', () => {
  const binfmt = (files: Record<string, string>) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sysattest-binfmt-'));
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    return dir;
  };
  const arm64 = parsePlatform('debian/bookworm/arm64');
  const handler = (state: string, flags: string) =>
    `${state}\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: ${flags}\noffset 0\n`;

  it('needs nothing for the host architecture (and i386 on amd64)', () => {
    assert.deepEqual(
      checkCanRunArch(parsePlatform('debian/bookworm/amd64'), {
        hostArch: 'amd64',
        binfmtDir: '/nonexistent',
      }),
      {
        emulated: false,
      },
    );
    assert.deepEqual(
      checkCanRunArch(parsePlatform('debian/bookworm/i386'), {
        hostArch: 'amd64',
        binfmtDir: '/nonexistent',
      }),
      {
        emulated: false,
      },
    );
  });

  it('accepts an enabled qemu handler with the fix-binary flag', (t) => {
    const dir = binfmt({ 'qemu-aarch64': handler('enabled', 'PF') });
    t.after(() => fs.rmSync(dir, { recursive: true }));
    assert.deepEqual(checkCanRunArch(arm64, { hostArch: 'amd64', binfmtDir: dir }), {
      emulated: true,
      handler: 'qemu-aarch64',
    });
  });

  it('says what to install when the handler is missing, disabled or lacks F', (t) => {
    const missing = binfmt({});
    const disabled = binfmt({ 'qemu-aarch64': handler('disabled', 'PF') });
    const noFix = binfmt({ 'qemu-aarch64': handler('enabled', 'P') });
    t.after(() => [missing, disabled, noFix].forEach((d) => fs.rmSync(d, { recursive: true })));
    const oneLine = (re: RegExp) => (e: unknown) => {
      assert.equal((e as { code: string }).code, 'FOREIGN_ARCH_UNAVAILABLE');
      const message = (e as Error).message;
      assert.match(message, re);
      assert.doesNotMatch(message, /\n/);
      return true;
    };
    assert.throws(
      () => checkCanRunArch(arm64, { hostArch: 'amd64', binfmtDir: missing }),
      oneLine(/qemu-aarch64 is not registered.*qemu-user-static.*podman-setup\.sh/),
    );
    assert.throws(
      () => checkCanRunArch(arm64, { hostArch: 'amd64', binfmtDir: disabled }),
      oneLine(/is disabled/),
    );
    assert.throws(
      () => checkCanRunArch(arm64, { hostArch: 'amd64', binfmtDir: noFix }),
      oneLine(/fix-binary flag/),
    );
  });
});
