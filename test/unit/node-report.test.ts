import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildNodeStatus, nonListenerClients, relaysFromOtherNodes, transcoderPulls } from '../../src/radiod/node-report.js';
import type { IcecastStats } from '../../src/radiod/icecast/stats.js';
import { nodeStatus } from '../support/fixtures.js';
import type { Mount } from '../../src/coordination/mount.js';
import { nodeStatusProblems } from '../../src/coordination/node-status.js';

const mount = (path: string): Mount => ({ path, username: 'source', password: 'source-pass1' });

const settings = { name: 'm', addresses: ['192.0.2.1'], icecastPort: 8000, maxListeners: 0, bandwidthMbps: 0 };

test('on the master, other nodes with a healthy Icecast relay every mount and are not counted as its listeners', () => {
  const nodes = new Map([
    ['m', nodeStatus('m', { mounts: { '/a.mp3': 5 } })],
    ['r1', nodeStatus('r1', { mounts: { '/a.mp3': 2 } })],
    ['r2', nodeStatus('r2', { mounts: {} })],
    ['down', nodeStatus('down', { icecastOk: false })],
  ]);
  const mounts = new Map([['/a.mp3', mount('/a.mp3')], ['/b.mp3', mount('/b.mp3')], ['/c.mp3', mount('/c.mp3')]]);
  const relays = relaysFromOtherNodes({ nodes, mounts }, 'm');
  assert.deepEqual(relays, { '/a.mp3': 2, '/b.mp3': 2, '/c.mp3': 2 });
  const stats: IcecastStats = {
    serverId: 'Icecast 2.4.4',
    listeners: 9,
    mounts: [
      { mount: '/a.mp3', listeners: 5 },
      { mount: '/b.mp3', listeners: 2 },
      { mount: '/c.mp3', listeners: 1 },
      { mount: '/d.mp3', listeners: 3 },
    ],
  };
  const status = buildNodeStatus(settings, stats, 0, 1, relays);
  // Mounts without people are left out of the status.
  assert.deepEqual(status.mounts, { '/a.mp3': 3, '/d.mp3': 3 });
  assert.equal(status.listeners, 6);
  assert.deepEqual(relaysFromOtherNodes({ nodes: new Map([['m', nodeStatus('m')]]), mounts }, 'm'), {});
});

test("a relayed mount's listeners, on its hidden relay mount or (while moving over) on the mount itself, count as the mount's", () => {
  const stats: IcecastStats = {
    serverId: 'Icecast 2.4.4',
    listeners: 9,
    mounts: [
      { mount: '/_relay/a.mp3', listeners: 5 },
      { mount: '/a.mp3', listeners: 2 },
      { mount: '/_relay/b.mp3', listeners: 0 },
      { mount: '/_internal.mp3', listeners: 2 },
    ],
  };
  const status = buildNodeStatus(settings, stats, 0, 1);
  assert.deepEqual(status.mounts, { '/a.mp3': 7 });
  assert.equal(status.listeners, 7);
});

test('on the master, each transcoding mount pulls its source once: the pull is no listener', () => {
  const transcoded = (path: string, source: string): Mount => ({
    ...mount(path),
    transcoding: { source, codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
  });
  const mounts = new Map([
    ['/a.mp3', mount('/a.mp3')],
    ['/a-low.mp3', transcoded('/a-low.mp3', '/a.mp3')],
    ['/a.ogg', transcoded('/a.ogg', '/a.mp3')],
    ['/b.mp3', mount('/b.mp3')],
  ]);
  assert.deepEqual(transcoderPulls({ mounts }), { '/a.mp3': 2 });
  const nodes = new Map([['m', nodeStatus('m')], ['r', nodeStatus('r')]]);
  const clients = nonListenerClients({ nodes, mounts }, 'm');
  assert.deepEqual(clients, { '/a.mp3': 3, '/a-low.mp3': 1, '/a.ogg': 1, '/b.mp3': 1 });
  // Two transcoders and one relay on /a.mp3, nobody listening: no listener.
  const stats: IcecastStats = { serverId: 'Icecast 2.4.4', listeners: 3, mounts: [{ mount: '/a.mp3', listeners: 3 }] };
  assert.equal(buildNodeStatus(settings, stats, 0, 1, clients).listeners, 0);
});

test('only the master publishes what is on air; internal mounts and mounts without a source are left out', () => {
  const stats: IcecastStats = {
    serverId: 'Icecast 2.4.4',
    listeners: 0,
    mounts: [
      { mount: '/a.mp3', listeners: 0, sourceSince: 5000, title: 'T', contentType: 'audio/mpeg', bitrateKbps: 128 },
      { mount: '/_probe', listeners: 0, sourceSince: 6000 },
      { mount: '/idle.mp3', listeners: 0 },
    ],
  };
  const master = buildNodeStatus(settings, stats, 0, 1, {}, { isMaster: true, version: '9.9.9' });
  assert.deepEqual(master.onAir, { '/a.mp3': { since: 5000, title: 'T', contentType: 'audio/mpeg', bitrateKbps: 128 } });
  assert.equal(master.version, '9.9.9');
  assert.deepEqual(nodeStatusProblems(master), []);
  assert.equal(buildNodeStatus(settings, stats, 0, 1).onAir, undefined);
  assert.equal(buildNodeStatus(settings, undefined, 0, 1, {}, { isMaster: true }).onAir, undefined);
});

test("the front door's listeners replace its feeds in Icecast's count: N listeners on one feed are N, not 1", () => {
  const stats: IcecastStats = {
    serverId: 'Icecast 2.4.4',
    listeners: 6,
    mounts: [
      { mount: '/a.mp3', listeners: 3 }, // one feed + two listeners straight on Icecast's port
      { mount: '/_relay/b.mp3', listeners: 1 }, // the feed of a relayed mount
      { mount: '/c.mp3', listeners: 2 }, // no front door listener
    ],
  };
  const frontDoor = { mounts: { '/a.mp3': 40, '/b.mp3': 7 }, feeds: { '/a.mp3': 1, '/b.mp3': 1, '/d.mp3': 1 } };
  const status = buildNodeStatus(settings, stats, 0, 1, {}, { frontDoor });
  assert.deepEqual(status.mounts, { '/a.mp3': 42, '/b.mp3': 7, '/c.mp3': 2 });
  assert.equal(status.listeners, 51);
  assert.deepEqual(nodeStatusProblems(status), []);
  // A feed lingering after its last listener (or still connecting) is nobody.
  const idle = buildNodeStatus(settings, stats, 0, 1, {}, { frontDoor: { mounts: {}, feeds: { '/a.mp3': 1, '/b.mp3': 1 } } });
  assert.deepEqual(idle.mounts, { '/a.mp3': 2, '/c.mp3': 2 });
  // Without an Icecast answer the node reports no listeners, whatever the front door says.
  assert.deepEqual(buildNodeStatus(settings, undefined, 0, 1, {}, { frontDoor }).mounts, {});
});
