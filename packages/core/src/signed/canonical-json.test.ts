import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { canonicalJson } from './canonical-json.js';

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
