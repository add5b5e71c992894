import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { DashboardError } from './backend.js';
import { choice, field, hostName, offsetOf, one, parseForm, recordId, reportId } from './input.js';

/** The DashboardError `f` throws: its status and message. */
function refusal(f: () => unknown): { status: number; message: string } {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof DashboardError);
    return { status: e.status, message: e.message };
  }
  assert.fail('no refusal');
}

describe('request input', () => {
  it('reads the first of repeated query parameters, bounded in length', () => {
    assert.equal(one({ q: ['a', 'b'] }, 'q', 5), 'a');
    assert.equal(one({}, 'q', 5), '');
    assert.deepEqual(
      refusal(() => one({ q: 'abcdef' }, 'q', 5)),
      {
        status: 400,
        message: 'q is longer than 5 characters',
      },
    );
  });

  it('takes an offset from 0 to 10,000,000 in digits only', () => {
    assert.equal(offsetOf({}), 0);
    assert.equal(offsetOf({ reporters: '50' }, 'reporters'), 50);
    for (const bad of ['-1', '1e3', '0x10', '10000001', ' 5']) {
      assert.equal(refusal(() => offsetOf({ offset: bad })).status, 400, bad);
    }
  });

  it('takes a choice among its options only, none when absent', () => {
    const views = ['queue', 'history'] as const;
    assert.equal(choice({ view: 'history' }, 'view', 20, views), 'history');
    assert.equal(choice({}, 'view', 20, views), undefined);
    assert.deepEqual(
      refusal(() => choice({ view: 'other' }, 'view', 20, views)),
      {
        status: 400,
        message: 'view must be one of queue, history',
      },
    );
  });

  it('requires non-blank form fields unless optional, bounded in length', () => {
    assert.equal(field({ name: 'x' }, 'name', 10), 'x');
    assert.equal(field({}, 'host', 10, false), '');
    assert.equal(refusal(() => field({ name: ' ' }, 'name', 10)).message, 'the form has no name');
    assert.equal(refusal(() => field({ name: 'x'.repeat(11) }, 'name', 10)).status, 400);
    assert.deepEqual(parseForm('a=1&a=2&b=%3Cx%3E'), { a: '1', b: '<x>' });
  });

  it('answers 404 for a path parameter that cannot name anything', () => {
    assert.equal(refusal(() => hostName('x'.repeat(254))).status, 404);
    assert.deepEqual(
      refusal(() => recordId('0', 'token')),
      { status: 404, message: 'no such token' },
    );
    assert.equal(refusal(() => recordId('1'.repeat(16), 'job')).message, 'no such job');
    assert.equal(recordId('42', 'job'), 42);
    assert.equal(
      reportId('3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10.json'),
      '3f1c8a52-9a47-4d35-9a43-5a8f7c5d2e10',
    );
    assert.equal(refusal(() => reportId('../etc/passwd')).status, 404);
  });
});
