/**
 * apk ordering on a hand-checked corpus. No `apk` binary runs on this machine, so each expected
 * answer was worked out by hand from apk-tools' rules (src/version.c of apk-tools 2.14/3.x) and
 * cites the rule of apk.ts (R1–R8) that decides it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { VersionError } from '../errors.js';
import { apkVersionScheme, compareApkVersions, validateApkVersion } from './apk.js';
import { createRng, testSeed } from '../testkit/versions.js';

type Rel = '<' | '=' | '>';

/** [a, relation, b, rule that decides] */
const CASES: [string, Rel, string, string][] = [
  // R3: numbers by value
  ['1.9', '<', '1.10', 'R3 .digits by value'],
  ['2', '>', '1.99', 'R3 first number decides'],
  ['10', '>', '9.9.9', 'R3 first number by value, not by string'],
  ['1.2.3', '<', '1.2.4', 'R3'],
  ['20240101', '>', '2.1', 'R3'],
  ['1.0-r9', '<', '1.0-r10', 'R3 revision by value'],
  ['1.0_p9', '<', '1.0_p10', 'R3 suffix number by value'],
  ['1.0_rc9', '<', '1.0_rc10', 'R3 suffix number by value'],
  ['1.0.0_pre20191002222144', '<', '1.0.0_pre20210530193627', 'R3 suffix numbers beyond 32 bits'],
  ['001', '=', '1', 'R3 the first number is a number, leading zeros or not'],
  ['18446744073709551616', '=', '0', "R3 2^64 wraps to 0 in apk's uint64_t"],
  // R4: leading zeros in .digits parts
  ['1.02', '<', '1.1', 'R4 "02" < "1" as strings'],
  ['1.01', '<', '1.010', 'R4 prefix is smaller'],
  ['1.0', '<', '1.00', 'R4 "0" is a prefix of "00"'],
  ['8.2.0015', '<', '8.2.002', 'R4 "001" < "002" bytewise'],
  ['1.09', '<', '1.1', 'R4 string: "0" < "1"'],
  ['1.10', '>', '1.09', 'R4 string: "1" > "0"'],
  ['1.0.0', '<', '1.0.1', 'R4 "0" < "1"'],
  // R5: letters
  ['1.0a', '<', '1.0b', 'R5'],
  ['1.0z', '>', '1.0b', 'R5'],
  ['2.3.0b-r1', '<', '2.3.0b-r2', 'R5 then R3 revision'],
  // R6: suffix ranks
  ['1.0_alpha', '<', '1.0_beta', 'R6'],
  ['1.0_beta', '<', '1.0_pre', 'R6'],
  ['1.0_pre', '<', '1.0_rc', 'R6'],
  ['1.0_rc', '<', '1.0_cvs', 'R6 pre-release < post-release'],
  ['1.0_cvs', '<', '1.0_svn', 'R6'],
  ['1.0_svn', '<', '1.0_git', 'R6'],
  ['1.0_git', '<', '1.0_hg', 'R6'],
  ['1.0_hg', '<', '1.0_p', 'R6'],
  ['1.0_alpha2', '>', '1.0_alpha1', 'R6 same suffix, then R3'],
  ['1.0_alpha9', '<', '1.0_beta1', 'R6 the suffix decides before its number'],
  ['1.0_p1', '>', '1.0_alpha_pre2', 'R6 p > alpha'],
  // R7: commit hashes
  ['1.0~abc', '<', '1.0~abd', 'R7 string order'],
  ['1.0~abc', '<', '1.0~abc0', 'R7 prefix is smaller'],
  ['1.0~0123', '>', '1.0~00ff', 'R7 string, not numeric'],
  ['1.0~abc-r2', '>', '1.0~abc-r1', 'R7 equal, then R3 revision'],
  // R8: one side runs out or changes kind
  ['1.0', '>', '1.0_alpha', 'R8 pre-release suffix is older'],
  ['1.0', '>', '1.0_rc1', 'R8 pre-release suffix is older'],
  ['1.0', '<', '1.0_p1', 'R8 post-release suffix is newer'],
  ['1.0', '<', '1.0_git20240101', 'R8 post-release suffix is newer'],
  ['1.0', '<', '1.0-r1', 'R8 a revision is newer than none'],
  ['1.0-r0', '>', '1.0', 'R8 even -r0'],
  ['1.0', '<', '1.0.0', 'R8 more .digits is newer'],
  ['1.0', '<', '1.0a', 'R8 a letter is newer than the end'],
  ['1.0a', '<', '1.0.1', 'R8 .digits comes before a letter in the grammar: newer'],
  ['1.0_p1', '<', '1.0a', 'R8 a letter comes before a suffix in the grammar: newer'],
  ['1.0~abc', '<', '1.0_p1', 'R8 a post-release suffix comes before a hash: newer'],
  ['1.0~abc', '>', '1.0_rc1', 'R8 a pre-release suffix is older than anything'],
  ['1.0-r5', '<', '1.0~abc', 'R8 a hash comes before a revision: newer'],
  ['1.0_alpha_pre2', '<', '1.0_alpha', 'R8 the extra _pre is a pre-release suffix'],
  ['1.0_alpha_p2', '>', '1.0_alpha', 'R8 the extra _p is a post-release suffix'],
  ['1.0_rc1', '<', '1.0.1_rc1', 'R8 .digits before a suffix: newer'],
  ['1.3_pre1-r1', '<', '1.3.2', 'R8'],
  ['6.0_pre1', '<', '6.0', 'R8'],
  ['6.0_p1', '>', '6.0', 'R8'],
  // R2: equal token by token
  ['1.0', '=', '1.0', 'R2'],
  ['1.0_rc1-r2', '=', '1.0_rc1-r2', 'R2'],
  ['1.0-r01', '=', '1.0-r1', 'R3 the revision is a number'],
  ['1.0_p01', '=', '1.0_p1', 'R3 the suffix number is a number'],
  // Real Alpine versions (the installed fixtures and aports)
  ['3.2.0-r6', '<', '3.2.0-r7', 'R3 revision'],
  ['1.31.1-r9', '<', '1.31.1-r10', 'R3 revision'],
  ['1.1.1g-r0', '<', '1.1.1h-r0', 'R5 letter (openssl)'],
  ['1.1.1g-r0', '<', '1.1.1.1-r0', 'R8'],
  ['2.10.4-r3', '<', '2.10.5-r0', 'R3'],
  ['1.2.4_git20230717-r4', '>', '1.2.4-r9', 'R8 post-release suffix before a revision: newer'],
  ['6.9_p1-r0', '>', '6.9-r3', 'R8'],
  ['3.0.0_alpha16-r0', '<', '3.0.0-r0', 'R8'],
  ['2.38-r1', '>', '2.37.1-r5', 'R3'],
  ['0.1.20230806-r0', '>', '0.1.2023-r0', 'R3'],
];

function sign(n: number): Rel {
  return n < 0 ? '<' : n > 0 ? '>' : '=';
}

describe('apk version ordering', () => {
  for (const [a, rel, b, rule] of CASES) {
    it(`${a} ${rel} ${b} (${rule})`, () => {
      assert.equal(sign(compareApkVersions(a, b)), rel);
      const back: Rel = rel === '<' ? '>' : rel === '>' ? '<' : '=';
      assert.equal(sign(compareApkVersions(b, a)), back, 'antisymmetric');
    });
  }

  it('every corpus version is valid', () => {
    for (const [a, , b] of CASES) {
      validateApkVersion(a);
      validateApkVersion(b);
    }
  });

  it('refuses what apk refuses (R1), saying where', () => {
    const bad: [string, RegExp][] = [
      ['', /empty/],
      ['a1', /does not start with a digit/],
      ['.1', /does not start with a digit/],
      ['1.0-1', /"-1" at position 4/], // Debian revision, not -rN
      ['1.0-r', /position 4/], // -r needs digits
      ['1.0_foo', /position 4/], // unknown suffix
      ['1.0_', /position 4/],
      ['1.0_ALPHA', /position 4/],
      ['1.0ab', /position 5/], // one letter only
      ['1.0a.1', /position 5/], // no .digits after a letter
      ['1.0a1', /position 5/],
      ['1.0~', /position 4/], // ~ needs hex
      ['1.0~xyz', /position 4/],
      ['1.0~ABC', /position 4/], // lower-case hex only
      ['1.0-r1-r2', /position 7/],
      ['1.0-r1_p1', /position 7/],
      ['1.0~ab~cd', /position 7/],
      ['1.0~ab_p1', /position 7/],
      ['1..0', /position 2/],
      ['1.0.', /position 4/],
      ['1.0 ', /position 4/],
      ['1:1.0', /position 2/],
      ['1.0+git', /position 4/],
    ];
    for (const [v, where] of bad) {
      assert.throws(
        () => validateApkVersion(v),
        (e: unknown) => {
          assert.ok(e instanceof VersionError);
          assert.equal(e.code, 'INVALID_VERSION');
          assert.match(e.message, /^invalid apk version /);
          assert.match(e.message, where, `${v}: ${e.message}`);
          return true;
        },
      );
      assert.throws(() => compareApkVersions(v, '1.0'), { code: 'INVALID_VERSION' });
      assert.equal(apkVersionScheme.isValid(v), false);
    }
    assert.throws(() => validateApkVersion(`1.${'1'.repeat(300)}`), /longer than 256/);
  });

  it('is a total order on generated versions (sorting is consistent, equal is symmetric)', () => {
    const rng = createRng(testSeed());
    const gen = (): string => {
      let v = rng.pick(['0', '1', '2', '01', '10']);
      for (let i = rng.int(3); i > 0; i--) v += `.${rng.pick(['0', '1', '9', '10', '01', '00'])}`;
      if (rng.chance(0.2)) v += rng.pick(['a', 'b', 'z']);
      for (let i = rng.int(3); i > 0; i--) {
        v += `_${rng.pick(['alpha', 'beta', 'pre', 'rc', 'cvs', 'svn', 'git', 'hg', 'p'])}${rng.pick(['', '1', '2', '10'])}`;
      }
      if (rng.chance(0.15)) v += `~${rng.pick(['a', 'ab', 'f0', '0'])}`;
      if (rng.chance(0.5)) v += `-r${rng.pick(['0', '1', '2', '10'])}`;
      return v;
    };
    const vs = Array.from({ length: 600 }, gen);
    for (const v of vs) assert.ok(apkVersionScheme.isValid(v), v);
    const sorted = vs.slice().sort(compareApkVersions);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < Math.min(sorted.length, i + 40); j++) {
        const a = sorted[i] as string;
        const b = sorted[j] as string;
        assert.ok(compareApkVersions(a, b) <= 0, `${a} / ${b} out of order after sorting`);
        assert.equal(Math.sign(compareApkVersions(a, b)), -Math.sign(compareApkVersions(b, a)) || 0);
      }
    }
  });
});
