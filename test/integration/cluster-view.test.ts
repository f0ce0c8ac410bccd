import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ClusterView, readClusterState } from '../../src/coordination/cluster-view.js';
import { MountStore } from '../../src/coordination/mount-store.js';
import { Presence } from '../../src/coordination/presence.js';
import { mountKey, nodeKey } from '../../src/coordination/keys.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import type { TestEtcd } from '../support/etcd.js';
import type { BlackholeProxy } from '../support/blackhole-proxy.js';
import { startViewBehindProxy, type ViewBehindProxy } from '../support/view-behind-proxy.js';
import { nodeStatus } from '../support/fixtures.js';
import { waitFor } from '../support/wait.js';

const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
let etcd: TestEtcd;
let proxy: BlackholeProxy;
let admin: Etcd3;
let viewClient: Etcd3;
let view: ClusterView;

function status(name: string, listeners = 0): NodeStatus {
  return {
    name,
    addresses: ['127.0.0.1'],
    icecastPort: 8000,
    icecastOk: true,
    mounts: {},
    listeners,
    bandwidthKbps: 0,
    maxListeners: 100,
    maxBandwidthKbps: 0,
    reportedAt: Date.now(),
  };
}

const mount = (path: string) => ({ path, username: 'source', password: 'abcdefgh12' });

/** Distinct node keys written during the cut: their current values alone are over 4 MB. */
const BIG_NODES = 130;
const BIG_WRITES = 200;

/** A status report of about 34 KB, like a node's with 1,000 mounts listed. */
function bigStatus(name: string, round: number): string {
  const mounts: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) mounts[`/station${Math.floor(i / 10)}/stream-${i % 10}-128k.mp3`] = (i + round) % 7;
  const value = JSON.stringify(nodeStatus(name, { mounts, reportedAt: Date.now() }));
  assert.ok(value.length > 33_000, `status of ${value.length} bytes`);
  return value;
}


let fixture: ViewBehindProxy;

before(async () => {
  fixture = await startViewBehindProxy();
  ({ etcd, proxy, admin, viewClient, view } = fixture);
});

after(async () => {
  await fixture.stop();
});

test('the view follows mounts and node presence', async () => {
  // start() returns after 5 s even without etcd; on a busy machine the first read can take longer.
  await waitFor('first full read', () => view.loaded, { timeoutMs: 20_000 });
  await new MountStore(admin).create(mount('/one.mp3'));
  await waitFor('mount in view', () => view.current().mounts.has('/one.mp3'));

  const presence = new Presence(admin, 'node1', { ttlSeconds: 2, log });
  presence.start();
  presence.publish(status('node1', 3));
  const joined = await waitFor('node in view', () => view.current().nodes.get('node1'));
  assert.equal(joined.listeners, 3);
  const serialAfterJoin = view.current().membershipSerial;
  // A health change, published at once (listener counts are rate-limited).
  presence.publish({ ...status('node1', 3), icecastOk: false });
  await waitFor('status update in view', () => view.current().nodes.get('node1')?.icecastOk === false);
  assert.equal(view.current().membershipSerial, serialAfterJoin, 'a status update is not a membership change');

  const stoppedAt = Date.now();
  await presence.stop();
  await waitFor('node gone from view', () => !view.current().nodes.has('node1'), { timeoutMs: 3000 });
  console.log(`# measured: presence_removal_ms=${Date.now() - stoppedAt}`);
  assert.notEqual(view.current().membershipSerial, serialAfterJoin);
});

test('malformed values in etcd are skipped and never erase the last valid mount', async () => {
  await new MountStore(admin).create(mount('/keep.mp3'));
  await waitFor('mount in view', () => view.current().mounts.has('/keep.mp3'));
  await admin.put(mountKey('/keep.mp3')).value('{not json');
  await admin.put(mountKey('/garbage.mp3')).value('[]');
  await new MountStore(admin).create(mount('/after.mp3'));
  await waitFor('later mount in view', () => view.current().mounts.has('/after.mp3'));
  assert.equal(view.current().mounts.get('/keep.mp3')?.password, 'abcdefgh12');
  assert.ok(!view.current().mounts.has('/garbage.mp3'));
  await admin.delete().key(mountKey('/keep.mp3'));
  await admin.delete().key(mountKey('/garbage.mp3'));
  await waitFor('deleted mount leaves the view', () => !view.current().mounts.has('/keep.mp3'));
});

test('while etcd is silent the last state is kept; afterwards the view catches up', async () => {
  const before = view.current();
  proxy.blackhole();
  await waitFor('view notices etcd is unreachable', () => !view.current().connected, { timeoutMs: 10_000 });
  assert.deepEqual([...view.current().mounts.keys()].sort(), [...before.mounts.keys()].sort());
  await new MountStore(admin).create(mount('/during.mp3'));
  proxy.cut();
  proxy.restore();
  await waitFor('view reconnected with the change', () => view.current().connected && view.current().mounts.has('/during.mp3'), {
    timeoutMs: 20_000,
  });
});

test('a watch that fell behind a compaction reads everything again', async () => {
  proxy.cut();
  const store = new MountStore(admin);
  await store.create(mount('/compacted-1.mp3'));
  await store.delete('/one.mp3');
  const res = await admin.put('/autoradio/v1/test-marker').value('x').exec();
  // etcd3's KV client exposes compaction through the raw RPC.
  await admin.kv.compact({ revision: res.header.revision, physical: true });
  proxy.restore();
  await waitFor('view resynced after compaction', () => {
    const s = view.current();
    return s.connected && s.mounts.has('/compacted-1.mp3') && !s.mounts.has('/one.mp3');
  }, { timeoutMs: 20_000 });
});

/*
 * A cluster's worth of big status reports: more than one gRPC message (4 MB by default) can carry.
 */
test('after a cut during which megabytes were written, the view converges to etcd within seconds', async () => {
  await new MountStore(admin).create(mount('/gone.mp3'));
  await waitFor('mount in view', () => view.current().connected && view.current().mounts.has('/gone.mp3'), { timeoutMs: 20_000 });
  proxy.cut();
  const cutAt = Date.now();
  for (let i = 0; i < BIG_WRITES; i++) {
    const name = `big${i % BIG_NODES}`;
    await admin.put(nodeKey(name)).value(bigStatus(name, i));
  }
  const store = new MountStore(admin);
  await store.delete('/gone.mp3');
  await store.create(mount('/new.mp3'));
  // The path stays down about 3 s, long enough for the client to notice and retry.
  await waitFor('3 s of cut', () => Date.now() - cutAt >= 3000, { timeoutMs: 10_000 });
  proxy.restore();
  const healedAt = Date.now();
  await waitFor(
    'view converged after the path healed',
    () => {
      const s = view.current();
      return s.connected && s.mounts.has('/new.mp3') && !s.mounts.has('/gone.mp3') && s.nodes.size === BIG_NODES;
    },
    { timeoutMs: 15_000 },
  );
  console.log(`# measured: converge_after_heal_ms=${Date.now() - healedAt}`);
});

test('a first full read of more than 4 MB succeeds, in the view and in a one-shot read', async () => {
  const fresh = connectEtcd({ etcdUrls: [etcd.url] });
  const second = new ClusterView(fresh, log);
  try {
    await second.start();
    await waitFor('big first read', () => second.loaded, { timeoutMs: 15_000 });
    assert.equal(second.current().nodes.size, BIG_NODES);
    assert.ok(second.current().mounts.has('/new.mp3'));
    const once = await readClusterState(fresh);
    assert.equal(once.nodes.size, BIG_NODES);
  } finally {
    await second.stop();
    fresh.close();
  }
});
