/**
 * Seeded property tests: compare is a total preorder (reflexive, antisymmetric, transitive) on
 * real versions from this machine and on generated ones built to collide.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { compareDpkgVersions } from './dpkg.js';
import {
  createRng,
  loadDpkgVersionCorpus,
  randomDpkgVersion,
  testSeed,
  type Rng,
} from '../testkit/versions.js';

let real: string[];

before(async () => {
  real = (await loadDpkgVersionCorpus()).versions;
  assert.ok(
    real.length >= 100,
    `only ${real.length} versions found on this machine; run apt-get update as root`,
  );
});

const sign = (a: string, b: string): number => Math.sign(compareDpkgVersions(a, b));

/** A version from the corpus, a generated one, or a small edit of a corpus one. */
function pickVersion(rng: Rng): string {
  const r = rng.next();
  if (r < 0.5) return rng.pick(real);
  if (r < 0.8) return randomDpkgVersion(rng);
  return rng.pick(real) + rng.pick(['~', '~~', '+b1', '.0', 'a', '~rc1']);
}

function checkTriple(a: string, b: string, c: string): void {
  const ab = sign(a, b);
  const bc = sign(b, c);
  const ac = sign(a, c);
  // Transitivity of <=, and of = (with < when either step is strict).
  if (ab <= 0 && bc <= 0) {
    assert.ok(ac <= 0, `${a} <= ${b} <= ${c} but ${a} > ${c}`);
    if (ab < 0 || bc < 0) assert.equal(ac, -1, `${a} <= ${b} <= ${c} with one strict, but not ${a} < ${c}`);
    else assert.equal(ac, 0, `${a} = ${b} = ${c} but not ${a} = ${c}`);
  }
  if (ab >= 0 && bc >= 0) {
    assert.ok(ac >= 0, `${a} >= ${b} >= ${c} but ${a} < ${c}`);
    if (ab > 0 || bc > 0) assert.equal(ac, 1, `${a} >= ${b} >= ${c} with one strict, but not ${a} > ${c}`);
  }
}

describe('dpkg compare properties (seeded)', () => {
  const seed = testSeed();

  it('is reflexive and antisymmetric', (t) => {
    const rng = createRng(seed);
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const a = pickVersion(rng);
      const b = rng.chance(0.3) ? randomDpkgVersion(rng) : pickVersion(rng);
      assert.equal(sign(a, a), 0, `compare(${a}, ${a})`);
      assert.equal(
        sign(a, b),
        0 - sign(b, a),
        `compare(${a}, ${b}) = ${sign(a, b)} but compare(${b}, ${a}) = ${sign(b, a)}`,
      );
    }
    t.diagnostic(`${n} pairs, seed ${seed}`);
  });

  it('is transitive on random triples', (t) => {
    const rng = createRng(seed + 1);
    const n = 20_000;
    for (let i = 0; i < n; i++) checkTriple(pickVersion(rng), pickVersion(rng), pickVersion(rng));
    t.diagnostic(`${n} triples, seed ${seed + 1}`);
  });

  it('is transitive on close triples (neighbours after a sort)', (t) => {
    // Random triples of real versions are rarely close; these are, and contain many ties.
    const rng = createRng(seed + 2);
    const pool: string[] = [];
    for (let i = 0; i < 3000; i++) pool.push(pickVersion(rng));
    pool.sort(compareDpkgVersions);
    let ties = 0;
    for (let i = 0; i + 2 < pool.length; i++) {
      const [a, b, c] = [pool[i], pool[i + 1], pool[i + 2]] as [string, string, string];
      if (sign(a, b) === 0) ties++;
      // All six orders of the triple.
      for (const [x, y, z] of [
        [a, b, c],
        [a, c, b],
        [b, a, c],
        [b, c, a],
        [c, a, b],
        [c, b, a],
      ] as const) {
        checkTriple(x, y, z);
      }
    }
    t.diagnostic(`${pool.length - 2} close triples (${ties} ties among neighbours), seed ${seed + 2}`);
  });
});
