import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { Cluster, cleanupStale, knownRuns } from '../support/cluster.js';
import { createNamespace, listNamespaces, namespacePids, processAlive } from '../support/netns.js';
import { waitFor } from '../support/wait.js';
import { measured } from './measure.js';

/**
 * The harness itself, with etcd and Icecast only (no daemons): the failure injections do
 * what they claim, and cleanup leaves nothing behind. Also records etcd/Icecast timings
 * inside namespaces.
 */

test('namespace cluster: etcd + Icecast, failure injection, scale-out, cleanup', { timeout: 150_000 }, async (t) => {
  const c = await Cluster.start({ nodes: 3, daemons: false });
  t.after(() => c.stop());
  const timings = c.timings!;
  measured('harness_start_total_ms', timings.totalMs);
  measured('etcd_start_to_healthy_ms', timings.etcdHealthyMs);
  for (const [n, ms] of Object.entries(timings.icecastAnswersMs)) measured(`icecast_start_to_status_ms_${n}`, ms);

  // The root namespace has no route into the cluster: the addresses exist only in there.
  const rootIps = spawnSync('ip', ['-o', 'addr']).stdout.toString();
  assert.ok(!rootIps.includes(c.nodes[0]!.ip), 'node address must not exist in the root namespace');
  for (const n of c.nodes) assert.ok((await c.icecastStatus(n))?.server_id.startsWith('Icecast'));
  assert.ok(await c.etcdWritable());

  await t.test('kill -9 the raft leader: the others accept a write again', async () => {
    const status = JSON.parse((await c.etcdctl(['endpoint', 'status', '-w', 'json'])).stdout) as {
      Endpoint: string;
      Status: { header: { member_id: number }; leader: number };
    }[];
    const leaderUrl = status.find((s) => s.Status.header.member_id === s.Status.leader)!.Endpoint;
    const leader = c.nodes.find((n) => n.etcdUrl === leaderUrl)!;
    const others = c.nodes.filter((n) => n !== leader);
    const t0 = Date.now();
    await c.kill(leader, 'etcd');
    assert.equal(c.isRunning(leader, 'etcd'), false);
    await waitFor('a write through the survivors', () => c.etcdWritable(others), { timeoutMs: 15_000, intervalMs: 50 });
    measured('etcd_leader_kill_to_write_ms', Date.now() - t0);
    const t1 = Date.now();
    await c.start(leader, 'etcd');
    await c.waitEtcdHealthy(c.nodes, 15_000);
    measured('etcd_member_restart_to_healthy_ms', Date.now() - t1);
  });

  await t.test('bridge-port partition: isolated member refuses writes, majority goes on, heal rejoins', async () => {
    const cut = c.nodes[0]!;
    const majority = c.nodes.slice(1);
    const t0 = Date.now();
    await c.isolate(cut);
    // The isolated member is unreachable from the client namespace...
    assert.equal(await c.etcdHealthy([cut]), false);
    await waitFor('majority write', () => c.etcdWritable(majority), { timeoutMs: 15_000, intervalMs: 50 });
    measured('etcd_partition_to_majority_write_ms', Date.now() - t0);
    // ...and from inside its own namespace it answers but cannot commit.
    const own = await c.etcdctl(['put', '/autoradio-harness/isolated', 'x'], { endpoints: [cut.etcdUrl], via: cut, timeoutMs: 8000 });
    assert.notEqual(own.code, 0, 'isolated member must refuse a write');
    const stale = await c.etcdctl(['get', '/autoradio-harness/probe', '--consistency=s'], { endpoints: [cut.etcdUrl], via: cut });
    assert.equal(stale.code, 0, 'isolated member still serves serializable reads');
    const t1 = Date.now();
    await c.heal(cut);
    await waitFor('linearizable read on the healed member', async () => {
      const r = await c.etcdctl(['get', '/autoradio-harness/probe'], { endpoints: [cut.etcdUrl], timeoutMs: 5000 });
      return r.code === 0;
    }, { timeoutMs: 15_000, intervalMs: 50 });
    measured('etcd_heal_to_linearizable_read_ms', Date.now() - t1);
  });

  await t.test('iptables DROP variant: silent partition and undo', async () => {
    const cut = c.nodes[2]!;
    await c.dropTraffic(cut, true);
    assert.equal(await c.etcdHealthy([cut]), false);
    assert.ok(await waitFor('majority write', () => c.etcdWritable(c.nodes.slice(0, 2)), { timeoutMs: 15_000 }));
    await c.dropTraffic(cut, false);
    await c.waitEtcdHealthy(c.nodes, 15_000);
  });

  await t.test('Icecast kill -9 and restart on the same config', async () => {
    const node = c.nodes[1]!;
    await c.kill(node, 'icecast');
    assert.equal(await c.icecastStatus(node), undefined);
    const t0 = Date.now();
    await c.start(node, 'icecast');
    await c.waitIcecast(node);
    measured('icecast_restart_to_status_ms', Date.now() - t0);
  });

  await t.test('scale-out: member add + start with --initial-cluster-state existing', async () => {
    const t0 = Date.now();
    const added = await c.addNode();
    measured('etcd_scale_out_member_healthy_ms', Date.now() - t0);
    assert.equal(added.name, 'node4');
    const members = (await c.etcdctl(['member', 'list', '-w', 'simple'])).stdout.trim().split('\n');
    assert.equal(members.length, 4);
    assert.ok(members.every((m) => m.includes('started')), members.join('\n'));
    assert.ok(await c.icecastStatus(added));
  });

  await t.test('exec helper returns stdout; killNode stops every process of the node', async () => {
    const node = c.nodes[3]!;
    assert.match(await c.exec(node, ['ip', '-o', '-4', 'addr', 'show', 'eth0']), new RegExp(node.ip.replaceAll('.', '\\.')));
    await c.killNode(node);
    assert.deepEqual((await namespacePids(node.ns)).filter((p) => processAlive(p)), []);
    assert.ok(await c.etcdWritable(c.nodes.slice(0, 3)), 'three of four members keep quorum');
  });

  await t.test('stop removes every namespace and process of the run', async () => {
    const runId = c.runId;
    const nsBefore = listNamespaces().filter((n) => n.startsWith(`${runId}-`));
    assert.equal(nsBefore.length, 6); // bridge, client, 4 nodes
    const pids = (await Promise.all(nsBefore.map((n) => namespacePids(n)))).flat();
    await c.stop();
    assert.deepEqual(listNamespaces().filter((n) => n.startsWith(`${runId}-`)), []);
    assert.deepEqual(pids.filter((p) => processAlive(p)), []);
    assert.equal(existsSync(c.runDir), false);
  });
});

test('cleanup-stale removes only runs whose owner is dead', async () => {
  const dead = spawnSync('true').pid;
  const alive = process.pid;
  const staleNs = `arc${dead}r1-n1`;
  const liveNs = `arc${alive}r999-n1`;
  await createNamespace(staleNs);
  await createNamespace(liveNs);
  try {
    assert.ok(knownRuns().includes(`arc${dead}r1`));
    const removed = await cleanupStale();
    assert.ok(removed.includes(`arc${dead}r1`));
    assert.ok(!listNamespaces().includes(staleNs));
    assert.ok(listNamespaces().includes(liveNs), 'a live owner keeps its namespaces');
  } finally {
    spawnSync('ip', ['netns', 'del', staleNs]);
    spawnSync('ip', ['netns', 'del', liveNs]);
  }
});
