import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { MountStore } from '../../src/coordination/mount-store.js';
import { Presence } from '../../src/coordination/presence.js';
import { mountKey } from '../../src/coordination/keys.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { startBlackholeProxy, type BlackholeProxy } from '../support/blackhole-proxy.js';
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

before(async () => {
  etcd = await startEtcd();
  const u = new URL(etcd.url);
  proxy = await startBlackholeProxy({ host: u.hostname, port: Number(u.port) });
  admin = connectEtcd({ etcdUrls: [etcd.url] });
  viewClient = connectEtcd({ etcdUrls: [proxy.url] });
  view = new ClusterView(viewClient, log);
  await view.start();
});

after(async () => {
  await view.stop();
  viewClient.close();
  admin.close();
  await proxy.close();
  await etcd.stop();
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
