import type { Diversion, FileObservation, InstalledPackage, ManifestEntry } from '@sysattest/core';
import { compareEntries, compareEntry, type Finding, type LocalFileState } from './compare.js';
import type { HashRuns } from './hash-runs.js';
import { judgeStatOverride, locationUnder, type Accounts, type LocalClaimPolicy } from './local-claims.js';
import type { StatOverride } from './statoverride.js';

/** A package whose manifest verified: only its entries are kept (the bytes go once cached). */
export interface Checked {
  pkg: InstalledPackage;
  entries: readonly ManifestEntry[];
}

/** A chunk's paths hashed before its manifests were opened (see ChunkChecker.hashAhead). */
export interface HashedAhead {
  indexOf: ReadonlyMap<string, number>;
  observations: Promise<FileObservation[]>;
}

export interface ChunkCheckOptions {
  runs: HashRuns;
  /** The machine's diversions by `from` (claims: judged once every manifest is known). */
  diversions: ReadonlyMap<string, Diversion>;
  overrides: ReadonlyMap<string, StatOverride>;
  accounts: Accounts;
  policy: LocalClaimPolicy;
  includeConfig?: boolean;
  /** Collect every location the manifests name (for the unowned scan). */
  collectPaths: boolean;
  localState(pkg: InstalledPackage): ((path: string) => LocalFileState | undefined) | undefined;
  /** Whether a directory is a mount point on this root (see compare.ts narrowerMountPoint). */
  isMountPoint?: (location: string) => boolean;
}

/** An entry at a path another package's diversion claims: compared once the claim is judged. */
interface Deferred {
  pkg: InstalledPackage;
  entry: ManifestEntry;
  diversion: Diversion;
}

/**
 * Hashes and compares the verified manifests of a chunk of packages with the disk. Every
 * expectation comes from the manifest; the machine's stat overrides are judged per entry
 * (local-claims.ts). An entry at a path another package's diversion claims is set aside: whether
 * that diversion is honoured depends on manifests not all verified yet, so such entries (a
 * handful per machine) are hashed and compared at the end (finishDiverted), at the location the
 * judgement gives.
 */
export class ChunkChecker {
  filesChecked = 0;
  readonly findings: Finding[] = [];
  /** With collectPaths: every location the verified manifests name. */
  readonly manifestPaths: string[] = [];
  private readonly deferred: Deferred[] = [];
  /** Directory metadata findings held back, and directories some manifest lists as they are (see keep). */
  private readonly heldDirs: Finding[] = [];
  private readonly dirsAsListed = new Set<string>();
  private readonly allowed: ReadonlySet<string>;

  constructor(private readonly options: ChunkCheckOptions) {
    this.allowed = new Set(options.policy.allowStatOverrides ?? []);
  }

  /**
   * Hashing ahead of the manifests: `paths` (the package database's lists of packages whose
   * manifest the cache holds) are hashed while the manifests are still being opened. The database
   * only chooses what to read early: what the manifests then name is compared, and what no
   * verified manifest names is dropped.
   */
  hashAhead(paths: Iterable<string>): HashedAhead {
    const indexOf = new Map<string, number>();
    const list: string[] = [];
    for (const p of paths) {
      if (indexOf.has(p)) continue;
      indexOf.set(p, list.length);
      list.push(p);
    }
    const observations = this.options.runs.run(list);
    observations.catch(() => undefined); // awaited by check
    return { indexOf, observations };
  }

  /** Hashes every path of a chunk's manifests (beyond what was hashed ahead), and compares. */
  async check(chunk: readonly Checked[], ahead: HashedAhead): Promise<void> {
    const early = await ahead.observations;
    // Each entry's observation slot: >= 0 is early[slot]; < 0 is later[-1 - slot], a path hashed
    // now (each once: directories are shared by many packages).
    const laterIndex = new Map<string, number>();
    const laterPaths: string[] = [];
    const placed = chunk.map(({ pkg, entries }) => {
      const own = this.setAside(pkg, entries);
      const slots = new Int32Array(own.length);
      for (let k = 0; k < own.length; k++) {
        const p = (own[k] as ManifestEntry).path;
        let slot = ahead.indexOf.get(p);
        if (slot === undefined) {
          let j = laterIndex.get(p);
          if (j === undefined) {
            j = laterPaths.length;
            laterIndex.set(p, j);
            laterPaths.push(p);
          }
          slot = -1 - j;
        }
        slots[k] = slot;
        if (this.options.collectPaths) this.manifestPaths.push(p);
      }
      return { own, slots };
    });
    laterIndex.clear();
    const later = await this.options.runs.run(laterPaths);
    chunk.forEach(({ pkg }, c) => {
      const { own, slots } = placed[c] as (typeof placed)[number];
      this.filesChecked += own.length;
      const expected =
        this.options.overrides.size === 0 ? own : own.map((e) => this.overridden(pkg, e, e.path));
      const localState = this.options.localState(pkg);
      const found = compareEntries(
        { name: pkg.name, arch: pkg.architecture },
        expected,
        (_location, k) => {
          const slot = slots[k] as number;
          return slot >= 0 ? early[slot] : later[-1 - slot];
        },
        {
          includeConfig: this.options.includeConfig,
          accounts: this.options.accounts,
          ...(localState === undefined ? {} : { localState }),
          ...(this.options.isMountPoint === undefined ? {} : { isMountPoint: this.options.isMountPoint }),
        },
      );
      this.keep(own, found);
    });
  }

  /**
   * A package's findings, except a directory's metadata: a directory several packages list
   * (`/usr/share/polkit-1/rules.d` of systemd, polkitd and packagekit) is made as the last of
   * their maintainer scripts leaves it, so a mismatch with one package's manifest is held back
   * until every manifest is compared, and dropped when another verified manifest lists the
   * directory exactly as it is (see finishDirectories).
   */
  private keep(entries: readonly ManifestEntry[], found: readonly Finding[]): void {
    let dirs: Set<string> | undefined;
    for (const e of entries) if (e.type === 'dir') (dirs ??= new Set()).add(e.path);
    if (dirs === undefined) {
      for (const f of found) this.findings.push(f);
      return;
    }
    const differing = new Set<string>();
    for (const f of found) {
      if (f.path !== undefined && dirs.has(f.path)) differing.add(f.path);
      if (f.class === 'metadata' && f.path !== undefined && dirs.has(f.path)) this.heldDirs.push(f);
      else this.findings.push(f);
    }
    for (const d of dirs) if (!differing.has(d)) this.dirsAsListed.add(d);
  }

  /**
   * The directory metadata findings held back, except where another verified manifest lists the
   * directory exactly as it is on disk: a signed manifest vouches for that state.
   */
  finishDirectories(): void {
    for (const f of this.heldDirs) if (!this.dirsAsListed.has(f.path as string)) this.findings.push(f);
    this.heldDirs.length = 0;
  }

  /** The paths of the entries set aside so far (paths another package's diversion claims). */
  divertedPaths(): Set<string> {
    return new Set(this.deferred.map((d) => d.entry.path));
  }

  /** The entries compared now; those at a path another package's diversion claims wait. */
  private setAside(pkg: InstalledPackage, entries: readonly ManifestEntry[]): readonly ManifestEntry[] {
    const diversions = this.options.diversions;
    if (diversions.size === 0) return entries;
    let own: ManifestEntry[] | undefined;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as ManifestEntry;
      const d = diversions.get(e.path);
      if (d === undefined || d.by === pkg.name) {
        own?.push(e);
        continue;
      }
      own ??= entries.slice(0, k);
      this.deferred.push({ pkg, entry: e, diversion: d });
    }
    return own ?? entries;
  }

  /** The entry as expected under its stat override, if any (judged: local-claims.ts). */
  private overridden(pkg: InstalledPackage, e: ManifestEntry, location: string): ManifestEntry {
    const o = this.options.overrides.get(location) ?? this.options.overrides.get(e.path);
    if (o === undefined) return e;
    const pkgRef = { name: pkg.name, arch: pkg.architecture };
    const judged = judgeStatOverride(
      pkgRef,
      e,
      location,
      o,
      this.options.accounts,
      this.allowed.has(location),
    );
    if (judged.finding !== undefined) this.findings.push(judged.finding);
    return judged.entry;
  }

  /**
   * Compares the entries set aside, once the diversions are judged: at the divert-to path when
   * the diversion is honoured, else at the path the package ships (where a trojan hidden by a
   * forged diversion sits).
   */
  async finishDiverted(honoured: ReadonlyMap<string, Diversion>): Promise<void> {
    const located = this.deferred.map((d) => ({
      ...d,
      location: locationUnder(honoured, d.entry.path, d.pkg.name),
    }));
    this.deferred.length = 0;
    const observations = await this.options.runs.run(located.map((d) => d.location));
    located.forEach(({ pkg, entry, location }, i) => {
      this.filesChecked++;
      if (this.options.collectPaths) this.manifestPaths.push(location);
      const localState = this.options.localState(pkg);
      const found = compareEntry(
        { name: pkg.name, arch: pkg.architecture },
        this.overridden(pkg, entry, location),
        observations[i],
        {
          includeConfig: this.options.includeConfig,
          accounts: this.options.accounts,
          location,
          ...(localState === undefined ? {} : { localState }),
          ...(this.options.isMountPoint === undefined ? {} : { isMountPoint: this.options.isMountPoint }),
        },
      );
      for (const f of found) this.findings.push(f);
    });
  }
}
