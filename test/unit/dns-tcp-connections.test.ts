import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TcpConnectionTable } from '../../src/redirectord/dns/tcp-connections.js';

test('per-client cap: IPv4 per address, IPv6 per /64', () => {
  const t = new TcpConnectionTable<string>({ maxTotal: 100, maxPerClient: 2 });
  assert.equal(t.admit('a1', '192.0.2.1', 0).kind, 'admitted');
  assert.equal(t.admit('a2', '::ffff:192.0.2.1', 0).kind, 'admitted');
  assert.deepEqual(t.admit('a3', '192.0.2.1', 0), { kind: 'refused', reason: 'per_client_limit' });
  assert.equal(t.admit('b1', '2001:db8:1:1::1', 0).kind, 'admitted');
  assert.equal(t.admit('b2', '2001:db8:1:1:ffff::2', 0).kind, 'admitted');
  assert.equal(t.admit('b3', '2001:db8:1:1::3', 0).kind, 'refused');
  assert.equal(t.admit('c1', '2001:db8:1:2::1', 0).kind, 'admitted', 'another /64 is another client');
  t.remove('a1');
  assert.equal(t.admit('a4', '192.0.2.1', 0).kind, 'admitted', 'a closed connection frees its slot');
  assert.equal(t.size, 5);
});

test('a full table closes its idlest connection for a newcomer', () => {
  const t = new TcpConnectionTable<string>({ maxTotal: 3, maxPerClient: 3 });
  t.admit('x', '192.0.2.1', 10);
  t.admit('y', '192.0.2.2', 20);
  t.admit('z', '192.0.2.3', 30);
  t.touch('x', 40);
  assert.deepEqual(t.admit('new', '192.0.2.4', 50), { kind: 'admitted', evict: ['y'] });
  assert.equal(t.size, 3);
  // The evicted connection's client slot is free again.
  assert.equal(t.admit('y2', '192.0.2.2', 60).kind, 'admitted');
});
