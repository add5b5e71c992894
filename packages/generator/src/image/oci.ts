import * as fs from 'node:fs';
import { formatPlatform, type Platform } from '@sysattest/core';
import { GeneratorError } from '../errors.js';

/** OCI platform of an image: what `podman import --arch/--variant` records. */
export interface OciArch {
  arch: string;
  variant?: string;
}

/**
 * Package-manager architecture names (dpkg's `amd64`, rpm's and apk's `x86_64`…) to OCI names.
 * `all`/`noarch` are not image architectures: such packages are generated on a real arch image.
 */
const OCI_ARCH: Record<string, OciArch> = {
  amd64: { arch: 'amd64' },
  x86_64: { arch: 'amd64' },
  arm64: { arch: 'arm64' },
  aarch64: { arch: 'arm64' },
  armhf: { arch: 'arm', variant: 'v7' },
  armv7: { arch: 'arm', variant: 'v7' },
  armv7hl: { arch: 'arm', variant: 'v7' },
  armel: { arch: 'arm', variant: 'v5' },
  i386: { arch: '386' },
  i686: { arch: '386' },
  x86: { arch: '386' },
  ppc64el: { arch: 'ppc64le' },
  ppc64le: { arch: 'ppc64le' },
  s390x: { arch: 's390x' },
  riscv64: { arch: 'riscv64' },
  mips64el: { arch: 'mips64le' },
};

/** qemu-user binfmt handler names (`/proc/sys/fs/binfmt_misc/<name>`) per OCI architecture. */
const QEMU_HANDLER: Record<string, string> = {
  amd64: 'qemu-x86_64',
  arm64: 'qemu-aarch64',
  arm: 'qemu-arm',
  '386': 'qemu-i386',
  ppc64le: 'qemu-ppc64le',
  s390x: 'qemu-s390x',
  riscv64: 'qemu-riscv64',
  mips64le: 'qemu-mips64el',
};

export function ociArch(platform: Platform): OciArch {
  const a = OCI_ARCH[platform.arch];
  if (!a) {
    throw new GeneratorError(
      'UNSUPPORTED_PLATFORM',
      `no image can be made for ${formatPlatform(platform)}: unknown architecture ${JSON.stringify(platform.arch)} ` +
        `(known: ${Object.keys(OCI_ARCH).join(', ')})`,
    );
  }
  return a;
}

/** This machine's OCI architecture. */
export function hostOciArch(nodeArch: string = process.arch): string {
  const map: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    arm: 'arm',
    ia32: '386',
    ppc64: 'ppc64le',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  return map[nodeArch] ?? nodeArch;
}

/** Architectures a host runs without emulation (amd64 runs i386 binaries, arm64 runs arm). */
function runsNatively(host: string, target: string): boolean {
  if (host === target) return true;
  if (host === 'amd64' && target === '386') return true;
  return false;
}

/**
 * Throws FOREIGN_ARCH_UNAVAILABLE unless this host can run the platform's binaries: natively, or
 * through a qemu-user binfmt handler that is enabled and has the fix-binary flag (F), which
 * containers need (the interpreter is opened on the host, not looked up inside the image).
 */
export function checkCanRunArch(
  platform: Platform,
  opts: { hostArch?: string; binfmtDir?: string } = {},
): { emulated: boolean; handler?: string } {
  const target = ociArch(platform).arch;
  const host = opts.hostArch ?? hostOciArch();
  if (runsNatively(host, target)) return { emulated: false };
  const handler = QEMU_HANDLER[target];
  const id = formatPlatform(platform);
  const fix =
    'install qemu-user-static and binfmt-support, then run update-binfmts --enable' +
    (handler ? ` ${handler}` : '') +
    ' (scripts/podman-setup.sh does both)';
  if (!handler) {
    throw new GeneratorError(
      'FOREIGN_ARCH_UNAVAILABLE',
      `cannot run ${id} binaries on this ${host} host: no qemu emulation is known for ${target}`,
    );
  }
  const file = `${opts.binfmtDir ?? '/proc/sys/fs/binfmt_misc'}/${handler}`;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new GeneratorError(
      'FOREIGN_ARCH_UNAVAILABLE',
      `cannot run ${id} binaries on this ${host} host: the binfmt handler ${handler} is not registered (${file} is missing); ${fix}`,
    );
  }
  const lines = text.split('\n');
  if (lines[0]?.trim() !== 'enabled') {
    throw new GeneratorError(
      'FOREIGN_ARCH_UNAVAILABLE',
      `cannot run ${id} binaries on this ${host} host: the binfmt handler ${handler} is disabled; ${fix}`,
    );
  }
  const flags =
    lines
      .find((l) => l.startsWith('flags:'))
      ?.slice('flags:'.length)
      .trim() ?? '';
  if (!flags.includes('F')) {
    throw new GeneratorError(
      'FOREIGN_ARCH_UNAVAILABLE',
      `cannot run ${id} binaries in containers: the binfmt handler ${handler} lacks the fix-binary flag (F) ` +
        `that containers need; re-register it from qemu-user-static (update-binfmts --disable ${handler} && update-binfmts --enable ${handler})`,
    );
  }
  return { emulated: true, handler };
}

/** Image names for a platform's generations, under a namespace such as `localhost/sysattest`. */
export interface ImageNames {
  /** `localhost/sysattest/debian` */
  repository: string;
  /** The moving tag that always names the current generation: `…/debian:bookworm-amd64`. */
  current: string;
  /** One generation's own tag: `…/debian:bookworm-amd64-g3`. */
  generation(n: number): string;
}

export const DEFAULT_IMAGE_NAMESPACE = 'localhost/sysattest';

/** Lower-case repository path component: letters and digits separated by single `-`. */
function repoComponent(s: string): string {
  return s.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'x';
}

/** Tag characters are `[A-Za-z0-9_.-]`, not starting with `.` or `-`. */
function tagComponent(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export function imageNames(platform: Platform, namespace: string = DEFAULT_IMAGE_NAMESPACE): ImageNames {
  if (!/^[a-z0-9][a-z0-9._/:-]*[a-z0-9]$/.test(namespace) || namespace.includes('//')) {
    throw new GeneratorError('INVALID_ARGUMENT', `invalid image namespace ${JSON.stringify(namespace)}`);
  }
  const repository = `${namespace}/${repoComponent(platform.distro)}`;
  const base = `${tagComponent(platform.release)}-${tagComponent(platform.arch)}`;
  return {
    repository,
    current: `${repository}:${base}`,
    generation: (n: number) => `${repository}:${base}-g${n}`,
  };
}
