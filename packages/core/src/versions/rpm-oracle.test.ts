/**
 * The oracle test for rpm ordering: real version pairs, ordered by us and by rpm 4.18's own
 * `rpm.vercmp()` (the rpm program's embedded Lua, one process for the whole batch).
 *
 * The corpus: every EVR of the rpm fixture databases (CBL-Mariner 2.0 and a RHEL 8 package, read
 * with `rpm -qa`), the Debian versions of this machine's apt lists (thousands of real version
 * strings with epochs, `~`, `+` and hyphens, which rpmvercmp orders by its own rules just the
 * same), variants of real versions (`~`, `^`, epochs, zeros, suffixes) and generated ones.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { dirWithFixture, requireRpm, rpmQuery } from '../testkit/pkgdb.js';
import { compareRpmVersions, rpmVersionScheme, splitRpmVersion } from './rpm.js';
import { createRng, loadDpkgVersionCorpus, testSeed, type Rng } from '../testkit/versions.js';

const MIN_REAL_PAIRS = 3000;

const work = mkdtempSync(join(tmpdir(), 'sysattest-rpmver-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** rpm.vercmp(a, b) for every pair, through one `rpm --eval` running a Lua loop over a file. */
function rpmVercmpBatch(pairs: readonly [string, string][]): number[] {
  for (const [a, b] of pairs) {
    for (const v of [a, b]) assert.ok(!/[\t\n\r]/.test(v) && v !== '', `test bug: unusable version ${v}`);
  }
  const file = join(work, `pairs-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(file, pairs.map(([a, b]) => `${a}\t${b}\n`).join(''));
  const lua =
    `%{lua: local t = {}; for l in io.lines('${file}') do ` +
    `local a, b = l:match('^([^\\t]*)\\t(.*)$'); t[#t + 1] = rpm.vercmp(a, b) end; ` +
    `print(table.concat(t, ' '))}`;
  const r = spawnSync('rpm', ['--eval', lua], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `rpm --eval failed: ${r.stderr}`);
  const out = r.stdout.trim().split(/\s+/).map(Number);
  assert.equal(out.length, pairs.length, `rpm answered ${out.length} of ${pairs.length} pairs`);
  return out;
}

class PairSet {
  readonly pairs: [string, string][] = [];
  private readonly keys = new Set<string>();
  add(a: string, b: string): boolean {
    const key = a < b ? `${a}\n${b}` : `${b}\n${a}`;
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    this.pairs.push([a, b]);
    return true;
  }
  get size(): number {
    return this.pairs.length;
  }
}

/** Variants of a real EVR that differ from it by a ~, a ^, an epoch, zeros or a suffix. */
function variantsOf(evr: string, rng: Rng): string[] {
  const { epoch, version, release } = splitRpmVersion(evr);
  const e = epoch === undefined ? '' : `${epoch}:`;
  const r = release === undefined ? '' : `-${release}`;
  const out = [
    `${e}${version}~rc1${r}`,
    `${e}${version}^git1${r}`,
    `${e}${version}^${r}`,
    `${e}${version}~${r}`,
    `${e}${version}.0${r}`,
    `${e}${version}a${r}`,
    `${e}${version}_1${r}`,
    `${e}${version.replace(/[0-9]+/, (d) => `0${d}`)}${r}`, // equal
    `${e}${version.replace(/\./g, '..')}${r}`, // equal: separators only separate
    `0:${version}${r}`,
    `${Number(epoch ?? 0) + 1}:${version}${r}`,
    `${e}${version}`, // no release
    `${e}${version}${r}.1`,
    `${e}${version}${r}~1`,
    `${e}${version}${r}^1`,
    `${e}${version}-${release ?? '1'}-1`, // the last hyphen splits
  ];
  return [rng.pick(out), rng.pick(out), rng.pick(out)];
}

/** A random EVR from a tiny alphabet so that ties and near-ties are common. */
function randomEvr(rng: Rng): string {
  const seg = (): string =>
    rng.pick(['0', '1', '2', '10', '01', '001', 'a', 'b', 'Z', 'rc', 'git', '99999999999999999999']);
  const sep = (): string => rng.pick(['.', '.', '~', '^', '_', '+', '', '..', '%']);
  let v = seg();
  for (let i = rng.int(5); i > 0; i--) v += sep() + seg();
  if (rng.chance(0.2)) v = `${rng.pick(['0', '1', '2', '01', ''])}:${v}`;
  if (rng.chance(0.7)) {
    let r = seg();
    for (let i = rng.int(3); i > 0; i--) r += sep() + seg();
    v += `-${r}`;
  }
  return v;
}

/** Hand-made edge cases, with rpm's answer checked by the oracle like every other pair. */
const EDGE_CASES: [string, string][] = [
  ['1.0~rc1-1', '1.0-1'], // ~ before the end
  ['1.0~~-1', '1.0~-1'],
  ['1.0^git1-1', '1.0-1'], // ^ after the end
  ['1.0^git1-1', '1.0.1-1'], // ^ before anything else
  ['1.0^-1', '1.0~-1'],
  ['1.0^^-1', '1.0^-1'],
  ['1.0-1', '1.0-1.el9'],
  ['1:1.0-1', '2.0-1'], // epoch first
  ['0:1.0-1', '1.0-1'], // missing epoch is 0
  [':1.0-1', '1.0-1'], // empty epoch is 0
  ['01:1-1', '1:1-1'],
  ['1.0', '1.0-1'], // no release against a release
  ['1.0-', '1.0'],
  ['1.0-', '1.0-0'],
  ['1.0a-1', '1.0-1'],
  ['1.0a-1', '1.0.1-1'], // a letter segment against a number: the number wins
  ['1.0-1', '1.0.-1'], // separators alone do not count
  ['1.001-1', '1.1-1'], // leading zeros
  ['1.0010-1', '1.9-1'],
  ['12345678901234567890123-1', '12345678901234567890124-1'], // beyond any integer type
  ['A-1', 'a-1'], // ASCII case
  ['1.0-1', '1.0_1'],
  ['2.0-1', '2_0-1'],
  ['1.0-a-b', '1.0-b'], // the release follows the last hyphen
  ['5.3.28-1.el8', '5.3.28-1.el8_8'],
  ['2.32.1-42.el8_8', '2.32.1-42.el8'],
  ['1.1.1k-7.cm2', '1.1.1l-1.cm2'],
  ['1.2.11-5.cm2', '1.2.11-5.cm2.1'],
  ['3.0.0-0.rc1.fc41', '3.0.0-1.fc41'],
  ['6.10.3-200.fc40', '6.10.10-200.fc40'],
  ['1.0+git20240101-1', '1.0-1'],
  ['é1-1', '1-1'], // non-ASCII is a separator
  ['1é-1', '1-1'],
];

let corpusVersions: string[] = [];
let fixtureEvrs: string[] = [];
const notes: string[] = [];

before(async () => {
  requireRpm();
  for (const [rel, what] of [
    ['rpm/cbl-mariner-2.0/rpmdb.sqlite', 'CBL-Mariner 2.0 sqlite rpmdb'],
    ['rpm/libuuid-bdb/Packages', 'RHEL 8 Berkeley DB Packages'],
  ] as const) {
    const copy = dirWithFixture(rel);
    try {
      const evrs = rpmQuery(copy.dir, '%{EVR}\\n')
        .split('\n')
        .filter((l) => l !== '');
      fixtureEvrs.push(...evrs);
      notes.push(`${evrs.length} EVRs from the ${what}`);
    } finally {
      copy.cleanup();
    }
  }
  fixtureEvrs = [...new Set(fixtureEvrs)];
  const debian = await loadDpkgVersionCorpus();
  corpusVersions = debian.versions.filter((v) => !/[\t\n\r]/.test(v) && v !== '');
  notes.push(`${corpusVersions.length} Debian versions from this machine's apt lists and dpkg status`);
});

describe('rpm compare agrees with rpm.vercmp() of rpm 4.18', () => {
  it('on the fixture EVRs, real Debian versions, variants and generated versions', (t) => {
    const rng = createRng(testSeed());
    for (const n of notes) t.diagnostic(n);
    assert.ok(fixtureEvrs.length >= 80, `only ${fixtureEvrs.length} EVRs in the rpm fixtures`);

    const real = new PairSet();
    // Every pair of distinct fixture EVRs (84 of them: 3,486 pairs).
    for (let i = 0; i < fixtureEvrs.length; i++) {
      for (let j = i + 1; j < fixtureEvrs.length; j++)
        real.add(fixtureEvrs[i] as string, fixtureEvrs[j] as string);
    }
    const fixturePairs = real.size;
    // Sort neighbours and random pairs of the Debian corpus.
    const sorted = corpusVersions.slice().sort(compareRpmVersions);
    for (let k = 0; k < 3000 && sorted.length > 1; k++) {
      const i = rng.int(sorted.length - 1);
      real.add(sorted[i] as string, sorted[i + 1] as string);
    }
    for (let k = 0; k < 3000 && corpusVersions.length > 1; k++) {
      real.add(rng.pick(corpusVersions), rng.pick(corpusVersions));
    }
    // Fixture EVRs against Debian versions.
    for (let k = 0; k < 1000 && corpusVersions.length > 0; k++)
      real.add(rng.pick(fixtureEvrs), rng.pick(corpusVersions));
    assert.ok(
      real.size >= MIN_REAL_PAIRS,
      `only ${real.size} real pairs (at least ${MIN_REAL_PAIRS} needed)`,
    );

    const derived = new PairSet();
    const pool = [...fixtureEvrs, ...corpusVersions];
    for (let k = 0; k < 700; k++) {
      const v = rng.pick(pool);
      for (const w of variantsOf(v, rng)) derived.add(v, w);
    }
    const fuzz = new PairSet();
    for (let k = 0; k < 1500; k++) {
      const a = randomEvr(rng);
      fuzz.add(
        a,
        rng.chance(0.5) ? randomEvr(rng) : `${a}${rng.pick(['~', '^', '', '.0', '-0', 'a', '~~', '.'])}`,
      );
    }
    for (const [a, b] of EDGE_CASES) fuzz.add(a, b);

    const all = [...real.pairs, ...derived.pairs, ...fuzz.pairs];
    const started = performance.now();
    const theirs = rpmVercmpBatch(all);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const failures: string[] = [];
    all.forEach(([a, b], i) => {
      const ours = Math.sign(compareRpmVersions(a, b));
      // Antisymmetry is checked on our side too.
      assert.equal(Math.sign(compareRpmVersions(b, a)), -ours || 0, `${a} / ${b} not antisymmetric`);
      if (ours !== theirs[i] && failures.length < 25) {
        failures.push(`'${a}' vs '${b}': we say ${ours}, rpm says ${theirs[i]}`);
      }
    });
    t.diagnostic(
      `checked ${all.length} pairs against rpm (${real.size} real of which ${fixturePairs} fixture EVR pairs, ` +
        `${derived.size} derived, ${fuzz.size} generated/edge) — rpm took ${seconds} s, seed ${testSeed()}`,
    );
    const eq = all.filter(([a, b]) => compareRpmVersions(a, b) === 0).length;
    t.diagnostic(`${eq} pairs compare equal`);
    assert.deepEqual(failures, []);
  });

  it('validate accepts every fixture EVR', () => {
    assert.deepEqual(
      fixtureEvrs.filter((v) => !rpmVersionScheme.isValid(v)),
      [],
    );
  });

  it('refuses an empty version, as rpm does', () => {
    const r = spawnSync('rpm', ['--eval', `%{lua: print(rpm.vercmp('', '1'))}`], { encoding: 'utf8' });
    assert.notEqual(r.status === 0 && !/error/i.test(r.stderr), true, 'rpm accepted an empty version');
    assert.throws(() => compareRpmVersions('', '1'), { code: 'INVALID_VERSION' });
  });
});
