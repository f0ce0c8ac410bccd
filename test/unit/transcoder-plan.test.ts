import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClusterState, MasterInfo } from '../../src/coordination/cluster-state.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { masterIcecast } from '../../src/coordination/host-port.js';
import {
  DEFAULT_SPREAD,
  campaignDelayMs,
  fairShare,
  runAction,
  wantedTranscoders,
} from '../../src/radiod/transcoder/plan.js';

const master: MasterInfo = { name: 'n1', addresses: ['10.0.0.1', '2001:db8::1'], icecastPort: 8000 };
const main: Mount = { path: '/main.mp3', username: 'source', password: 'mainpass1' };
const low: Mount = {
  path: '/low.mp3',
  username: 'lowuser',
  password: 'lowpass12',
  transcoding: { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
};

/** `m` null: no master elected. */
function state(mounts: Mount[], m: MasterInfo | null = master, nodes: string[] = ['n1', 'n2', 'n3']): ClusterState {
  return {
    mounts: new Map(mounts.map((x) => [x.path, x])),
    nodes: new Map(nodes.map((n) => [n, { name: n } as NodeStatus])),
    master: m ?? undefined,
    revision: '1',
    connected: true,
    membershipSerial: 1,
  };
}

test('only transcoding mounts are wanted, pointed at the master', () => {
  const { specs, refused } = wantedTranscoders(state([main, low]), []);
  assert.deepEqual([...specs.keys()], ['/low.mp3']);
  assert.equal(refused.size, 0);
  const spec = specs.get('/low.mp3')!;
  assert.deepEqual(spec.endpoints, {
    icecast: { host: '10.0.0.1', port: 8000 },
    sourceMount: '/main.mp3',
    targetMount: '/low.mp3',
    username: 'lowuser',
    password: 'lowpass12',
  });
  assert.ok(!spec.fingerprint.includes('lowpass12'));
});

test('without a master the mount is still wanted (campaign) but has nothing to run', () => {
  const spec = wantedTranscoders(state([main, low], null), []).specs.get('/low.mp3')!;
  assert.equal(spec.endpoints, undefined);
  assert.equal(runAction(spec, true, undefined), 'idle');
  assert.equal(masterIcecast({ ...master, addresses: [] }, []), undefined);
});

test('mounts no liquidsoap can run are refused, not campaigned for', () => {
  const bad: Mount = { ...low, path: '/bad.mp3', transcoding: { ...low.transcoding!, bitrate: 9999 } };
  const { specs, refused } = wantedTranscoders(state([main, low, bad]), []);
  assert.deepEqual([...specs.keys()], ['/low.mp3']);
  assert.match(refused.get('/bad.mp3')!, /bitrate 9999/);
});

test('the fingerprint changes with parameters, credentials and master, and only then', () => {
  const fp = (s: ClusterState) => wantedTranscoders(s, []).specs.get('/low.mp3')!.fingerprint;
  const base = fp(state([main, low]));
  assert.equal(fp(state([main, low], master, ['n1'])), base, 'membership alone does not restart');
  assert.equal(fp(state([main, { ...low, fallback: '/main.mp3' }])), base, 'fallback is Icecast business');
  const changed = [
    state([main, { ...low, transcoding: { ...low.transcoding!, bitrate: 32 } }]),
    state([main, { ...low, transcoding: { ...low.transcoding!, quality: 3 } }]),
    state([main, { ...low, password: 'otherpass1' }]),
    state([main, low], { ...master, name: 'n2', addresses: ['10.0.0.2'] }),
    state([main, low], { ...master, icecastPort: 8001 }),
    state([main, low], null),
  ];
  const fps = changed.map(fp);
  for (const f of fps) assert.notEqual(f, base);
  assert.equal(new Set(fps).size, fps.length);
});

test('runAction: run only while leading, restart on a new fingerprint', () => {
  const spec = wantedTranscoders(state([main, low]), []).specs.get('/low.mp3')!;
  assert.equal(runAction(spec, true, undefined), 'start');
  assert.equal(runAction(spec, false, undefined), 'idle');
  assert.equal(runAction(spec, true, spec.fingerprint), 'keep');
  assert.equal(runAction(spec, true, 'old'), 'restart');
  assert.equal(runAction(spec, false, spec.fingerprint), 'stop');
  assert.equal(runAction(undefined, true, spec.fingerprint), 'stop');
  assert.equal(runAction(undefined, false, undefined), 'idle');
});

test('fair share is the ceiling of mounts per live node', () => {
  assert.equal(fairShare(0, 3), 0);
  assert.equal(fairShare(1, 3), 1);
  assert.equal(fairShare(4, 3), 2);
  assert.equal(fairShare(6, 3), 2);
  assert.equal(fairShare(5, 0), 5);
});

test('campaign delays: one node per mount goes first, mounts spread over nodes, loaded nodes wait', () => {
  const nodes = ['n1', 'n2', 'n3', 'n4'];
  const mounts = Array.from({ length: 40 }, (_, i) => `/m${i}.mp3`);
  const firsts = new Map<string, number>();
  for (const mount of mounts) {
    const delays = nodes.map((node) => campaignDelayMs({ node, mount, liveNodes: nodes, leading: 0, transcodingMounts: 40 }));
    assert.deepEqual([...delays].sort((a, b) => a - b), [0, 300, 600, 900], `one rank per node for ${mount}`);
    const first = nodes[delays.indexOf(0)]!;
    firsts.set(first, (firsts.get(first) ?? 0) + 1);
  }
  assert.equal(firsts.size, 4, 'every node is first for some mounts');
  for (const n of firsts.values()) assert.ok(n >= 4, `spread: ${JSON.stringify([...firsts])}`);

  const input = { node: 'n1', mount: '/m0.mp3', liveNodes: nodes, transcodingMounts: 8 };
  const relaxed = campaignDelayMs({ ...input, leading: 1 });
  const loaded = campaignDelayMs({ ...input, leading: 2 });
  assert.equal(loaded - relaxed, DEFAULT_SPREAD.overloadDelayMs);
  assert.ok(Number.isFinite(loaded), 'a loaded node still campaigns');
  // A node not yet in the live list ranks among the others rather than being skipped.
  assert.ok(campaignDelayMs({ node: 'new', mount: '/m0.mp3', liveNodes: nodes, leading: 0, transcodingMounts: 1 }) <= 5 * 300);
  const many = Array.from({ length: 20 }, (_, i) => `x${i}`);
  const worst = Math.max(...many.map((node) => campaignDelayMs({ node, mount: '/a', liveNodes: many, leading: 0, transcodingMounts: 1 })));
  assert.equal(worst, DEFAULT_SPREAD.maxRankSteps * DEFAULT_SPREAD.rankStepMs);
});
