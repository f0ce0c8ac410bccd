import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeCredentials, describeMount, describeStatus, mountListLine } from '../../src/radioctl/format.js';
import { summarizeCluster, type ClusterSummary } from '../../src/coordination/cluster-summary.js';
import { emptyClusterState } from '../../src/coordination/cluster-state.js';
import { publicMount, type Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus } from '../support/fixtures.js';

const SECRET = 'Very-secret-source-pw';

const live: Mount = { path: '/live.mp3', username: 'source', password: SECRET, fallback: '/backup.mp3' };
const backup: Mount = { path: '/backup.mp3', username: 'source', password: SECRET };
const relay: Mount = { path: '/relay.mp3', username: 'source', password: SECRET, relayUrl: 'http://u:relay-secret@example.com:8000/x' };
const low: Mount = {
  path: '/live-low.ogg',
  username: 'source',
  password: SECRET,
  transcoding: { source: '/live.mp3', codec: 'vorbis', bitrate: 64, samplerate: 44100, channels: 1, quality: 0.4 },
};

function node(name: string, extra: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { addresses: ['192.0.2.1', '2001:db8::1'], maxListeners: 0, ...extra });
}

function summary(): ClusterSummary {
  return summarizeCluster({
    ...emptyClusterState(),
    connected: true,
    mounts: new Map([live, backup, relay, low].map((m) => [m.path, m])),
    nodes: new Map(
      [
        node('alpha', {
          mounts: { '/live.mp3': 12, '/live-low.ogg': 3 }, listeners: 15, bandwidthKbps: 1500.4, maxListeners: 100, version: '1.3.0',
          onAir: { '/live.mp3': { since: Date.UTC(2026, 11, 4, 20, 0, 0), title: 'Morning show', contentType: 'audio/mpeg', bitrateKbps: 128 } },
        }),
        node('beta', { mounts: { '/live.mp3': 5 }, listeners: 5, icecastOk: false, maxBandwidthKbps: 10000, version: '1.2.0', draining: true }),
      ].map((n) => [n.name, n]),
    ),
    master: { name: 'alpha', addresses: ['192.0.2.1'], icecastPort: 8000 },
  });
}

test('describeCredentials prints path, username and password (the one place it should)', () => {
  const text = describeCredentials(live);
  assert.equal(text, `mount: /live.mp3\nsource username: source\nsource password: ${SECRET}`);
});

test('describeMount shows every setting and no password', () => {
  const text = describeMount(publicMount(low));
  assert.match(text, /^\/live-low.ogg\n/);
  assert.match(text, /source username: source/);
  assert.match(text, /transcoded from \/live.mp3: vorbis 64 kbit\/s, 44100 Hz, mono, quality 0.4/);
  assert.equal(text.includes(SECRET), false);
  assert.match(describeMount(publicMount(live)), /fallback: \/backup.mp3/);
  const relayText = describeMount(publicMount(relay));
  assert.match(relayText, /relay from: http:\/\/example.com:8000\/x/);
  assert.equal(relayText.includes('relay-secret'), false);
  // Even if handed a full Mount, it prints no password.
  assert.equal(describeMount(live).includes(SECRET), false);
});

test('list lines: one per mount, kind and fallback, no secrets', () => {
  assert.equal(mountListLine(publicMount(backup)), '/backup.mp3\tsource');
  assert.equal(mountListLine(publicMount(live)), '/live.mp3\tsource, fallback /backup.mp3');
  assert.equal(mountListLine(publicMount(low)), '/live-low.ogg\ttranscoded from /live.mp3');
  assert.equal(mountListLine(publicMount(relay)), '/relay.mp3\trelay of http://example.com:8000/x');
  for (const m of [live, backup, relay, low]) {
    const line = mountListLine(m);
    assert.equal(line.includes(SECRET), false);
    assert.equal(line.includes('\n'), false);
  }
});

test('describeStatus: master, node table, per-mount listeners, totals; no password anywhere', () => {
  const text = describeStatus(summary());
  assert.equal(text.includes(SECRET), false);
  assert.equal(text.includes('relay-secret'), false);
  assert.match(text, /^master: alpha$/m);
  assert.doesNotMatch(text, /warning/);
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('NODE'))!;
  assert.match(header, /^NODE\s+ADDRESSES\s+ICECAST\s+LISTENERS\s+BANDWIDTH\s+ROLE\s+VERSION$/);
  assert.match(text, /^alpha\s+192\.0\.2\.1,2001:db8::1\s+ok\s+15\/100\s+1500 kbit\/s\s+master\s+1\.3\.0$/m);
  assert.match(text, /^beta\s+\S+\s+DOWN\s+5\/unlimited\s+0 kbit\/s of 10000\s+relay,draining\s+1\.2\.0$/m);
  assert.match(text, /^\/live\.mp3\s+17\s+alpha=12 beta=5\s+on air since 2026-12-04T20:00:00\.000Z \(audio\/mpeg, 128 kbit\/s\), "Morning show"$/m);
  assert.match(text, /^\/live-low\.ogg\s+3\s+alpha=3\s+off air$/m);
  assert.match(text, /^\/backup\.mp3\s+0\s+-\s+off air$/m);
  assert.match(text, /^mixed versions: 1\.2\.0, 1\.3\.0 \(an upgrade is under way\)$/m);
  assert.match(text, /^total: 2 nodes \(1 healthy\), 20 listeners, 1500 kbit\/s$/m);
  // Columns line up: every row of the node table starts its second column at the same place.
  const col = header.indexOf('ADDRESSES');
  for (const l of lines.filter((l) => /^(alpha|beta) /.test(l))) assert.equal(l.indexOf('192.0.2.1'), col, l);
});

test('describeStatus of an empty, disconnected cluster says so', () => {
  const text = describeStatus(summarizeCluster(emptyClusterState()));
  assert.match(text, /^warning: etcd did not answer/);
  assert.match(text, /master: \(none elected\)/);
  assert.match(text, /nodes: none alive/);
  assert.match(text, /mounts: none/);
  assert.match(text, /total: 0 nodes \(0 healthy\), 0 listeners, 0 kbit\/s/);
});

test('describeStatus shows the cluster listener limit when every node has one', () => {
  const s = summarizeCluster({
    ...emptyClusterState(),
    connected: true,
    nodes: new Map([['a', node('a', { maxListeners: 40, listeners: 2 })]]),
  });
  assert.match(describeStatus(s), /2 listeners of 40/);
});
