import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeStatusProblems, statusChanged, type NodeStatus } from '../../src/coordination/node-status.js';

const base: NodeStatus = {
  name: 'node1',
  addresses: ['192.0.2.1'],
  icecastPort: 8000,
  icecastOk: true,
  mounts: { '/a.mp3': 3 },
  listeners: 3,
  bandwidthKbps: 1000,
  maxListeners: 100,
  maxBandwidthKbps: 0,
  reportedAt: 1,
};

test('a report that only moved in time or by bandwidth noise is not a change', () => {
  assert.equal(statusChanged(base, { ...base, reportedAt: 2, bandwidthKbps: 1050 }), false);
});

test('listeners, health, limits, addresses and real bandwidth moves are changes', () => {
  assert.ok(statusChanged(undefined, base));
  assert.ok(statusChanged(base, { ...base, mounts: { '/a.mp3': 2, '/b.mp3': 1 } }));
  assert.ok(statusChanged(base, { ...base, listeners: 4 }));
  assert.ok(statusChanged(base, { ...base, icecastOk: false }));
  assert.ok(statusChanged(base, { ...base, maxListeners: 50 }));
  assert.ok(statusChanged(base, { ...base, addresses: ['192.0.2.2'] }));
  assert.ok(statusChanged(base, { ...base, bandwidthKbps: 1200 }));
});

test('node status validation names what is wrong', () => {
  assert.deepEqual(nodeStatusProblems(base), []);
  assert.match(nodeStatusProblems({ ...base, addresses: ['not-an-ip'] }).join(), /invalid addresses: not-an-ip/);
  assert.match(nodeStatusProblems({ ...base, listeners: -1 }).join(), /listeners/);
  assert.match(nodeStatusProblems({ ...base, name: '../x' }).join(), /name/);
});
