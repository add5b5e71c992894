import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { VersionError } from '../errors.js';
import {
  DPKG_VERSION_MAX_LENGTH,
  compareDpkgVersions,
  dpkgVersionScheme,
  parseDpkgVersion,
  validateDpkgVersion,
} from './dpkg.js';
import {
  createRng,
  dpkgParseOutcome,
  relationOf,
  requireDpkg,
  runDpkgCompare,
  testSeed,
} from '../testkit/versions.js';

type Sign = -1 | 0 | 1;

/**
 * Hand-written cases, each with the sign compare(a, b) must have. Every row is also checked
 * against `dpkg --compare-versions`, so a wrong row cannot hide a wrong implementation.
 */
const CASES: readonly [a: string, sign: Sign, b: string, why: string][] = [
  ['1.0~rc1', -1, '1.0', '~ sorts before the end of the string'],
  ['1.0~~', -1, '1.0~', '~~ before ~'],
  ['1.0~~', -1, '1.0~~a', 'deb-version(7): ~~ < ~~a < ~ < (empty) < a'],
  ['1.0~~a', -1, '1.0~', 'deb-version(7): ~~a < ~'],
  ['1.0~', -1, '1.0', '~ vs empty'],
  ['1.0', -1, '1.0a', 'end of string before a letter'],
  ['1.0~rc1', -1, '1.0~rc2', 'numeric part after ~'],
  ['1.0~beta1', -1, '1.0~rc1', 'letters compare in ASCII order'],
  ['1.0A', -1, '1.0a', 'upper case before lower case'],
  ['1.0a', -1, '1.0+', 'letters before non-letters'],
  ['1.0a', -1, '1.0.1', 'letters before .'],
  ['1.0+1', -1, '1.0.1', 'non-letters in ASCII order: + < .'],
  ['1.0-1', -1, '1.0.1', 'hyphen is the revision separator: upstream 1.0 < 1.0.1'],
  ['1:1.2.3', -1, '1:1.2:3', 'non-letters in ASCII order: . < :'],
  ['1:0.1', 1, '2.0', 'epoch wins over everything'],
  ['2:1.0', -1, '10:0.1', 'epochs compare numerically'],
  ['0:1.0', 0, '1.0', 'missing epoch is 0'],
  ['01:1.0', 0, '1:1.0', 'leading zeros in the epoch'],
  ['00000000000000000000000001:1', 0, '1:1', 'many leading zeros in the epoch'],
  ['2147483647:1', 1, '2147483646:9', 'largest epoch dpkg accepts'],
  ['1.0-1', 1, '1.0-0', 'revisions compare like versions'],
  ['1.0', 0, '1.0-0', 'missing revision equals revision 0'],
  ['1.0-0', 0, '1.0-00', 'leading zeros in the revision'],
  ['1.0-1', 1, '1.0', 'a revision beats none'],
  ['1.0-~', -1, '1.0', 'a revision of ~ is older than none'],
  ['1.0', 0, '1.00', 'leading zeros in a number'],
  ['1.0', -1, '1.0.0', 'trailing .0 is not ignored'],
  ['1', -1, '1.0', 'end of string before .'],
  ['0.9', -1, '0.10', 'numeric, not lexical'],
  ['9', -1, '10', 'numeric, not lexical'],
  ['1.00000000000000000000001', 0, '1.1', 'leading zeros of a long digit run'],
  ['1.100000000000000000000000', 1, '1.99999999999999999999', 'longer number is bigger'],
  ['1.18446744073709551616', 1, '1.18446744073709551615', 'beyond 64 bits'],
  ['1.9007199254740993', 1, '1.9007199254740992', 'beyond 2^53 (parseInt would say equal)'],
  ['1.2-3-4', 1, '1.2-3', 'revision is after the LAST hyphen: upstream 1.2-3 > 1.2'],
  ['1.2-3-4', 1, '1.2-4', 'upstream 1.2-3 > 1.2 even though both revisions are 4'],
  ['1.2-3-4', -1, '1.2-3-5', 'same upstream 1.2-3, revision 4 < 5'],
  ['1.0~rc1-1', -1, '1.0-1', 'pre-release upstream'],
  ['1.0-1~bpo11+1', -1, '1.0-1', 'backport revision'],
  ['1.0-1', -1, '1.0-1+b1', 'binNMU revision'],
  ['1.0-1', -1, '1.0-1ubuntu1', 'derivative revision'],
  ['1.0-1ubuntu1', -1, '1.0-2', 'derivative revision before the next Debian one'],
  ['1.0+dfsg-1', 1, '1.0-1', 'repacked upstream'],
  ['1.0+dfsg1-1', -1, '1.0+dfsg2-1', 'repack number'],
  ['2.30-1', -1, '2.30.1-1', 'dotted upstream'],
  ['1.0', 0, '1.0', 'identical'],
  ['1.1', -1, '1.a', 'a digit facing a letter weighs like the end of the non-digit part'],
  ['1.~', -1, '1.1', '~ sorts before a digit'],
  ['1.1', -1, '1.+', 'a digit sorts before a non-letter'],
  ['3.2.0.0-1', -1, '3.2.0.Final-4', 'Debian: 0 vs F'],
  ['2.1.1+~2.1.1-1', -1, '2.1.1+~cs0.2.0-3', 'Debian: 2 vs c after +~'],
  ['1.5+dfsg1-1+b1', -1, '1.5+dfsg.1-4', 'Debian: 1 vs .'],
  // dpkg only warns about these and compares anyway; so does compare().
  ['1.0_1', 1, '1.0a', 'invalid character: dpkg warns, orders _ after letters'],
  ['a1.0', 1, '1.0', 'upstream not starting with a digit: dpkg warns, compares anyway'],
  ['1.0-1_1', 1, '1.0-1', 'invalid character in the revision: dpkg warns'],
  [' 1.0 ', 0, '1.0', 'surrounding blanks are trimmed'],
];

before(() => requireDpkg());

describe('dpkg compare: hand-written edge cases', () => {
  for (const [a, sign, b, why] of CASES) {
    it(`${a} ${relationOf(sign)} ${b} (${why})`, () => {
      const ours = Math.sign(compareDpkgVersions(a, b));
      assert.equal(ours, sign, `compare(${a}, ${b})`);
      assert.equal(Math.sign(compareDpkgVersions(b, a)), sign === 0 ? 0 : -sign, `compare(${b}, ${a})`);
      // The row itself must be right: dpkg agrees with it.
      for (const [rel, holds] of [
        ['lt', sign < 0],
        ['eq', sign === 0],
        ['gt', sign > 0],
      ] as const) {
        const { status, stderr } = runDpkgCompare(a, rel, b);
        assert.equal(
          status,
          holds ? 0 : 1,
          `dpkg --compare-versions '${a}' ${rel} '${b}' exited ${status}: ${stderr}`,
        );
      }
    });
  }

  it('the scheme object compares like compareDpkgVersions', () => {
    assert.equal(dpkgVersionScheme.name, 'dpkg');
    assert.ok(dpkgVersionScheme.compare('1.0~rc1', '1.0') < 0);
    assert.ok(dpkgVersionScheme.compare('1:0', '9') > 0);
    assert.equal(dpkgVersionScheme.compare('1.0', '0:1.0-0'), 0);
  });

  it('orders what dpkg only warns about (odd ASCII, no leading digit) like dpkg, seeded', (t) => {
    const rng = createRng(testSeed());
    const alphabet = [...'0123456789aZz._+~-!#%=@^,/<>?"$&*()[]{}|`'];
    const gen = (): string => {
      let v = rng.pick(['1', '0', 'a', '_', '~', '!', '.']);
      for (let n = rng.int(6); n > 0; n--) v += rng.pick(alphabet);
      return v.endsWith('-') ? `${v}1` : v;
    };
    let checked = 0;
    while (checked < 150) {
      const a = gen();
      const b = rng.chance(0.3) ? a + rng.pick(['~', '!', 'a', '0']) : gen();
      if (dpkgParseOutcome(a) === 'error' || dpkgParseOutcome(b) === 'error') continue;
      const rel = relationOf(compareDpkgVersions(a, b));
      const { status, stderr } = runDpkgCompare(a, rel, b);
      assert.equal(
        status,
        0,
        `we say ${JSON.stringify(a)} ${rel} ${JSON.stringify(b)}; dpkg does not: ${stderr}`,
      );
      checked++;
    }
    t.diagnostic(`${checked} pairs of warning-level versions agree with dpkg`);
  });

  it('handles very long digit runs in linear time', () => {
    const a = `1.${'9'.repeat(100_000)}`;
    const b = `1.${'0'.repeat(50_000)}1${'0'.repeat(100_000)}`;
    assert.equal(compareDpkgVersions(a, b), -1);
    assert.equal(compareDpkgVersions(b, a), 1);
    assert.equal(compareDpkgVersions(`${a}~`, `${a}`), -1);
  });
});

/**
 * Inputs validate() refuses, with the message it must give, and what dpkg does with them:
 * `error` (dpkg refuses: compare throws too), `warning` (dpkg warns and compares: compare orders
 * it, validate refuses), `stricter` (dpkg accepts silently, sysattest refuses; compare says in
 * `compare` whether it still orders it).
 */
const INVALID: readonly {
  v: string;
  message: RegExp;
  dpkg: 'error' | 'warning' | 'stricter' | 'n/a';
  compare: 'throws' | 'orders';
}[] = [
  { v: '', message: /version string is empty/, dpkg: 'n/a', compare: 'throws' }, // CLI: "" = no version
  { v: '  ', message: /leading or trailing whitespace/, dpkg: 'error', compare: 'throws' },
  { v: '1.0 1', message: /embedded spaces/, dpkg: 'error', compare: 'throws' },
  { v: '1.0\t1', message: /embedded spaces/, dpkg: 'error', compare: 'throws' },
  { v: ':1.0', message: /epoch in version is empty/, dpkg: 'error', compare: 'throws' },
  { v: 'a:1.0', message: /epoch in version is not a number/, dpkg: 'error', compare: 'throws' },
  { v: '1a:1.0', message: /epoch in version is not a number/, dpkg: 'error', compare: 'throws' },
  { v: '1.5:1.0', message: /epoch in version is not a number/, dpkg: 'error', compare: 'throws' },
  { v: '2147483648:1.0', message: /epoch in version is too big/, dpkg: 'error', compare: 'throws' },
  { v: `${'9'.repeat(30)}:1.0`, message: /epoch in version is too big/, dpkg: 'error', compare: 'throws' },
  { v: '1:', message: /nothing after colon/, dpkg: 'error', compare: 'throws' },
  { v: '1.0-', message: /revision number is empty/, dpkg: 'error', compare: 'throws' },
  { v: '1.0-1-', message: /revision number is empty/, dpkg: 'error', compare: 'throws' },
  { v: '0:-1', message: /upstream version is empty/, dpkg: 'error', compare: 'throws' },
  { v: '<unknown>', message: /placeholder for "no version"/, dpkg: 'n/a', compare: 'throws' },
  { v: '-1', message: /upstream version is empty/, dpkg: 'n/a', compare: 'throws' }, // dpkg: an option
  { v: 'a1.0', message: /does not start with digit/, dpkg: 'warning', compare: 'orders' },
  { v: '1:a1.0', message: /does not start with digit/, dpkg: 'warning', compare: 'orders' },
  { v: '~1', message: /does not start with digit/, dpkg: 'warning', compare: 'orders' },
  {
    v: '1.0_1',
    message: /invalid character in version number \('_' at position 4/,
    dpkg: 'warning',
    compare: 'orders',
  },
  { v: '1.0!', message: /invalid character in version number/, dpkg: 'warning', compare: 'orders' },
  { v: "1.0'", message: /invalid character in version number/, dpkg: 'warning', compare: 'orders' },
  { v: '1.0-1_1', message: /invalid character in revision number/, dpkg: 'warning', compare: 'orders' },
  {
    v: '1:1.0-1:1',
    message: /invalid character in revision number \(':'/,
    dpkg: 'warning',
    compare: 'orders',
  },
  {
    v: '1.0\n',
    message: /invalid character in version number \(U\+000A/,
    dpkg: 'warning',
    compare: 'throws',
  },
  { v: '1.0\u00e9', message: /U\+00E9.*only printable ASCII/, dpkg: 'warning', compare: 'throws' },
  { v: '\u00e91.0', message: /U\+00E9/, dpkg: 'warning', compare: 'throws' },
  { v: '+1:1.0', message: /epoch in version is not a number/, dpkg: 'stricter', compare: 'throws' },
  { v: ' 1.0', message: /leading or trailing whitespace/, dpkg: 'stricter', compare: 'orders' },
  { v: '1.0\t', message: /leading or trailing whitespace/, dpkg: 'stricter', compare: 'orders' },
  {
    v: `1${'.0'.repeat(128)}`,
    message: new RegExp(`longer than ${DPKG_VERSION_MAX_LENGTH} characters`),
    dpkg: 'stricter',
    compare: 'orders',
  },
];

const VALID = [
  '0',
  '1.0',
  '0:0',
  '1:1.0-1',
  '1.2-3-4',
  '1.0-~',
  '2147483647:1',
  '00001:1.0',
  '1:1.2:3-4',
  '1.0~rc1+dfsg-1~bpo11+1',
  '7.3.3+dfsg1-1+0.0~git20211018.e64c254+dfsg-2',
  '1.0-1ubuntu0.22.04.1',
  `1${'.0'.repeat(127)}~`, // exactly 256 characters
];

describe('dpkg validate', () => {
  for (const { v, message, dpkg, compare } of INVALID) {
    it(`refuses ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)} (${message.source})`, () => {
      assert.throws(
        () => validateDpkgVersion(v),
        (e: unknown) => {
          assert.ok(e instanceof VersionError, `expected a VersionError, got ${String(e)}`);
          assert.equal(e.code, 'INVALID_VERSION');
          assert.match(e.message, message);
          assert.match(e.message, /^invalid dpkg version /);
          return true;
        },
      );
      assert.equal(dpkgVersionScheme.isValid(v), false);
      assert.throws(() => parseDpkgVersion(v), VersionError);

      if (dpkg === 'error' || dpkg === 'warning') {
        assert.equal(
          dpkgParseOutcome(v),
          dpkg,
          `dpkg's parseversion() should give a ${dpkg} for ${JSON.stringify(v)}`,
        );
      } else if (dpkg === 'stricter') {
        assert.equal(dpkgParseOutcome(v), 'ok', `dpkg accepts ${JSON.stringify(v)}: documented as stricter`);
      }

      if (compare === 'throws') {
        assert.throws(() => compareDpkgVersions(v, '1.0'), { name: 'VersionError', code: 'INVALID_VERSION' });
        assert.throws(() => compareDpkgVersions('1.0', v), { name: 'VersionError', code: 'INVALID_VERSION' });
      } else {
        assert.equal(typeof compareDpkgVersions(v, '1.0'), 'number');
      }
    });
  }

  it('every error dpkg raises, compare raises too', () => {
    for (const { v, dpkg, compare } of INVALID) {
      if (dpkg === 'error') assert.equal(compare, 'throws', JSON.stringify(v));
    }
  });

  it('refuses what is not a string', () => {
    for (const v of [undefined, null, 1, {}]) {
      assert.throws(() => validateDpkgVersion(v as unknown as string), { code: 'INVALID_VERSION' });
      assert.equal(dpkgVersionScheme.isValid(v as unknown as string), false);
      assert.throws(() => compareDpkgVersions(v as unknown as string, '1'), { code: 'INVALID_VERSION' });
    }
  });

  it('shortens a huge version in the message', () => {
    const v = `1.${'x'.repeat(10_000)}`;
    assert.throws(
      () => validateDpkgVersion(v),
      (e: unknown) =>
        e instanceof VersionError && e.message.length < 300 && /10002 characters/.test(e.message),
    );
  });

  for (const v of VALID) {
    it(`accepts ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`, () => {
      validateDpkgVersion(v);
      assert.equal(dpkgVersionScheme.isValid(v), true);
      assert.equal(dpkgParseOutcome(v), 'ok');
    });
  }

  it('parses into epoch, upstream and revision', () => {
    assert.deepEqual(parseDpkgVersion('1.0'), { epoch: 0, upstream: '1.0', revision: '' });
    assert.deepEqual(parseDpkgVersion('0:1.0-0'), { epoch: 0, upstream: '1.0', revision: '0' });
    assert.deepEqual(parseDpkgVersion('00012:1.2-3-4'), { epoch: 12, upstream: '1.2-3', revision: '4' });
    assert.deepEqual(parseDpkgVersion('1:2:3-4'), { epoch: 1, upstream: '2:3', revision: '4' });
    assert.deepEqual(parseDpkgVersion('2147483647:1'), { epoch: 2147483647, upstream: '1', revision: '' });
  });
});
