import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm } from 'node:fs/promises';
import type { Etcd3 } from '../../src/coordination/client.js';
import { readClusterState, type ClusterView } from '../../src/coordination/cluster-view.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import { MountStore } from '../../src/coordination/mount-store.js';
import { mountKey } from '../../src/coordination/keys.js';
import { readPrefix } from '../../src/coordination/prefix-read.js';
import type { TestEtcd } from '../support/etcd.js';
import type { BlackholeProxy } from '../support/blackhole-proxy.js';
import { startViewBehindProxy, type ViewBehindProxy } from '../support/view-behind-proxy.js';
import { waitFor } from '../support/wait.js';

/*
 * Faults the view must survive without a restart: a path to etcd that flaps, etcd restarted on
 * its data dir, etcd replaced by an empty one (its revision goes backwards), and changes made
 * while the view cannot see them. In every case the view must end up equal to what etcd holds.
 */

let etcd: TestEtcd;
let proxy: BlackholeProxy;
let admin: Etcd3;
let viewClient: Etcd3;
let view: ClusterView;

const mount = (path: string, password = 'abcdefgh12') => ({ path, username: 'source', password });

/** The watch streams' bookkeeping inside the etcd3 client: one entry per watcher it still keeps. */
function watchersKept(client: Etcd3): number {
  return (client as unknown as { watchManager: { watchers: unknown[] } }).watchManager.watchers.length;
}

function summary(s: Pick<ClusterState, 'mounts'>): string {
  return JSON.stringify([...s.mounts.values()].sort((a, b) => a.path.localeCompare(b.path)));
}

/** The view holds exactly what etcd holds now (read directly, not through the proxy). */
async function converged(): Promise<boolean> {
  const truth = await readClusterState(admin);
  const s = view.current();
  return s.connected && summary(s) === summary(truth);
}

let fixture: ViewBehindProxy;

before(async () => {
  fixture = await startViewBehindProxy();
  ({ etcd, proxy, admin, viewClient, view } = fixture);
  await waitFor('first full read', () => view.loaded, { timeoutMs: 20_000 });
});

after(async () => {
  await fixture.stop();
});

test('a path to etcd that flaps every 200 ms for 6 s: the view converges and keeps one watcher', async () => {
  const store = new MountStore(admin);
  for (let i = 0; i < 5; i++) await store.create(mount(`/flap-${i}.mp3`));
  await waitFor('mounts in view', converged, { timeoutMs: 15_000 });
  const rounds = 30;
  for (let round = 0; round < rounds; round++) {
    proxy.cut();
    // Writes land while the path is down, and while it is up: some of them on each side of a cut.
    await admin.put(mountKey(`/flap-${round % 5}.mp3`)).value(JSON.stringify(mount(`/flap-${round % 5}.mp3`, `password-${round}`)));
    if (round % 7 === 3) await admin.delete().key(mountKey(`/flap-${round % 5}.mp3`));
    await new Promise((r) => setTimeout(r, 100)); // the fault schedule: down 100 ms
    proxy.restore();
    await new Promise((r) => setTimeout(r, 100)); // up 100 ms
  }
  const healedAt = Date.now();
  await waitFor('view converged after the flapping stopped', converged, { timeoutMs: 15_000 });
  console.log(`# measured: flapping_rounds=${rounds} converge_after_heal_ms=${Date.now() - healedAt}`);
  await waitFor('only the current watcher left in the client', () => watchersKept(viewClient) === 1, { timeoutMs: 10_000 });
});

test('a mount deleted and created again during a cut, and a malformed value: the view follows', async () => {
  const store = new MountStore(admin);
  await store.create(mount('/again.mp3', 'first-password'));
  await store.create(mount('/spoilt.mp3', 'kept-password'));
  await waitFor('mounts in view', converged, { timeoutMs: 15_000 });
  proxy.cut();
  await store.delete('/again.mp3');
  await store.create(mount('/again.mp3', 'second-password'));
  await admin.put(mountKey('/spoilt.mp3')).value('{"path": 42');
  await admin.put(mountKey('/never-valid.mp3')).value('null');
  proxy.restore();
  await waitFor('view has the re-created mount', () => view.current().connected && view.current().mounts.get('/again.mp3')?.password === 'second-password', {
    timeoutMs: 15_000,
  });
  assert.equal(view.current().mounts.get('/spoilt.mp3')?.password, 'kept-password', 'a malformed value keeps the last valid mount');
  assert.ok(!view.current().mounts.has('/never-valid.mp3'));
  await admin.delete().key(mountKey('/spoilt.mp3'));
  await admin.delete().key(mountKey('/never-valid.mp3'));
});

test('etcd killed and restarted on its data dir, with writes right after: the view converges', async () => {
  await etcd.restart();
  await new MountStore(admin).create(mount('/after-restart.mp3'));
  await waitFor('view converged after the restart', converged, { timeoutMs: 15_000 });
  assert.ok(view.current().mounts.has('/after-restart.mp3'));
});

test('etcd replaced by an empty one at the same address (revision backwards): the view follows it', async () => {
  await waitFor('view converged before', converged, { timeoutMs: 15_000 });
  const before = view.current();
  assert.ok(before.mounts.size > 0);
  // Write enough to carry the old revision well past anything the new etcd reaches below.
  for (let i = 0; i < 50; i++) await admin.put('/autoradio/v1/test-filler').value(String(i));
  await etcd.process.stop('SIGKILL');
  await rm(etcd.dataDir, { recursive: true, force: true });
  await mkdir(etcd.dataDir, { recursive: true });
  await etcd.restart();
  await new MountStore(admin).create(mount('/fresh.mp3'));
  await waitFor('view holds only what the new etcd holds', converged, { timeoutMs: 15_000 });
  const after = view.current();
  assert.deepEqual([...after.mounts.keys()], ['/fresh.mp3']);
  assert.ok(BigInt(after.revision) < BigInt(before.revision), `revision ${after.revision} after ${before.revision}`);
  // And it keeps following the new etcd.
  await new MountStore(admin).create(mount('/fresh-2.mp3'));
  await waitFor('later change in view', () => view.current().mounts.has('/fresh-2.mp3'), { timeoutMs: 10_000 });
});

/** `admin`, but `between` runs after each page of a paged read (once the page is in). */
function pausingBetweenPages(between: (page: number) => Promise<void>): Etcd3 {
  let pages = 0;
  return new Proxy(admin, {
    get(target, prop, receiver) {
      if (prop !== 'getAll') return Reflect.get(target, prop, receiver) as unknown;
      return () => {
        const builder = target.getAll();
        const exec = builder.exec.bind(builder);
        builder.exec = async () => {
          const res = await exec();
          await between(++pages);
          return res;
        };
        return builder;
      };
    },
  });
}

test('a paged read is one snapshot: writes between pages are not in it, a compaction between pages fails it', async () => {
  for (let i = 0; i < 6; i++) await admin.put(`/autoradio/v1/pages/${i}`).value('before');
  const writing = pausingBetweenPages(async (page) => {
    if (page === 1) {
      await admin.put('/autoradio/v1/pages/5').value('after');
      await admin.put('/autoradio/v1/pages/9').value('after');
    }
  });
  const snapshot = await readPrefix(writing, '/autoradio/v1/pages/', 2);
  assert.deepEqual(
    snapshot.kvs.map((kv) => `${kv.key.toString().slice(-1)}=${kv.value.toString()}`),
    ['0=before', '1=before', '2=before', '3=before', '4=before', '5=before'],
  );
  const compacting = pausingBetweenPages(async (page) => {
    if (page === 1) {
      const res = await admin.put('/autoradio/v1/pages/0').value('again').exec();
      await admin.kv.compact({ revision: res.header.revision, physical: true });
    }
  });
  await assert.rejects(readPrefix(compacting, '/autoradio/v1/pages/', 2), /compacted/);
  await admin.delete().prefix('/autoradio/v1/pages/');
});
