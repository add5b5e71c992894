import { randomBytes } from 'node:crypto';
import type { Platform } from '@sysattest/core';
import type { PlatformImage } from '../image/state.js';
import type { Podman } from '../podman/index.js';
import type { GenerationTiming } from './results.js';

/** What a generation container needs: the platform image, podman, and how to run it. */
export interface ContainerOptions {
  podman: Podman;
  image: PlatformImage;
  platform: Platform;
  network?: string;
  signal?: AbortSignal;
  /** Host directories bind-mounted into the container (the shared apt download cache). */
  volumes?: { host: string; container: string }[];
}

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
  /** Host path of the container's root filesystem (mounted after the command ended). */
  mount: string;
}

/**
 * A labelled container of the platform image whose one command is `command` (no shell), run to
 * its end and mounted for `use`; removed whatever happens. Without a command, the container is
 * only created and mounted: the image's files as they are, with nothing run. A command the image
 * does not have (an image without dnf or apk) throws PODMAN_FAILED saying so.
 */
export async function inContainer<T>(
  opts: ContainerOptions,
  command: string[] | undefined,
  result: GenerationTiming,
  use: (ran: Ran) => Promise<T>,
): Promise<T> {
  const { podman, signal } = opts;
  const t0 = Date.now();
  const container = await podman.createContainer(opts.image.imageId, {
    name: `sysattest-gen-${randomBytes(5).toString('hex')}`,
    // Never started without a command; podman needs one to create the container.
    command: command ?? ['/bin/true'],
    network: opts.network,
    ...(opts.volumes ? { volumes: opts.volumes } : {}),
    labels: {
      'sysattest.platform': `${opts.platform.distro}/${opts.platform.release}/${opts.platform.arch}`,
      'sysattest.purpose': 'generate',
    },
    signal,
  });
  result.podmanMs += Date.now() - t0;
  try {
    let r = { code: 0, stdout: '', stderr: '' };
    if (command !== undefined) {
      const started = Date.now();
      r = await podman.startAttached(container, { signal, timeoutMs: 60 * 60 * 1000 });
      result.packageManagerMs += Date.now() - started;
    }
    const t = Date.now();
    const mount = await podman.mount(container, { signal });
    result.podmanMs += Date.now() - t;
    return await use({ code: r.code, stdout: r.stdout, stderr: r.stderr, mount });
  } finally {
    const t = Date.now();
    await podman.unmount(container).catch(() => {});
    await podman.removeContainer(container).catch(() => {});
    result.podmanMs += Date.now() - t;
  }
}
