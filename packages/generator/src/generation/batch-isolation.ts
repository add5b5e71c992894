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
 * - another package's maintainer script creates a system user or group and gives one of the
 *   package's paths to it: an owner the image did not have, which no script of the package or of
 *   its dependencies names (account-origins.ts). An account the package's own scripts (or its
 *   dependencies') create exists alone too, only perhaps with another id: the client compares
 *   owners by name, so that manifest is kept. Not caught: another package giving the package's
 *   path to an account the package itself creates, or changing only a mode (no digest covers
 *   owners or modes; that would need the .deb's own listing);
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

/**
 * Whether the scripts of the package (or of a package it depends on) name `account`: it would
 * exist if the package were installed alone (AccountOrigins.names).
 */
export type OwnAccount = (account: string) => boolean;

/** Why `built` (made in a container shared with other requested packages) must be made alone. */
export function isolationReason(
  packageName: string,
  built: BuiltManifest,
  diversions: readonly Diversion[],
  baseline: ImageBaseline,
  ownAccount: OwnAccount = () => false,
): IsolationReason | undefined {
  if (built.digestMismatches.length > 0) return 'digest-mismatch';
  if (built.manifest.entries.some((e) => ownerFromBatch(e, baseline, ownAccount))) return 'batch-owner';
  const paths = new Set(built.manifest.entries.map((e) => e.path));
  if (
    diversions.some(
      (d) => paths.has(d.from) && d.by !== packageName && d.by !== ':' && !baseline.installedNames.has(d.by),
    )
  )
    return 'batch-diversion';
  return undefined;
}

/**
 * An owner the container allocated (the image did not have the id) that the package's own
 * scripts do not account for. An id without a name in the container's accounts is never the
 * package's own: the client could only compare its number, which depends on the batch.
 */
function ownerFromBatch(e: ManifestEntry, baseline: ImageBaseline, ownAccount: OwnAccount): boolean {
  if (e.type === 'absent' || e.type === 'hardlink') return false;
  const foreign = (known: boolean, name: string | undefined) =>
    !known && (name === undefined || !ownAccount(name));
  return foreign(baseline.uids.has(e.uid), e.user) || foreign(baseline.gids.has(e.gid), e.group);
}
