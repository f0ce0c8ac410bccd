import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeCluster } from '../../src/coordination/cluster-summary.js';
import { emptyClusterState, type ClusterState } from '../../src/coordination/cluster-state.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus } from '../support/fixtures.js';

const SECRET = 'Super-secret-source-pw';

function node(name: string, extra: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { ...extra });
}

function state(mounts: Mount[], nodes: NodeStatus[], masterName?: string): ClusterState {
  return {
    ...emptyClusterState(),
    connected: true,
    mounts: new Map(mounts.map((m) => [m.path, m])),
    nodes: new Map(nodes.map((n) => [n.name, n])),
    master: masterName === undefined ? undefined : { name: masterName, addresses: ['192.0.2.9'], icecastPort: 8000 },
  };
}

const live: Mount = { path: '/live.mp3', username: 'source', password: SECRET };
const jazz: Mount = { path: '/jazz.ogg', username: 'source', password: SECRET, relayUrl: 'http://dj:upstream-pw@example.com/j' };

test('an empty cluster', () => {
  const s = summarizeCluster(emptyClusterState());
  assert.equal(s.master, undefined);
  assert.equal(s.connected, false);
  assert.deepEqual(s.nodes, []);
  assert.deepEqual(s.mounts, []);
  assert.deepEqual(s.totals, { nodes: 0, healthyNodes: 0, listeners: 0, bandwidthKbps: 0, maxListeners: 0 });
});

test('per-mount listeners are summed over nodes; totals add up; the master is marked', () => {
  const s = summarizeCluster(
    state(
      [live, jazz],
      [
        node('b', { mounts: { '/live.mp3': 3, '/jazz.ogg': 1 }, listeners: 4, bandwidthKbps: 512.5, maxListeners: 50 }),
        node('a', { mounts: { '/live.mp3': 7, '/gone.mp3': 2 }, listeners: 9, bandwidthKbps: 100, icecastOk: false }),
      ],
      'b',
    ),
  );
  assert.equal(s.master, 'b');
  assert.equal(s.connected, true);
  assert.deepEqual(
    s.nodes.map((n) => [n.name, n.isMaster]),
    [
      ['a', false],
      ['b', true],
    ],
  );
  assert.deepEqual(
    s.mounts.map((m) => [m.path, m.listeners, m.listenersByNode]),
    [
      ['/jazz.ogg', 1, { b: 1 }],
      ['/live.mp3', 10, { a: 7, b: 3 }],
    ],
  );
  assert.deepEqual(s.totals, { nodes: 2, healthyNodes: 1, listeners: 13, bandwidthKbps: 612.5, maxListeners: 150 });
});

test('a node without a listener limit makes the cluster total unlimited (0)', () => {
  const s = summarizeCluster(state([], [node('a', { maxListeners: 100 }), node('b', { maxListeners: 0 })]));
  assert.equal(s.totals.maxListeners, 0);
});

test('an elected master that is not present is still named; no node is marked', () => {
  const s = summarizeCluster(state([live], [node('a')], 'ghost'));
  assert.equal(s.master, 'ghost');
  assert.equal(s.nodes[0]!.isMaster, false);
});

test('the summary carries no password, not even a relay URL credential', () => {
  const s = summarizeCluster(state([live, jazz], [node('a', { mounts: { '/live.mp3': 1 } })], 'a'));
  const json = JSON.stringify(s);
  assert.equal(json.includes(SECRET), false);
  assert.equal(json.includes('upstream-pw'), false);
  assert.equal(json.includes('"password"'), false);
  assert.equal(s.mounts.find((m) => m.path === '/jazz.ogg')!.relayUrl, 'http://example.com/j');
});
