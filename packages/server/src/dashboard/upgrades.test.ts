import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { bucketize } from './upgrades.js';

describe('upgrades chart', () => {
  it('count events per bucket and platform', () => {
    const since = new Date('2026-11-24T00:00:00.000Z');
    const until = new Date('2026-11-25T00:00:00.000Z');
    const buckets = bucketize(
      [
        { platform: 'a', name: 'x', arch: 'amd64', to: '1', at: '2026-11-24T00:30:00.000Z' },
        { platform: 'a', name: 'y', arch: 'amd64', to: '1', at: '2026-11-24T23:59:00.000Z' },
        { platform: 'b', name: 'y', arch: 'amd64', to: '1', at: '2026-11-24T00:10:00.000Z' },
      ],
      ['a', 'b'],
      since,
      until,
      3600,
    );
    assert.equal(buckets.length, 24);
    assert.deepEqual(buckets[0]?.counts, { a: 1, b: 1 });
    assert.deepEqual(buckets[23]?.counts, { a: 1, b: 0 });
  });
});
