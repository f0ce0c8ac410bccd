import { Cluster, type ClusterNode } from '../support/cluster.js';
import { netnsExec } from '../support/netns.js';
import { delayProxyArgv } from '../support/delay-proxy.js';
import { waitFor } from '../support/wait.js';
import type { ListenerMonitor } from './clients.js';
import { startListener, startSource, waitServedEverywhere } from './setup.js';

/**
 * Faults that must NOT move the master: 200 ms latency spikes on every daemon's path to etcd
 * (a delaying proxy; these machines have no netem), 1 % packet loss on every node (iptables'
 * statistic match), and etcd raft leader elections that kill no node (`etcdctl move-leader`).
 */
export type SteadyFault = 'etcd-latency-spikes' | 'packet-loss-1pct' | 'raft-leader-moves';
export const STEADY_FAULTS: readonly SteadyFault[] = ['etcd-latency-spikes', 'packet-loss-1pct', 'raft-leader-moves'];

export interface SteadyResult {
  fault: SteadyFault;
  durationMs: number;
  masterChanges: number;
  maxSilenceMs: number;
  disconnects: number;
  raftLeaderMoves?: number;
}

const ETCD_PROXY_PORT = 2399;

async function masterName(c: Cluster): Promise<string | undefined> {
  return (await c.master().catch(() => undefined))?.name;
}

/** Loss on every node's link, both ways; returns the undo. */
async function packetLoss(c: Cluster, probability: number): Promise<() => Promise<void>> {
  const rule = (op: string, chain: 'INPUT' | 'OUTPUT') => [
    'iptables', '-w', op, chain, chain === 'INPUT' ? '-i' : '-o', 'eth0', '-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP',
  ];
  for (const n of c.nodes) for (const chain of ['INPUT', 'OUTPUT'] as const) await netnsExec(n.ns, rule('-I', chain));
  return async () => {
    for (const n of c.nodes) for (const chain of ['INPUT', 'OUTPUT'] as const) await netnsExec(n.ns, rule('-D', chain));
  };
}

/** Moves etcd's raft leadership to another member every `everyMs` until `until`. */
async function moveRaftLeader(c: Cluster, until: number, everyMs: number): Promise<number> {
  let moves = 0;
  while (Date.now() < until) {
    const r = await c.etcdctl(['endpoint', 'status', '-w', 'json'], { timeoutMs: 5000 }).catch(() => undefined);
    // Member ids are 64-bit: read them as strings, JSON numbers would lose their low digits.
    const text = (r?.stdout || '[]').replace(/"(member_id|leader|cluster_id)":(\d+)/g, '"$1":"$2"');
    const status = JSON.parse(text) as { Endpoint: string; Status: { header: { member_id: string }; leader: string } }[];
    const leader = status.find((s) => s.Status.header.member_id === s.Status.leader);
    const other = status.find((s) => s.Status.header.member_id !== s.Status.leader);
    if (leader && other) {
      const hex = BigInt(other.Status.header.member_id).toString(16);
      const moved = await c.etcdctl(['move-leader', hex], { endpoints: [leader.Endpoint], timeoutMs: 10_000 }).catch(() => undefined);
      if (moved?.code === 0) moves++;
    }
    await new Promise((res) => setTimeout(res, everyMs));
  }
  return moves;
}

/**
 * Runs `fault` for `durationMs` with a source and a listener on every node, counting master
 * changes. The latency fault needs its own cluster (the daemons reach etcd through a proxy from
 * their start); it is started and stopped here.
 */
export async function steadyUnderFault(
  shared: Cluster,
  fault: SteadyFault,
  mount: string,
  creds: { username: string; password: string },
  durationMs: number,
): Promise<SteadyResult> {
  const own = fault === 'etcd-latency-spikes' ? await latencyCluster(shared) : undefined;
  const c = own ?? shared;
  const live = own ? await c.createMount(mount) : { ...creds, path: mount };
  const source = startSource(c, c.nodes[0]!, mount, live);
  const listeners: ListenerMonitor[] = [];
  try {
    await waitServedEverywhere(c, mount, c.nodes, 60_000);
    listeners.push(...c.nodes.map((n: ClusterNode) => startListener(c, `http://${n.ip}/_stream${mount}`)));
    await waitFor('listeners receiving', () => listeners.every((l) => l.receiving(500)), { timeoutMs: 20_000 });
    const first = await masterName(c);
    const t0 = Date.now();
    const until = t0 + durationMs;
    const undo = fault === 'packet-loss-1pct' ? await packetLoss(c, 0.01) : undefined;
    const moving = fault === 'raft-leader-moves' ? moveRaftLeader(c, until, 5000) : Promise.resolve(undefined);
    let changes = 0;
    let last = first;
    while (Date.now() < until) {
      const now = await masterName(c);
      if (now !== undefined && now !== last) {
        changes++;
        last = now;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    const raftLeaderMoves = await moving;
    await undo?.();
    return {
      fault,
      durationMs: Date.now() - t0,
      masterChanges: changes,
      maxSilenceMs: Math.max(...listeners.map((l) => l.maxGapSince(t0))),
      disconnects: listeners.reduce((a, l) => a + l.disconnects, 0),
      ...(raftLeaderMoves !== undefined ? { raftLeaderMoves } : {}),
    };
  } finally {
    await Promise.all([...listeners.map((l) => l.stop()), source.stop()]);
    if (own) await own.stop();
  }
}

/** A 3-node cluster whose daemons reach their etcd member through a latency-spiking proxy. */
async function latencyCluster(like: Cluster): Promise<Cluster> {
  const via = `http://127.0.0.1:${ETCD_PROXY_PORT}`;
  const c = await Cluster.start({
    nodes: 3,
    daemons: true,
    leaseTtl: like.leaseTtl,
    logLevel: 'warn',
    daemonEtcdUrl: via,
  });
  try {
    for (const n of c.nodes) {
      c.spawn(n, 'etcd-delay-proxy', delayProxyArgv(`127.0.0.1:${ETCD_PROXY_PORT}`, `${n.ip}:2379`, { delayMs: 200, spikeMs: 1000, everyMs: 3000 }));
    }
    await c.waitDaemonsReady(60_000);
    return c;
  } catch (err) {
    await c.stop();
    throw err;
  }
}
