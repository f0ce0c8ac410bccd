import { Cluster } from '../test/support/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { configMentions, missingPrograms, startSource, waitServedEverywhere } from '../test/cluster/setup.js';
import { FAULT_KINDS, failoverRound, type FaultKind, type RoundResult } from '../test/cluster/failover-rounds.js';
import { steadyUnderFault, STEADY_FAULTS, type SteadyResult } from '../test/cluster/steady-faults.js';
import { benchArgs, machine, numFlag, onCleanup, percentile, report, round, runBench } from './lib/common.js';

/**
 * Master loss on the network-namespace cluster (test/support/cluster.ts: 3 nodes, each with an
 * etcd member, Icecast, radiod and redirectord), a source entering through a surviving node's
 * front door and one `/_stream` listener per surviving node. For each way of losing the master
 * (test/cluster/failover-rounds.ts) it reports the silence each listener heard, the time to a new
 * master and to audio everywhere, and the audio lost; and, from outside, how many nodes would
 * have taken the source at once (never more than one). Then faults that must NOT move the master
 * (test/cluster/steady-faults.ts): etcd latency spikes, packet loss, a raft leader election.
 * Last, how long a new mount takes to reach every node. Usage:
 *   node --import tsx bench/failover.ts [--quick] [--rounds N] [--steady-seconds S] [--mounts N] [--lease-ttl S]
 * Quick: 2 rounds per kind, 10 s per steady fault, 2 mounts; full: 20, 60 and 20.
 */

const args = benchArgs();
const rounds = numFlag(args, '--rounds', args.quick ? 2 : 20);
const steadySeconds = numFlag(args, '--steady-seconds', args.quick ? 10 : 60);
const mountRuns = numFlag(args, '--mounts', args.quick ? 2 : 20);
const leaseTtl = numFlag(args, '--lease-ttl', 5);

const stats = (xs: number[]) => ({ n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : 0 });

function summarise(kind: FaultKind, rs: RoundResult[]) {
  return {
    kind,
    rounds: rs.length,
    silenceMs: stats(rs.flatMap((r) => r.silenceMs)),
    newMasterMs: stats(rs.map((r) => r.electedMs)),
    audioEverywhereMs: stats(rs.map((r) => r.audioBackMs)),
    lostMs: stats(rs.flatMap((r) => r.lostMs)),
    listenerDisconnects: rs.reduce((a, r) => a + r.disconnects, 0),
    sourceRestarts: rs.reduce((a, r) => a + r.sourceRestarts, 0),
    maxNodesTakingTheSource: Math.max(0, ...rs.map((r) => r.maxAccepting)),
    safetySamples: rs.reduce((a, r) => a + r.samples, 0),
  };
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

  const creds = await c.createMount('/bench-failover.mp3');
  const kinds: ReturnType<typeof summarise>[] = [];
  for (const kind of FAULT_KINDS) {
    const rs: RoundResult[] = [];
    for (let i = 0; i < rounds; i++) rs.push(await failoverRound(c, kind, creds.path, creds));
    kinds.push(summarise(kind, rs));
  }

  const steady: SteadyResult[] = [];
  for (const fault of STEADY_FAULTS) steady.push(await steadyUnderFault(c, fault, creds.path, creds, steadySeconds * 1000));

  // Propagation: a new mount, timed until every node's icecast.xml carries it.
  const configMs: number[] = [];
  for (let i = 0; i < mountRuns; i++) {
    const mount = `/bench-prop${i}.mp3`;
    const written = await c.createMount(mount).then(() => Date.now());
    await waitFor(`${mount} in every icecast.xml`, () => c.nodes.every((n) => configMentions(n, mount)), { timeoutMs: 30_000, intervalMs: 10 });
    configMs.push(Date.now() - written);
  }
  const served: number[] = [];
  for (let i = 0; i < (args.quick ? 1 : 3); i++) {
    const mount = `/bench-live${i}.mp3`;
    const t0 = Date.now();
    const live = await c.createMount(mount);
    const source = startSource(c, c.nodes[i % c.nodes.length]!, mount, live);
    try {
      await waitServedEverywhere(c, mount, c.nodes, 60_000);
      served.push(Date.now() - t0);
    } finally {
      await source.stop();
    }
  }

  const result = {
    bench: 'failover',
    quick: args.quick,
    nodes: c.nodes.length,
    leaseTtlSeconds: leaseTtl,
    clusterStartMs: startMs,
    machineBefore: before,
    machineAfter: machine(),
    masterLoss: kinds,
    steadyFaults: steady,
    mountInEveryConfigAfterWriteMs: stats(configMs),
    mountServedEverywhereMs: stats(served),
  };
  const lines = [`Failover benchmark: ${c.nodes.length}-node namespace cluster, lease TTL ${leaseTtl} s, ${rounds} rounds per kind; load ${before.loadavg}`];
  for (const k of kinds) {
    lines.push(
      `  ${k.kind}: silence p50 ${k.silenceMs.p50} ms, p99 ${k.silenceMs.p99} ms, max ${k.silenceMs.max} ms; new master p50 ${k.newMasterMs.p50} ms; ` +
        `audio everywhere p50 ${k.audioEverywhereMs.p50} ms; lost p50 ${k.lostMs.p50} ms; disconnects ${k.listenerDisconnects}; ` +
        `most nodes taking the source at once ${k.maxNodesTakingTheSource} (${k.safetySamples} samples)`,
    );
  }
  for (const s of steady) {
    lines.push(`  ${s.fault} for ${round(s.durationMs / 1000, 1)} s: master changes ${s.masterChanges}, longest silence ${s.maxSilenceMs} ms, disconnects ${s.disconnects}`);
  }
  lines.push(`  new mount -> every icecast.xml after the write: p50 ${result.mountInEveryConfigAfterWriteMs.p50} ms; with a source, served everywhere: ${served.join(', ')} ms`);
  report(result, lines);
});
