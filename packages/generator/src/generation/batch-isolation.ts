import type { Diversion, ManifestEntry } from '@sysattest/core';
import type { BuiltManifest } from './manifest-builder.js';

/**
 * When a manifest made in a shared container (many requested packages installed together) cannot
 * be trusted to be the package's own, and the package is generated again alone in a fresh
 * container. Pure rules, tested without podman.
 *
 * What a batch can do to a package's content that installing it alone would not:
 * - another package's maintainer script edits one of its files (or its conffile): the file no
 *   longer matches the digest the package itself shipped (dpkg's md5sums, or the conffile hash in
 *   the status file), which the manifest builder records as a digest mismatch;
 * - another package's maintainer script creates a system user or group first, so the ids the
 *   package's own user gets (adduser --system takes the next free one) depend on the batch;
 * - another package of the batch diverts one of its paths (dpkg-divert).
 * A mismatch that the package's own scripts cause shows up alone too: the second manifest is then
 * signed with the mismatch recorded, as for any package generated alone.
 */

export type IsolationReason = 'digest-mismatch' | 'batch-owner' | 'batch-diversion';

export interface ImageBaseline {
  /** User and group ids the image already had: any other id was allocated in this container. */
  uids: ReadonlySet<number>;
  gids: ReadonlySet<number>;
  /** Names of the packages the image already had installed. */
  installedNames: ReadonlySet<string>;
}

/** Why `built` (made in a container shared with other requested packages) must be made alone. */
export function isolationReason(
  packageName: string,
  built: BuiltManifest,
  diversions: readonly Diversion[],
  baseline: ImageBaseline,
): IsolationReason | undefined {
  if (built.digestMismatches.length > 0) return 'digest-mismatch';
  if (built.manifest.entries.some((e) => ownerMadeInContainer(e, baseline))) return 'batch-owner';
  const paths = new Set(built.manifest.entries.map((e) => e.path));
  if (
    diversions.some(
      (d) => paths.has(d.from) && d.by !== packageName && d.by !== ':' && !baseline.installedNames.has(d.by),
    )
  )
    return 'batch-diversion';
  return undefined;
}

function ownerMadeInContainer(e: ManifestEntry, baseline: ImageBaseline): boolean {
  if (e.type === 'absent' || e.type === 'hardlink') return false;
  return !baseline.uids.has(e.uid) || !baseline.gids.has(e.gid);
}
