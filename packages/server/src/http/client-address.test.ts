import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { quotaClient } from './client-address.js';

it('count IPv4 clients by address, IPv6 clients by /64, IPv4-mapped IPv6 as IPv4', () => {
  assert.equal(quotaClient('203.0.113.7'), '203.0.113.7');
  assert.equal(quotaClient('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(quotaClient('::FFFF:cb00:7107'), '203.0.113.7');
  // Every address of one /64 is one client, however it is written.
  for (const a of [
    '2001:db8:1:2::5',
    '2001:0db8:0001:0002:ffff:0:0:1',
    '2001:db8:1:2:a:b:c:d',
    '2001:db8:1:2::1%eth0',
  ]) {
    assert.equal(quotaClient(a), '2001:db8:1:2::/64', a);
  }
  assert.equal(quotaClient('2001:db8:1:3::5'), '2001:db8:1:3::/64');
  assert.equal(quotaClient('::1'), '0:0:0:0::/64');
  assert.equal(quotaClient('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
  assert.equal(quotaClient(''), '');
});
