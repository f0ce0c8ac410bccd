import { Cluster, type ClusterNode } from '../test/support/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { configMentions, measureMasterCrash, missingPrograms, startListener, startSource, waitServedEverywhere } from '../test/cluster/setup.js';
import { benchArgs, machine, numFlag, onCleanup, percentile, report, round, runBench } from './lib/common.js';

/**
 * On the network-namespace cluster (test/support/cluster.ts, 3 nodes with etcd, Icecast,
 * radiod, redirectord): time from kill -9 of the master's radiod to a new master in etcd, over
 * several runs; the same for a crash of the whole master node (etcd member, Icecast and both
 * daemons) with a live source and a listener on each other node, reporting their audio gap
 * and disconnects; and how long a new mount takes to reach every node's icecast.xml (and,
 * with a source, to be served by every node's Icecast). Usage:
 *   node --import tsx bench/failover.ts [--quick] [--runs N] [--crashes N] [--mounts N] [--lease-ttl S]
 * Quick: 2 radiod kills, 1 node crash, 2 mounts; full: 10, 10 and 20. Reference: 0.8-1.15 x
 * TTL, measured for the same election algorithm driven by hand.
 */

const args = benchArgs();
const runs = numFlag(args, '--runs', args.quick ? 2 : 10);
const crashRuns = numFlag(args, '--crashes', args.quick ? 1 : 10);
const mountRuns = numFlag(args, '--mounts', args.quick ? 2 : 20);
const leaseTtl = numFlag(args, '--lease-ttl', 5);

async function masterName(c: Cluster, via: readonly ClusterNode[]): Promise<string | undefined> {
  return (await c.master({ endpoints: via.map((n) => n.etcdUrl) }).catch(() => undefined))?.name;
}

async function liveNodes(c: Cluster): Promise<string[]> {
  const r = await c.etcdctl(['get', '--prefix', '/autoradio/v1/nodes/', '--keys-only']);
  return r.stdout.split('\n').filter((l) => l.trim()).map((l) => l.slice(l.lastIndexOf('/') + 1));
}

runBench('failover', async () => {
  const missing = missingPrograms();
  if (missing) throw new Error(missing);
  const before = machine();
  const tStart = Date.now();
  const c = await Cluster.start({ nodes: 3, daemons: true, leaseTtl, logLevel: 'warn' });
  onCleanup(() => c.stop());
  await c.waitDaemonsReady(40_000);
  const startMs = Date.now() - tStart;

  // Failover: kill -9 the master's radiod, time until another node holds the election.
  const failoverMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const m = await waitFor('a master', () => masterName(c, c.nodes), { timeoutMs: 30_000, intervalMs: 100 });
    const victim = c.node(m);
    const others = c.nodes.filter((n) => n !== victim);
    const t0 = Date.now();
    await c.kill(victim, 'radiod', 'SIGKILL');
    await waitFor(
      'a new master',
      async () => {
        const now = await masterName(c, others);
        return now !== undefined && now !== victim.name;
      },
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    failoverMs.push(Date.now() - t0);
    // Bring the node back and let it rejoin before the next run.
    await c.start(victim, 'radiod');
    await waitFor('all nodes present again', async () => (await liveNodes(c)).length === c.nodes.length, { timeoutMs: 30_000, intervalMs: 200 });
  }

  // Node crash: a source enters through a node that is not the master, a listener on each
  // node that survives; then every process of the master node is killed at once.
  const crash = { newMasterMs: [] as number[], audioBackMs: [] as number[], gapMs: [] as number[], disconnects: 0, sourceReconnects: 0 };
  const liveCreds = await c.createMount('/bench-crash.mp3');
  for (let i = 0; i < crashRuns; i++) {
    const m = await waitFor('a master', () => masterName(c, c.nodes), { timeoutMs: 30_000, intervalMs: 100 });
    const victim = c.node(m);
    const survivors = c.nodes.filter((n) => n !== victim);
    const source = startSource(c, survivors[0]!, liveCreds.path, liveCreds);
    await waitServedEverywhere(c, liveCreds.path, c.nodes, 60_000);
    const listeners = survivors.map((n) => startListener(c, `http://${n.ip}/_stream${liveCreds.path}`));
    try {
      await waitFor('listeners receiving', () => listeners.every((l) => l.receiving()), { timeoutMs: 20_000 });
      const r = await measureMasterCrash(c, {
        master: victim,
        survivors,
        listeners,
        source,
        kill: () => c.killNode(victim),
        electionTimeoutMs: 60_000,
        audioTimeoutMs: 60_000,
      });
      crash.newMasterMs.push(r.electedMs);
      crash.audioBackMs.push(r.audioBackMs);
      crash.gapMs.push(r.gapMs);
      crash.disconnects += r.disconnects;
      crash.sourceReconnects += r.sourceReconnects;
    } finally {
      await Promise.all([...listeners.map((l) => l.stop()), source.stop()]);
    }
    await c.startNode(victim);
    await waitFor('all nodes present again', async () => (await liveNodes(c)).length === c.nodes.length, { timeoutMs: 60_000, intervalMs: 200 });
    await c.waitEtcdHealthy(c.nodes, 30_000);
  }

  // Propagation: a new mount, timed until every node's icecast.xml carries it.
  // radioctl is a process start plus a transaction; the time after it returned is the cluster's.
  const configMs: number[] = [];
  const afterWriteMs: number[] = [];
  for (let i = 0; i < mountRuns; i++) {
    const mount = `/bench-prop${i}.mp3`;
    const t0 = Date.now();
    await c.createMount(mount);
    const written = Date.now();
    await waitFor(`${mount} in every icecast.xml`, () => c.nodes.every((n) => configMentions(n, mount)), { timeoutMs: 30_000, intervalMs: 10 });
    configMs.push(Date.now() - t0);
    afterWriteMs.push(Date.now() - written);
  }
  // Served: one mount with a source, until every node's Icecast lists it (master source + relays).
  const served: number[] = [];
  for (let i = 0; i < (args.quick ? 1 : 3); i++) {
    const mount = `/bench-live${i}.mp3`;
    const t0 = Date.now();
    const creds = await c.createMount(mount);
    const source = startSource(c, c.nodes[i % c.nodes.length]!, mount, creds);
    try {
      await waitServedEverywhere(c, mount, c.nodes, 60_000);
      served.push(Date.now() - t0);
    } finally {
      await source.stop();
    }
  }

  const stats = (xs: number[]) => ({ runs: xs, p50: percentile(xs, 50), p99: percentile(xs, 99), max: Math.max(...xs) });
  const result = {
    bench: 'failover',
    quick: args.quick,
    nodes: c.nodes.length,
    leaseTtlSeconds: leaseTtl,
    clusterStartMs: startMs,
    machineBefore: before,
    machineAfter: machine(),
    newMasterMs: stats(failoverMs),
    newMasterPerTtl: round(percentile(failoverMs, 50) / 1000 / leaseTtl, 2),
    nodeCrash: {
      newMasterMs: stats(crash.newMasterMs),
      audioBackMs: stats(crash.audioBackMs),
      listenerAudioGapMs: stats(crash.gapMs),
      listenerDisconnects: crash.disconnects,
      sourceReconnects: crash.sourceReconnects,
      gapTargetMs: (leaseTtl + 2) * 1000,
    },
    mountInEveryConfigMs: stats(configMs),
    mountInEveryConfigAfterWriteMs: stats(afterWriteMs),
    mountServedEverywhereMs: stats(served),
  };
  report(result, [
    `Failover/propagation benchmark: ${c.nodes.length}-node namespace cluster, lease TTL ${leaseTtl} s, cluster up in ${startMs} ms; load ${before.loadavg}`,
    `  kill -9 master radiod -> new master: p50 ${result.newMasterMs.p50} ms, p99 ${result.newMasterMs.p99} ms (${failoverMs.join(', ')}); ${result.newMasterPerTtl} x TTL (reference: 0.8-1.15 x TTL measured by hand)`,
    `  kill -9 of the whole master node (${crashRuns} runs): new master p50 ${result.nodeCrash.newMasterMs.p50} ms, max ${result.nodeCrash.newMasterMs.max} ms (${crash.newMasterMs.join(', ')})`,
    `    listener audio gap on the other nodes: p50 ${result.nodeCrash.listenerAudioGapMs.p50} ms, max ${result.nodeCrash.listenerAudioGapMs.max} ms (${crash.gapMs.join(', ')}); target < ${(leaseTtl + 2) * 1000} ms`,
    `    listener disconnects ${crash.disconnects}, source reconnects ${crash.sourceReconnects}`,
    `  new mount -> every node's icecast.xml: p50 ${result.mountInEveryConfigMs.p50} ms, p99 ${result.mountInEveryConfigMs.p99} ms over ${configMs.length} (radioctl included; after its write returned: p50 ${result.mountInEveryConfigAfterWriteMs.p50} ms, p99 ${result.mountInEveryConfigAfterWriteMs.p99} ms)`,
    `  new mount with a source -> served by every Icecast: ${served.join(', ')} ms (reference: Icecast adds a relay 2.0-2.6 s after a HUP)`,
  ]);
});
