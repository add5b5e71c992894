import { SysattestError } from '@sysattest/core';

/**
 * Failures the generator expects. The message is one line that says what went wrong and, where
 * the fix is known, how to fix it; callers switch on `code`.
 */
export type GeneratorErrorCode =
  /** The podman binary is not installed (or not at the configured path). */
  | 'PODMAN_MISSING'
  /** podman is installed but cannot run containers on this host (runtime, rlimits, storage…). */
  | 'PODMAN_MISCONFIGURED'
  /** A podman command failed; the message carries the command and the tail of its stderr. */
  | 'PODMAN_FAILED'
  /** A podman (or mmdebstrap) command ran longer than its time limit and was killed. */
  | 'PODMAN_TIMEOUT'
  /** A host tool other than podman (mmdebstrap, qemu binfmt handlers…) is missing. */
  | 'TOOL_MISSING'
  /** A foreign architecture cannot run here (no qemu binfmt handler registered). */
  | 'FOREIGN_ARCH_UNAVAILABLE'
  /** The platform cannot be built from the distribution's archive here (yet). */
  | 'UNSUPPORTED_PLATFORM'
  /** No image for the platform, or the image a state file names is gone from podman. */
  | 'IMAGE_NOT_FOUND'
  /** An image for the platform exists already (build without --force). */
  | 'IMAGE_EXISTS'
  /** Another generator process is building, refreshing or removing the same platform. */
  | 'IMAGE_BUSY'
  /** Building an image failed (mmdebstrap, import, or the image is not what the platform says). */
  | 'BUILD_FAILED'
  /** Refreshing an image failed (apt update/upgrade inside, commit). */
  | 'REFRESH_FAILED'
  /** The generator's state file is unreadable, too large or not what this version writes. */
  | 'STATE_CORRUPT'
  /** The state file or directory could not be read or written. */
  | 'STATE_IO'
  /** A bad option value (the CLI's own parsing catches most). */
  | 'INVALID_ARGUMENT'
  /** The package is not in the platform's repositories. */
  | 'UNKNOWN_PACKAGE'
  /** The package is, but not at the version asked for (the message lists the versions offered). */
  | 'UNKNOWN_VERSION'
  /** Installing or observing a package failed. */
  | 'GENERATION_FAILED'
  /** Writing a manifest or catalog file failed (disk full, permissions…). */
  | 'OUTPUT_FAILED'
  /** Stopped by Ctrl-C / SIGTERM / an AbortSignal; containers and temporary files were removed. */
  | 'INTERRUPTED'
  /** Reading a platform's catalog (apt lists…) failed (used by the catalog code). */
  | 'CATALOG_FAILED';

export class GeneratorError extends SysattestError<GeneratorErrorCode> {}

export function isGeneratorError(e: unknown, code?: GeneratorErrorCode): e is GeneratorError {
  return e instanceof GeneratorError && (code === undefined || e.code === code);
}
