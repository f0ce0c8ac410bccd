import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addressKey, isLoopback } from '../../src/redirectord/http/client-address.js';
import { ConnectionBudget } from '../../src/redirectord/http/connection-budget.js';

test('addresses are limited as IPv4 addresses and IPv6 /64s', () => {
  assert.equal(addressKey('192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey('::FFFF:192.0.2.7'), '192.0.2.7');
  assert.equal(addressKey(undefined), 'unknown');
  assert.equal(addressKey('not an address'), 'unknown');
  const k = addressKey('2001:db8:1:2::1');
  assert.equal(k, '2001:db8:1:2::/64');
  for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002:0:0:0:9', '2001:DB8:1:2:a::b', '2001:db8:1:2::1%eth0', '2001:db8:1:2::192.0.2.1']) {
    assert.equal(addressKey(same), k, same);
  }
  for (const other of ['2001:db8:1:3::1', '2001:db8::1', '::1', '2001:db8:1:2:0:0:0:0'.replace(':2:', ':20:')]) {
    assert.notEqual(addressKey(other), k, other);
  }
  assert.equal(addressKey('::1'), '0:0:0:0::/64');
  assert.equal(addressKey('::'), addressKey('::1'));
});

test('many addresses of one /64 share one per-address limit; streams are not limited per address', () => {
  const budget = new ConnectionBudget<string>({ perAddress: 3, pending: 100, total: 1000 });
  const admitted: string[] = [];
  for (let i = 1; i <= 10; i++) {
    const conn = `c${i}`;
    const a = budget.admit(conn, addressKey(`2001:db8:0:7::${i.toString(16)}`));
    if (a.kind === 'admitted') admitted.push(conn);
    else assert.equal(a.reason, 'per_address');
  }
  assert.deepEqual(admitted, ['c1', 'c2', 'c3']);
  assert.equal(budget.counts().addresses, 1);
  // A neighbouring /64 is another subscriber.
  assert.equal(budget.admit('n1', addressKey('2001:db8:0:8::1')).kind, 'admitted');
  // Once streaming, they no longer count against their address: hundreds of listeners behind
  // one carrier-grade NAT address are fine.
  for (const c of admitted) budget.reclassify(c, 'streaming');
  const key = addressKey('2001:db8:0:7::1');
  assert.equal(budget.limitedAt(key), 0);
  for (let i = 0; i < 300; i++) {
    const conn = `s${i}`;
    assert.equal(budget.admit(conn, key).kind, 'admitted', conn);
    budget.reclassify(conn, 'streaming');
  }
  // Handed to the HTTP application, a connection still counts.
  for (const c of ['h1', 'h2', 'h3']) {
    budget.admit(c, key);
    budget.reclassify(c, 'http');
  }
  assert.deepEqual(budget.admit('h4', key), { kind: 'refused', reason: 'per_address' });
});

test('over its limit an address first loses its oldest kept-alive connection', () => {
  const budget = new ConnectionBudget<string>({ perAddress: 2, pending: 100, total: 100 });
  budget.admit('a', '192.0.2.1');
  budget.admit('b', '192.0.2.1');
  budget.reclassify('a', 'kept');
  budget.reclassify('b', 'kept');
  assert.deepEqual(budget.admit('c', '192.0.2.1'), { kind: 'admitted', evicted: ['a'] });
  assert.equal(budget.classOf('a'), undefined);
  assert.deepEqual(budget.admit('d', '192.0.2.1'), { kind: 'admitted', evicted: ['b'] });
  assert.deepEqual(budget.admit('e', '192.0.2.1'), { kind: 'refused', reason: 'per_address' });
});

test('the pending cap evicts the oldest kept-alive, else the oldest head; the total cap refuses', () => {
  const budget = new ConnectionBudget<string>({ perAddress: 100, pending: 3, total: 6 });
  for (const c of ['h1', 'h2', 'k1']) budget.admit(c, `10.0.0.${c}`);
  budget.reclassify('k1', 'kept');
  assert.deepEqual(budget.admit('h3', 'x'), { kind: 'admitted', evicted: ['k1'] });
  assert.deepEqual(budget.admit('h4', 'y'), { kind: 'admitted', evicted: ['h1'] });
  budget.reclassify('h2', 'streaming');
  budget.reclassify('h3', 'streaming');
  budget.admit('h5', 'z');
  budget.admit('h6', 'z');
  assert.equal(budget.counts().total, 5);
  assert.deepEqual(budget.admit('h7', 'z'), { kind: 'admitted', evicted: ['h4'] });
  assert.equal(budget.counts().total, 5);
  for (const c of ['h5', 'h6', 'h7']) budget.reclassify(c, 'streaming');
  assert.deepEqual(budget.admit('h8', 'w'), { kind: 'admitted', evicted: [] });
  assert.deepEqual(budget.admit('h9', 'w'), { kind: 'refused', reason: 'total' });
  // A refused connection is counted until it is gone.
  assert.equal(budget.counts().total, 7);
  budget.release('h9');
  budget.release('h9');
  assert.equal(budget.counts().total, 6);
});

test('loopback: 127/8, ::1 in any spelling, IPv4-mapped 127.x; nothing else', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '::FFFF:127.9.9.9']) assert.ok(isLoopback(a), a);
  for (const a of [undefined, '', '10.0.0.1', '128.0.0.1', '::', '::2', '::ffff:10.0.0.1', 'fe80::1%lo', '1::1', 'localhost', '127.0.0.1.evil']) {
    assert.ok(!isLoopback(a), String(a));
  }
});
