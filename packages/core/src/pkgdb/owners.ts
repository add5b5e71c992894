/** Pieces every package-database reader (dpkg, rpm, apk) shares. */

/**
 * A path → owning packages index, built once on first use: directories often have several owners,
 * and a package that lists a path twice is its owner once. `owners(p)` returns a fresh array.
 */
export class OwnerIndex<P extends { files: readonly { path: string }[] }> {
  private index: Map<string, P[]> | undefined;

  constructor(private readonly packages: readonly P[]) {}

  owners(path: string): P[] {
    if (this.index === undefined) {
      const index = new Map<string, P[]>();
      for (const pkg of this.packages) {
        for (const f of pkg.files) {
          const owners = index.get(f.path);
          if (owners === undefined) index.set(f.path, [pkg]);
          else if (owners[owners.length - 1] !== pkg) owners.push(pkg);
        }
      }
      this.index = index;
    }
    return this.index.get(path)?.slice() ?? [];
  }
}

/** The architecture most packages have, ignoring `noarch` and empty ones; undefined when none says. */
export function commonestArch(packages: readonly { architecture: string }[]): string | undefined {
  const counts = new Map<string, number>();
  for (const p of packages) {
    if (p.architecture !== 'noarch' && p.architecture !== '') {
      counts.set(p.architecture, (counts.get(p.architecture) ?? 0) + 1);
    }
  }
  let best: string | undefined;
  for (const [arch, n] of counts) if (best === undefined || n > (counts.get(best) ?? 0)) best = arch;
  return best;
}
