export {
  Podman,
  podmanMisconfiguration,
  PODMAN_INSTALL_HINT,
  PODMAN_SETUP_HINT,
  SYSATTEST_LABEL,
  SYSATTEST_LABEL_FILTER,
  SYSATTEST_LABEL_VALUE,
  type CommandOptions,
  type ContainerSummary,
  type CreateContainerOptions,
  type ExecOptions,
  type ExecResult,
  type ImageInfo,
  type ImportOptions,
  type PodmanInfo,
  type PodmanOptions,
  type RunOptions,
} from './podman.js';
export { withInterrupt, throwIfAborted, type InterruptOptions } from './interrupt.js';
export { spawnCapture, stderrTail, describeCommand, type SpawnOptions, type SpawnResult } from './process.js';
export { makeTempDir, removeTempDir, mountsUnder, TEMP_PREFIX } from './tempdir.js';
