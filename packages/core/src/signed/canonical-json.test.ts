import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { canonicalJson, matchesCanonicalJson } from './canonical-json.js';

describe('canonical JSON', () => {
  it('sorts keys at every depth, drops undefined, writes one line ending in a newline', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [true, null], c: 'x' }, u: undefined }),
      '{"a":{"c":"x","d":[true,null]},"b":1}\n',
    );
  });
  it('orders keys by UTF-16 code units and escapes like JSON', () => {
    assert.equal(canonicalJson({ é: 1, Z: 2, a: '\u2028"\n' }), '{"Z":2,"a":"\u2028\\"\\n","é":1}\n');
  });
  it('refuses numbers that are not safe integers and values JSON cannot hold', () => {
    assert.throws(() => canonicalJson({ a: 1.5 }), /not a safe integer/);
    assert.throws(() => canonicalJson({ a: 2 ** 60 }), /not a safe integer/);
    assert.throws(() => canonicalJson({ a: () => 1 }), /cannot serialise/);
  });
});

describe('matchesCanonicalJson (the in-place check verification uses)', () => {
  const values: unknown[] = [
    null,
    true,
    0,
    -42,
    'a "quoted"\n\u2028 é string',
    [],
    {},
    [1, [2, [3, {}]], 'x'],
    { b: 1, a: { d: [true, null], c: 'x' }, u: undefined, é: 1, Z: 2 },
    { entries: Array.from({ length: 200 }, (_, i) => ({ path: `/usr/bin/f${i}`, size: i, mode: '0755' })) },
  ];

  it('agrees with canonicalJson on the canonical text of each value', () => {
    for (const v of values) assert.equal(matchesCanonicalJson(v, canonicalJson(v)), true, JSON.stringify(v));
  });

  it('refuses every other text: whitespace, key order, escaping, a missing or extra end, another value', () => {
    const v = { b: 1, a: { d: [true, null], c: 'x/y' } };
    const canonical = canonicalJson(v);
    const others = [
      canonical.trimEnd(),
      `${canonical}\n`,
      canonical.replace('\n', ' \n'),
      canonical.replace(':', ': '),
      '{"b":1,"a":{"c":"x/y","d":[true,null]}}\n',
      canonical.replace('x/y', 'x\\/y'),
      canonical.replace('"b":1', '"b":01'),
      canonical.replace('null', 'nul'),
      canonical.slice(0, 10),
      '',
      canonicalJson({ ...v, b: 2 }),
    ];
    for (const t of others) assert.equal(matchesCanonicalJson(v, t), false, JSON.stringify(t));
    // Exhaustively: no single-character change of the canonical text still matches.
    for (let i = 0; i < canonical.length; i++) {
      const changed = canonical.slice(0, i) + (canonical[i] === 'x' ? 'y' : 'x') + canonical.slice(i + 1);
      assert.equal(matchesCanonicalJson(v, changed), false, `changed at ${i}`);
    }
  });

  it('throws what canonicalJson throws', () => {
    assert.throws(() => matchesCanonicalJson({ a: 1.5 }, '{"a":1.5}\n'), /not a safe integer/);
    assert.throws(() => matchesCanonicalJson({ a: () => 1 }, '{"a":1}\n'), /cannot serialise/);
  });
});
