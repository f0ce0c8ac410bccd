import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { connectEtcd, type Etcd3 } from '../../src/coordination/client.js';
import { ClusterView, readClusterState } from '../../src/coordination/cluster-view.js';
import { MountStore } from '../../src/coordination/mount-store.js';
import { nodeKey } from '../../src/coordination/keys.js';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { startBlackholeProxy, type BlackholeProxy } from '../support/blackhole-proxy.js';
import { nodeStatus } from '../support/fixtures.js';
import { waitFor } from '../support/wait.js';

/**
 * The view against a real etcd whose TCP path the test cuts, while more is written than one
 * gRPC message (4 MB by default) can carry: a cluster's worth of big status reports.
 */

const log = pino({ level: process.env['TEST_LOG_LEVEL'] ?? 'silent' });
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

let etcd: TestEtcd;
let proxy: BlackholeProxy;
let admin: Etcd3;
let viewClient: Etcd3;
let view: ClusterView;

before(async () => {
  etcd = await startEtcd();
  const u = new URL(etcd.url);
  proxy = await startBlackholeProxy({ host: u.hostname, port: Number(u.port) });
  admin = connectEtcd({ etcdUrls: [etcd.url] });
  viewClient = connectEtcd({ etcdUrls: [proxy.url] });
  view = new ClusterView(viewClient, log);
  await new MountStore(admin).create(mount('/gone.mp3'));
  await view.start();
});

after(async () => {
  await view.stop();
  viewClient.close();
  admin.close();
  await proxy.close();
  await etcd.stop();
});

test('after a cut during which megabytes were written, the view converges to etcd within seconds', async () => {
  await waitFor('first full read', () => view.loaded && view.current().mounts.has('/gone.mp3'), { timeoutMs: 20_000 });
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
