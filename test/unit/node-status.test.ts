import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeStatusProblems, type NodeStatus } from '../../src/coordination/node-status.js';

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

test('node status validation names what is wrong', () => {
  assert.deepEqual(nodeStatusProblems(base), []);
  assert.match(nodeStatusProblems({ ...base, addresses: ['not-an-ip'] }).join(), /invalid addresses: not-an-ip/);
  assert.match(nodeStatusProblems({ ...base, listeners: -1 }).join(), /listeners/);
  assert.match(nodeStatusProblems({ ...base, name: '../x' }).join(), /name/);
});
