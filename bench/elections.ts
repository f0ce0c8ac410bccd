import type { Etcd3 } from 'etcd3';
import { connectEtcd } from '../src/coordination/client.js';
import { Elector } from '../src/coordination/elector.js';
import type { Campaign } from '../src/coordination/election.js';
import { ELECTION_ROOT, MASTER_ELECTION_PREFIX, transcoderElectionPrefix } from '../src/coordination/keys.js';
import { waitFor } from '../test/support/wait.js';
import { benchArgs, machine, numFlag, report, round, runBench, sleep } from './lib/common.js';
import { benchEtcd, quietLog } from './lib/fixture.js';
import { etcdRequestsByMethod, requestRates } from '../test/support/etcd-metrics.js';

/**
 * What idle elections cost etcd: K nodes (in this process, each with its own etcd client and
 * Elector, as radiod has), each campaigning for master and for every one of N transcoding
 * mounts. Once every candidacy is in place, counts the gRPC messages etcd receives over a
 * window (etcd's own metrics), for several N. The figure to watch: requests/s per node must not
 * grow with N. Usage:
 *   node --import tsx bench/elections.ts [--quick] [--nodes K] [--window S] [--lease-ttl S] [--mounts N,N,...]
 * Quick: N = 1, 10, 100, 3 s windows; full: N = 1, 10, 100, 200, 10 s windows.
 */

const args = benchArgs();
const NODES = numFlag(args, '--nodes', 3);
const windowS = numFlag(args, '--window', args.quick ? 3 : 10);
const ttl = numFlag(args, '--lease-ttl', 5);
const mountCounts = (args.flags.get('--mounts') ?? (args.quick ? '1,10,100' : '1,10,100,200')).split(',').map(Number);

interface Node {
  client: Etcd3;
  elector: Elector;
  campaigns: Campaign[];
}

function startNode(url: string, name: string, mounts: number): Node {
  const client = connectEtcd({ etcdUrls: [url] });
  const elector = new Elector(client, { ttlSeconds: ttl, log: quietLog });
  const value = JSON.stringify({ name, addresses: ['127.0.0.1'], icecastPort: 8000 });
  const campaigns = [elector.campaign(MASTER_ELECTION_PREFIX, value)];
  for (let i = 0; i < mounts; i++) campaigns.push(elector.campaign(transcoderElectionPrefix(`/bench/m${i}.mp3`), JSON.stringify({ name })));
  elector.start();
  for (const c of campaigns) c.start();
  return { client, elector, campaigns };
}

async function electionKeys(client: Etcd3): Promise<number> {
  return (await client.getAll().prefix(ELECTION_ROOT).keys()).length;
}

runBench('elections', async () => {
  const before = machine();
  const { etcd, client } = await benchEtcd();
  const rows: { mounts: number; requestsPerS: number; perNodePerS: number; byMethod: Record<string, number> }[] = [];
  for (const mounts of mountCounts) {
    const nodes = Array.from({ length: NODES }, (_, i) => startNode(etcd.url, `node${i}`, mounts));
    const expected = NODES * (mounts + 1);
    await waitFor(`${expected} candidacies`, async () => (await electionKeys(client)) === expected, { timeoutMs: 120_000, intervalMs: 200 });
    // Every election has exactly one leader once the views caught up.
    await waitFor('one leader per election', () => {
      const leaders = nodes.flatMap((n) => n.campaigns.filter((c) => c.isLeader));
      return leaders.length === mounts + 1;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    await sleep(1000);
    const r0 = await etcdRequestsByMethod(etcd.url);
    await sleep(windowS * 1000);
    const r1 = await etcdRequestsByMethod(etcd.url);
    const byMethod = requestRates(r0, r1, windowS);
    const total = round(Object.values(byMethod).reduce((a, b) => a + b, 0));
    rows.push({ mounts, requestsPerS: total, perNodePerS: round(total / NODES), byMethod });
    await Promise.all(nodes.map(async (n) => {
      await n.elector.stop();
      n.client.close();
    }));
    await waitFor('candidacies gone', async () => (await electionKeys(client)) === 0, { timeoutMs: 30_000, intervalMs: 200 });
  }
  const result = { bench: 'elections', nodes: NODES, leaseTtlSeconds: ttl, windowSeconds: windowS, rows, machine: before };
  report(result, [
    `Idle elections: ${NODES} nodes, each a master candidate and a candidate for every transcoding mount; lease TTL ${ttl} s; ${windowS} s windows; load ${String(before['loadavg'])}`,
    ...rows.map((r) => `  ${String(r.mounts).padStart(4)} mounts: ${r.requestsPerS} requests/s to etcd (${r.perNodePerS} per node) ${JSON.stringify(r.byMethod)}`),
  ]);
});
