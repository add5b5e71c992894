/**
 * The data the store and HTTP benchmarks share: 1,000 signed manifests (700 packages, 300 of them
 * in two versions, ~100 files each, most files unchanged between versions, a few contents shared
 * by many packages), a catalog listing them among 4,700 packages, a 750-package machine (700 with
 * manifests, 30 pending, 20 unknown to the catalog) and 100,000 hashes to reverse-look-up.
 * Deterministic apart from the signatures and the random hashes nobody ships.
 */
import { randomBytes } from 'node:crypto';
import type { VerifiedManifest } from '@sysattest/core';
import type { LookupItem } from '../store/lookup.js';
import type { TestFile, TestGenerator, TestPackage } from '../testkit/store.js';

export const PLATFORM = 'debian/bookworm/amd64';
/** 700 packages, 300 of them in two versions: 1,000 manifests. */
export const PACKAGES = 700;
export const TWO_VERSIONS = 300;
export const LOOKUP_RUNS = 50;
export const REVERSE_HASHES = 100_000;

/** Deterministic pseudo-random numbers, so every run and dialect sees the same data. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export interface Dataset {
  manifests: VerifiedManifest[];
  catalog: Awaited<ReturnType<TestGenerator['catalog']>>;
  machine: LookupItem[];
  hashes: string[];
  entries: number;
  files: number;
}

export async function makeDataset(gen: TestGenerator): Promise<Dataset> {
  const random = rng(42);
  const shared = ['', 'GPL-2 licence text', 'Apache-2.0 licence text', 'MIT licence text'];
  const manifests: VerifiedManifest[] = [];
  const catalogPackages: TestPackage[] = [];
  let entries = 0;
  let files = 0;
  for (let p = 0; p < PACKAGES; p++) {
    const name = `bench-pkg-${p}`;
    const count = 20 + Math.floor(random() * 161); // 20..180 files, ~100 on average
    const changed = new Set<number>();
    for (let f = 0; f < count; f++) if (random() < 0.3) changed.add(f);
    const versions = p < TWO_VERSIONS ? ['1.0-1', '1.0-1+deb12u1'] : ['1.0-1'];
    for (const [v, version] of versions.entries()) {
      const list: TestFile[] = [];
      for (let f = 0; f < count; f++) {
        const path = `/usr/lib/${name}/${f % 7 === 0 ? 'share/' : ''}file-${String(f).padStart(3, '0')}`;
        const content =
          f % 25 === 0
            ? shared[f % shared.length]
            : `${name} file ${f} ${v === 1 && changed.has(f) ? 'v2' : 'v1'}`;
        list.push({ path, content });
      }
      list.push({ path: `/usr/share/doc/${name}/copyright`, content: `${name} copyright` });
      const m = await gen.manifest(PLATFORM, { name, version }, list);
      manifests.push(m);
      entries += m.content.entries.length;
      files += list.length;
      catalogPackages.push({ name, version });
    }
  }
  // The catalog: our packages plus the rest of a distribution's worth of names.
  for (let i = 0; i < 4000; i++) catalogPackages.push({ name: `other-${i}`, version: `2.${i}-1` });
  const catalog = await gen.catalog(PLATFORM, '2026-11-20T00:00:00Z', catalogPackages);

  const machine: LookupItem[] = [];
  for (let p = 0; p < PACKAGES; p++) {
    machine.push({
      name: `bench-pkg-${p}`,
      version: p < TWO_VERSIONS ? '1.0-1+deb12u1' : '1.0-1',
      arch: 'amd64',
    });
  }
  for (let i = 0; i < 30; i++) machine.push({ name: `other-${i}`, version: `2.${i}-1`, arch: 'amd64' });
  for (let i = 0; i < 20; i++) machine.push({ name: `local-build-${i}`, version: '0.1', arch: 'amd64' });

  // Hashes a client might ask about: every stored content, then random ones nobody ships.
  const known = new Set<string>();
  for (const m of manifests) for (const e of m.content.entries) if (e.type === 'file') known.add(e.sha256);
  const hashes = [...known];
  while (hashes.length < REVERSE_HASHES) hashes.push(randomBytes(32).toString('hex'));
  return { manifests, catalog, machine, hashes: hashes.slice(0, REVERSE_HASHES), entries, files };
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
