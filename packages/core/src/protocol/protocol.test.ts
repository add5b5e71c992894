import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import {
  API_ROUTES,
  generationJobSchema,
  isApiErrorCode,
  lookupAnswerSchema,
  lookupRequestSchema,
  protocolJsonSchema,
  routePath,
} from './index.js';

describe('protocol', () => {
  it('fills in route paths, each parameter URI-encoded', () => {
    assert.equal(routePath(API_ROUTES.failJob, { id: 7 }), '/v1/jobs/7/fail');
    assert.equal(routePath(API_ROUTES.adminKey, { fingerprint: 'a/b' }), '/v1/admin/keys/a%2Fb');
  });

  it('knows its error codes and nothing else', () => {
    assert.ok(isApiErrorCode('LEASE_LOST'));
    assert.ok(!isApiErrorCode('toString'));
    assert.ok(!isApiErrorCode('HTTP_502'));
  });

  it('gives the server a strict JSON Schema for a request: extra properties refused, bounds kept', () => {
    const schema = protocolJsonSchema(lookupRequestSchema) as {
      additionalProperties: boolean;
      required: string[];
      properties: { items: { maxItems: number } };
    };
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(schema.required, ['platform', 'items']);
    assert.equal(schema.properties.items.maxItems, 100_000);
    assert.equal('$schema' in schema, false);
  });

  it('documents what the server always sends, while a reader needs only what it uses', () => {
    const schema = protocolJsonSchema(lookupAnswerSchema) as { required: string[] };
    assert.ok(schema.required.includes('foreignCatalogs'));
    // A reader: an answer without foreignCatalogs parses; fields it ignores are not checked.
    const parsed = lookupAnswerSchema.safeParse({
      platform: 'debian/bookworm/amd64',
      items: [{ name: 'a', version: '1', arch: 'amd64', status: 'pending', job: 'anything' }],
    });
    assert.ok(parsed.success);
    const job = protocolJsonSchema(generationJobSchema) as {
      required: string[];
      properties: Record<string, { enum?: string[]; minimum?: number }>;
    };
    assert.ok(job.required.includes('createdAt'));
    assert.deepEqual(job.properties.state?.enum, ['pending', 'running', 'done', 'dead']);
    // zod's safe-integer range is not a bound of the protocol.
    assert.equal(job.properties.manifestId?.minimum, undefined);
  });
});
