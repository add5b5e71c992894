/**
 * Which generation and catalog code serves a platform, by its distribution's package family:
 * apt/dpkg (Debian, Ubuntu) → debian-generator; dnf/rpm (Fedora, RHEL and rebuilds) and apk
 * (Alpine) → rpm-apk-generator. `generate`, `catalog` and the worker all go through here, so the
 * three agree on what each family supports.
 */
import {
  formatPlatform,
  packageFamily,
  type PackageManagerName,
  type Platform,
  type SigningKey,
} from '@sysattest/core';
import { GeneratorError } from '../errors.js';
import type { PlatformImage } from '../image/state.js';
import type { Podman } from '../podman/podman.js';
import { catalogDebian, generateDebian } from './debian-generator.js';
import type { ManifestOutput } from './manifest-sink.js';
import type { GenerationEvent, GenerationResult } from './results.js';
import { catalogRpmApk, generateRpmApk } from './rpm-apk-generator.js';

/** The package family of a platform; UNSUPPORTED_PLATFORM for a distribution we do not know. */
export function platformFamily(platform: Platform): PackageManagerName {
  const family = packageFamily(platform.distro);
  if (family === undefined) {
    throw new GeneratorError(
      'UNSUPPORTED_PLATFORM',
      `${formatPlatform(platform)}: unknown distribution ${JSON.stringify(platform.distro)}; generation is ` +
        'implemented for debian and ubuntu (apt), fedora, rhel, centos, rocky and almalinux (dnf), alpine (apk)',
    );
  }
  return family;
}

/** The family's package manager, as messages name it. */
export function packageManagerName(family: PackageManagerName): string {
  return family === 'dpkg' ? 'apt' : family === 'rpm' ? 'dnf' : 'apk';
}

/** What the family's own per-file digest is called, as messages name it. */
export function distroDigestName(family: PackageManagerName): string {
  return family === 'dpkg' ? 'md5sums' : family === 'rpm' ? 'rpm file digests' : 'apk Z: checksums';
}

/** Packages per container for rpm and apk, whatever the caller asks (see generateForPlatform). */
const RPM_APK_BATCH_SIZE = 25;

export interface PlatformRequest {
  name: string;
  /** Exact version; Debian only: undefined means the newest the image offers. */
  version?: string;
  /** rpm: the package architecture (`x86_64`, `noarch`); Debian and apk: ignored. */
  arch?: string;
}

export type PlatformGenerationOptions = PlatformGenerationSettings & ManifestOutput;

interface PlatformGenerationSettings {
  platform: Platform;
  image: PlatformImage;
  podman: Podman;
  key: SigningKey;
  requests: PlatformRequest[];
  withDeps?: boolean;
  jobs?: number;
  batchSize?: number;
  /** Debian: the platform's shared apt download cache (a host directory); others: ignored. */
  aptCache?: string;
  network?: string;
  signal?: AbortSignal;
  onEvent?: (e: GenerationEvent) => void;
}

/**
 * Generates on the platform's image with its family's code. rpm and apk need an exact version
 * per request (INVALID_ARGUMENT naming those without): picking the newest is Debian's only.
 */
export async function generateForPlatform(opts: PlatformGenerationOptions): Promise<GenerationResult> {
  const family = platformFamily(opts.platform);
  const { requests, aptCache, ...common } = opts;
  if (family === 'dpkg') {
    return generateDebian({
      ...common,
      ...(aptCache !== undefined ? { aptCache } : {}),
      requests: requests.map((r) =>
        r.version === undefined ? { name: r.name } : { name: r.name, version: r.version },
      ),
    });
  }
  const unversioned = requests.filter((r) => r.version === undefined).map((r) => r.name);
  if (unversioned.length > 0) {
    throw new GeneratorError(
      'INVALID_ARGUMENT',
      `${formatPlatform(opts.platform)}: give an exact version for ${unversioned.join(', ')} (PACKAGE=VERSION): ` +
        `choosing the newest version is implemented for apt platforms only`,
    );
  }
  return generateRpmApk({
    ...common,
    // rpm and apk have no batch isolation (batch-isolation.ts) yet: their batches stay as small
    // as before Debian's grew.
    batchSize: Math.min(common.batchSize ?? RPM_APK_BATCH_SIZE, RPM_APK_BATCH_SIZE),
    family,
    requests: requests.map((r) => ({
      name: r.name,
      version: r.version as string,
      ...(family === 'rpm' && r.arch !== undefined ? { arch: r.arch } : {}),
    })),
  });
}

/**
 * The platform's signed catalog from its image. Debian: the image's apt lists as they are (the
 * caller refreshes the image first with `image refresh`). rpm/apk: with `refresh`, a container
 * of the image runs `dnf makecache --refresh` / `apk update` first and the catalog is read from
 * it (the image is unchanged); without, the metadata cached in the image as it is.
 */
export async function catalogForPlatform(opts: {
  platform: Platform;
  image: PlatformImage;
  podman: Podman;
  key: SigningKey;
  network?: string;
  signal?: AbortSignal;
  refresh?: boolean;
}): Promise<Awaited<ReturnType<typeof catalogDebian>>> {
  const family = platformFamily(opts.platform);
  const { refresh, ...rest } = opts;
  if (family === 'dpkg') return catalogDebian(rest);
  return catalogRpmApk({ ...rest, family, refresh: Boolean(refresh) });
}
