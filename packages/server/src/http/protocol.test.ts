import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { JOB_STATES as PROTOCOL_JOB_STATES, PROTOCOL_LIMITS } from '@sysattest/core';
import { JOB_LIMITS, JOB_STATES, LOOKUP_LIMITS } from '../store/index.js';

// The store checks its arguments again (a caller other than the API, defence in depth) with its
// own copy of these numbers: they must be the protocol's, or the API would accept what the
// store refuses (a 400 from the store instead of the schema's) or the reverse.
describe('the protocol and the store agree', () => {
  it('on the bounds of a lookup, a reverse lookup and the job routes', () => {
    assert.equal(LOOKUP_LIMITS.maxItems, PROTOCOL_LIMITS.lookupItems);
    assert.equal(LOOKUP_LIMITS.maxFieldLength, PROTOCOL_LIMITS.fieldLength);
    assert.equal(LOOKUP_LIMITS.maxHashes, PROTOCOL_LIMITS.reverseLookupHashes);
    assert.equal(JOB_LIMITS.maxClaim, PROTOCOL_LIMITS.claimJobs);
    assert.equal(JOB_LIMITS.maxLeaseSeconds, PROTOCOL_LIMITS.leaseSeconds);
    assert.equal(JOB_LIMITS.maxWorkerIdLength, PROTOCOL_LIMITS.workerIdLength);
    assert.equal(JOB_LIMITS.maxErrorLength, PROTOCOL_LIMITS.jobErrorLength);
    assert.equal(JOB_LIMITS.maxPlatforms, PROTOCOL_LIMITS.claimPlatforms);
  });

  it('on the job states', () => {
    assert.deepEqual([...JOB_STATES], [...PROTOCOL_JOB_STATES]);
  });
});
