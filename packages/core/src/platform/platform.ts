import { PlatformError } from '../errors.js';

/**
 * A platform: one distribution release on one architecture, `distro/release/arch`
 * (`debian/bookworm/amd64`, `fedora/41/x86_64`, `alpine/3.20/aarch64`). Architecture-independent
 * packages live on the `all` platform of their release (`debian/bookworm/all`). Every manifest,
 * catalog and generator image belongs to exactly one platform.
 */
export interface Platform {
  /** os-release `ID` (`debian`, `ubuntu`, `fedora`, `rhel`, `alpine`, or a derivative's own). */
  distro: string;
  /** Codename for Debian and Ubuntu (`bookworm`, `noble`); version for the others (`41`, `9`, `3.20`). */
  release: string;
  /** The package manager's name for the architecture (`amd64` for dpkg, `x86_64` for rpm and apk). */
  arch: string;
}

/** Longest accepted component; the manifest schema uses the same bound. */
export const PLATFORM_COMPONENT_MAX_LENGTH = 64;

const COMPONENT = /^[a-z0-9][a-z0-9._+-]*$/;
const PARTS = ['distro', 'release', 'arch'] as const;

/** Why `value` is not a valid platform component, or undefined when it is. */
function componentProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty';
  if (value.length > PLATFORM_COMPONENT_MAX_LENGTH) {
    return `is longer than ${PLATFORM_COMPONENT_MAX_LENGTH} characters`;
  }
  if (!COMPONENT.test(value)) {
    return 'is not lower-case letters, digits and . _ + - starting with a letter or digit';
  }
  return undefined;
}

function show(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 80)}…` : s);
}

/** What is wrong with the first bad part of `p`, as `the <part> "<value>" <problem>`. */
function platformProblem(p: Platform): string | undefined {
  for (const part of PARTS) {
    const value: unknown = p[part];
    if (typeof value !== 'string') return `the ${part} is not a string`;
    const problem = componentProblem(value);
    if (problem !== undefined) return `the ${part} ${show(value)} ${problem}`;
  }
  return undefined;
}

/** Throws INVALID_PLATFORM naming the part that is wrong, unless every part is valid. */
export function validatePlatform(p: Platform): void {
  const problem = platformProblem(p);
  if (problem !== undefined) throw new PlatformError('INVALID_PLATFORM', `invalid platform: ${problem}`);
}

/** Parses `distro/release/arch`; throws INVALID_PLATFORM saying which part is wrong. */
export function parsePlatform(id: string): Platform {
  if (typeof id !== 'string') throw new PlatformError('INVALID_PLATFORM', 'a platform id must be a string');
  if (id.length > 3 * PLATFORM_COMPONENT_MAX_LENGTH + 2) {
    throw new PlatformError('INVALID_PLATFORM', `invalid platform id ${show(id)}: it is too long`);
  }
  const parts = id.split('/');
  if (parts.length !== 3) {
    throw new PlatformError(
      'INVALID_PLATFORM',
      `invalid platform id ${show(id)}: expected distro/release/arch (three parts), got ${parts.length}`,
    );
  }
  const [distro = '', release = '', arch = ''] = parts;
  const platform = { distro, release, arch };
  const problem = platformProblem(platform);
  if (problem !== undefined)
    throw new PlatformError('INVALID_PLATFORM', `invalid platform id ${show(id)}: ${problem}`);
  return platform;
}

/** `distro/release/arch`; throws INVALID_PLATFORM for a platform that would not parse back. */
export function formatPlatform(p: Platform): string {
  validatePlatform(p);
  return `${p.distro}/${p.release}/${p.arch}`;
}

export function isValidPlatformId(id: string): boolean {
  try {
    parsePlatform(id);
    return true;
  } catch (e) {
    if (e instanceof PlatformError) return false;
    throw e;
  }
}

/** True when `value` may be used as one part of a platform id. */
export function isValidPlatformComponent(value: string): boolean {
  return typeof value === 'string' && componentProblem(value) === undefined;
}
