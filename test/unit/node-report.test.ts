import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNodeStatus, relaysFromOtherNodes } from '../../src/radiod/node-report.js';
import type { IcecastStats } from '../../src/radiod/icecast/stats.js';
import { nodeStatus } from '../support/fixtures.js';

const settings = { name: 'm', addresses: ['192.0.2.1'], icecastPort: 8000, maxListeners: 0, bandwidthMbps: 0 };

test('on the master, other nodes relaying a mount are not counted as its listeners', () => {
  const nodes = new Map([
    ['m', nodeStatus('m', { mounts: { '/a.mp3': 5 } })],
    ['r1', nodeStatus('r1', { mounts: { '/a.mp3': 2, '/b.mp3': 0 } })],
    ['r2', nodeStatus('r2', { mounts: { '/a.mp3': 0 } })],
    ['r3', nodeStatus('r3', { mounts: {} })],
  ]);
  const relays = relaysFromOtherNodes({ nodes }, 'm');
  assert.deepEqual(relays, { '/a.mp3': 2, '/b.mp3': 1 });
  const stats: IcecastStats = {
    serverId: 'Icecast 2.4.4',
    listeners: 9,
    mounts: [
      { mount: '/a.mp3', listeners: 5 },
      { mount: '/b.mp3', listeners: 1 },
      { mount: '/c.mp3', listeners: 3 },
    ],
  };
  const status = buildNodeStatus(settings, stats, 0, 1, relays);
  assert.deepEqual(status.mounts, { '/a.mp3': 3, '/b.mp3': 0, '/c.mp3': 3 });
  assert.equal(status.listeners, 6);
  // A relay that is not yet connected on this side never makes a count negative.
  assert.equal(buildNodeStatus(settings, { ...stats, mounts: [{ mount: '/b.mp3', listeners: 0 }] }, 0, 1, relays).mounts['/b.mp3'], 0);
});
