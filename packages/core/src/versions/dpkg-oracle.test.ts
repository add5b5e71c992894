/**
 * The oracle test: thousands of real version pairs from this machine's Debian package lists,
 * ordered by us and checked against `dpkg --compare-versions`.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import {
  compareDpkgVersionParts,
  compareDpkgVersions,
  dpkgVersionScheme,
  parseDpkgVersion,
  type DpkgVersion,
} from './dpkg.js';
import {
  createRng,
  dpkgCompareBatch,
  dpkgSign,
  isShellSafeVersion,
  loadDpkgVersionCorpus,
  randomDpkgVersion,
  relationOf,
  requireDpkg,
  testSeed,
  type Rng,
  type VersionCorpus,
} from '../testkit/versions.js';

/** Fewer real pairs than this and the test fails: it must not pass on an empty machine. */
const MIN_REAL_PAIRS = 1000;
const TARGET_REAL_PAIRS = 4000;
const TARGET_DERIVED_PAIRS = 700;
const TARGET_FUZZ_PAIRS = 300;

class PairSet {
  readonly pairs: [string, string][] = [];
  private readonly keys = new Set<string>();
  constructor(private readonly exclude?: PairSet) {}

  /** Adds the unordered pair unless it is already here (or in `exclude`); true if added. */
  add(a: string, b: string): boolean {
    const key = a < b ? `${a}\n${b}` : `${b}\n${a}`;
    if (this.keys.has(key) || this.exclude?.keys.has(key)) return false;
    this.keys.add(key);
    this.pairs.push([a, b]);
    return true;
  }
  get size(): number {
    return this.pairs.length;
  }
}

/** Variants of a real version that differ from it only by a ~, an epoch, zeros, a suffix… */
function variantsOf(v: string, rng: Rng): string[] {
  const { epoch, upstream, revision } = parseDpkgVersion(v);
  const rev = revision === '' ? '' : `-${revision}`;
  const withEpoch = (e: number): string => `${e}:${upstream}${rev}`;
  const out = [
    `${v}~`,
    `${v}~~`,
    `${v}~a`,
    `${v}+b1`,
    `${v}.0`,
    `${v}a`,
    `${epoch === 0 ? '' : `${epoch}:`}${upstream}~${rev}`, // ~ at the end of the upstream part
    `${epoch === 0 ? '' : `${epoch}:`}${upstream}${revision === '' ? '-0' : `-${revision}~`}`,
    withEpoch(epoch), // explicit epoch (0: when there was none): equal
    withEpoch(epoch + 1),
    `${epoch === 0 ? '' : `${epoch}:`}${upstream.replace(/[0-9]+/, (d) => `0${d}`)}${rev}`, // equal
  ];
  if (epoch > 0) out.push(`${upstream}${rev}`, withEpoch(epoch - 1));
  // Hyphens: move the last upstream/revision boundary.
  if (revision !== '') out.push(`${upstream}-${revision}-1`, `${upstream}.${revision}`);
  return [rng.pick(out), rng.pick(out), rng.pick(out)];
}

interface Collected {
  real: PairSet;
  derived: PairSet;
  fuzz: PairSet;
  notes: string[];
}

function collectPairs(corpus: VersionCorpus, rng: Rng): Collected {
  const real = new PairSet();
  const notes: string[] = [];
  const usable = corpus.versions.filter((v) => dpkgVersionScheme.isValid(v) && isShellSafeVersion(v));

  // 1. The same package's versions across lists (stable, security, updates, installed).
  const multi = [...corpus.byPackage.values()].filter((vs) => vs.length > 1);
  let samePackage = 0;
  for (const vs of multi) {
    for (let i = 0; i < vs.length && samePackage < TARGET_REAL_PAIRS * 0.3; i++) {
      for (let j = i + 1; j < vs.length && j < i + 4; j++) {
        if (isShellSafeVersion(vs[i] as string) && isShellSafeVersion(vs[j] as string)) {
          if (real.add(vs[i] as string, vs[j] as string)) samePackage++;
        }
      }
    }
  }

  // 2. Neighbours after sorting everything: the closest calls there are.
  const parsed: [string, DpkgVersion][] = usable.map((v) => [v, parseDpkgVersion(v)]);
  parsed.sort((x, y) => compareDpkgVersionParts(x[1], y[1]));
  let neighbours = 0;
  const neighbourTarget = Math.min(parsed.length - 1, TARGET_REAL_PAIRS * 0.3);
  for (let tries = 0; neighbours < neighbourTarget && tries < neighbourTarget * 4; tries++) {
    const i = rng.int(parsed.length - 1);
    if (real.add((parsed[i] as [string, DpkgVersion])[0], (parsed[i + 1] as [string, DpkgVersion])[0]))
      neighbours++;
  }

  // 3. Random pairs.
  let random = 0;
  for (
    let tries = 0;
    real.size < TARGET_REAL_PAIRS && tries < TARGET_REAL_PAIRS * 4 && usable.length > 1;
    tries++
  ) {
    const a = rng.pick(usable);
    const b = rng.pick(usable);
    if (a !== b && real.add(a, b)) random++;
  }
  notes.push(
    `${corpus.versions.length} distinct versions of ${corpus.byPackage.size} packages from ` +
      corpus.sources.map((s) => `${s.file} (${s.versions})`).join(', '),
    `real pairs: ${samePackage} same-package, ${neighbours} sort neighbours, ${random} random`,
  );

  // 4. Real versions against variants that differ only by a ~, an epoch, zeros or a suffix.
  const derived = new PairSet(real);
  for (
    let tries = 0;
    derived.size < TARGET_DERIVED_PAIRS && tries < TARGET_DERIVED_PAIRS * 4 && usable.length > 0;
    tries++
  ) {
    const v = rng.pick(usable);
    for (const w of variantsOf(v, rng)) {
      assert.ok(dpkgVersionScheme.isValid(w), `test bug: variant ${w} of ${v} is not valid`);
      derived.add(v, w);
    }
  }

  // 5. Generated versions from a tiny alphabet: ties, ~ runs, long digit runs, leading zeros.
  const fuzz = new PairSet(real);
  for (let tries = 0; fuzz.size < TARGET_FUZZ_PAIRS && tries < TARGET_FUZZ_PAIRS * 4; tries++) {
    const a = randomDpkgVersion(rng);
    const b = rng.chance(0.5)
      ? randomDpkgVersion(rng)
      : `${a}${rng.pick(['~', '', '0', '.0', '-0', 'a', '~~'])}`;
    assert.ok(dpkgVersionScheme.isValid(a), `test bug: generated ${a} is not valid`);
    assert.ok(dpkgVersionScheme.isValid(b), `test bug: generated ${b} is not valid`);
    fuzz.add(a, b);
  }
  notes.push(`derived pairs: ${derived.size}, generated pairs: ${fuzz.size}`);
  return { real, derived, fuzz, notes };
}

let corpus: VersionCorpus;

before(async () => {
  requireDpkg();
  corpus = await loadDpkgVersionCorpus();
});

describe('dpkg compare agrees with dpkg --compare-versions', () => {
  it('on the real versions of this machine and variants of them', async (t) => {
    const started = performance.now();
    const seed = testSeed();
    const { real, derived, fuzz, notes } = collectPairs(corpus, createRng(seed));
    for (const n of notes) t.diagnostic(n);

    assert.ok(
      real.size >= MIN_REAL_PAIRS,
      `only ${real.size} distinct real version pairs could be collected (at least ${MIN_REAL_PAIRS} needed) ` +
        `from ${corpus.sources.map((s) => s.file).join(', ') || 'no files at all'}: ` +
        'run `apt-get update` as root so that /var/lib/apt/lists has Packages files',
    );

    const all = [...real.pairs, ...derived.pairs, ...fuzz.pairs];
    const ours = all.map(([a, b]) => Math.sign(compareDpkgVersions(a, b)));
    const statuses = await dpkgCompareBatch(
      all.map(([a, b], i) => ({ a, rel: relationOf(ours[i] as number), b })),
    );

    const failures: string[] = [];
    statuses.forEach((status, i) => {
      if (status === 0) return;
      const [a, b] = all[i] as [string, string];
      if (failures.length < 25) {
        let theirs: string;
        try {
          theirs = relationOf(dpkgSign(a, b));
        } catch (e) {
          theirs = `an error (${(e as Error).message})`;
        }
        failures.push(`'${a}' vs '${b}': we say ${relationOf(ours[i] as number)}, dpkg says ${theirs}`);
      } else if (failures.length === 25) {
        failures.push('…');
      }
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    t.diagnostic(
      `checked ${all.length} pairs against dpkg (${real.size} real, ${derived.size} derived, ${fuzz.size} generated) ` +
        `in ${seconds} s, seed ${seed}`,
    );
    const equal = ours.filter((s) => s === 0).length;
    t.diagnostic(
      `of which ${equal} compare equal, ${ours.filter((s) => s < 0).length} less, ${all.length - equal - ours.filter((s) => s < 0).length} greater`,
    );
    assert.deepEqual(failures, [], `disagreements with dpkg (seed ${seed}):\n${failures.join('\n')}`);
  });

  it('validate accepts every version in the corpus', () => {
    assert.ok(corpus.versions.length > 0, 'no versions found on this machine');
    const refused = corpus.versions.filter((v) => !dpkgVersionScheme.isValid(v));
    assert.deepEqual(refused, []);
  });

  it('sorting the corpus is consistent with itself', () => {
    // Every adjacent pair after a sort is in order (compare from strings, not parts).
    const sorted = corpus.versions.slice().sort(compareDpkgVersions);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(
        compareDpkgVersions(sorted[i - 1] as string, sorted[i] as string) <= 0,
        `${sorted[i - 1]} / ${sorted[i]}`,
      );
    }
  });
});
