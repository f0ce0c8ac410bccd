import type { ClusterState } from '../src/coordination/cluster-state.js';
import type { NodeStatus } from '../src/coordination/node-status.js';
import type { ZoneConfig } from '../src/redirectord/dns/answers.js';

/**
 * The zone both servers serve in the DNS benchmark: eight nodes with one IPv4 and one IPv6
 * address each, two of them nameservers. nsd gets the same content as a static zone file
 * (its apex holds the five addresses an apex answer of ours has).
 */
export const BENCH_DOMAIN = 'bench.example.org';
export const BENCH_NODES = 8;
export const BENCH_ZONE: ZoneConfig = { domain: BENCH_DOMAIN, nameservers: ['node1', 'node2'], ttl: 5 };

function node(i: number): NodeStatus {
  return {
    name: `node${i}`,
    addresses: [`192.0.2.${i}`, `2001:db8::${i}`],
    icecastPort: 8000,
    icecastOk: true,
    mounts: {},
    listeners: 10 * i,
    bandwidthKbps: 0,
    maxListeners: 1000,
    maxBandwidthKbps: 0,
    reportedAt: 0,
  };
}

export function benchState(): ClusterState {
  const nodes = new Map<string, NodeStatus>();
  for (let i = 1; i <= BENCH_NODES; i++) nodes.set(`node${i}`, node(i));
  return { mounts: new Map(), nodes, master: undefined, revision: '1', connected: true, membershipSerial: 7 };
}

export function nsdZoneFile(): string {
  const d = `${BENCH_DOMAIN}.`;
  const lines = [
    `$ORIGIN ${d}`,
    `$TTL 5`,
    `@ 5 IN SOA node1.${d} hostmaster.${d} 7 3600 600 86400 5`,
    `@ 3600 IN NS node1.${d}`,
    `@ 3600 IN NS node2.${d}`,
  ];
  for (let i = 1; i <= 5; i++) lines.push(`@ IN A 192.0.2.${i}`, `@ IN AAAA 2001:db8::${i}`);
  for (let i = 1; i <= BENCH_NODES; i++) lines.push(`node${i} IN A 192.0.2.${i}`, `node${i} IN AAAA 2001:db8::${i}`);
  return `${lines.join('\n')}\n`;
}

/** dnsperf input: mostly apex addresses (what listeners ask), plus the other answer shapes. */
export function queryFile(): string {
  const d = BENCH_DOMAIN;
  const q = [
    `${d} A`,
    `${d} A`,
    `${d} A`,
    `${d} A`,
    `${d} AAAA`,
    `${d} AAAA`,
    `node1.${d} A`,
    `node2.${d} A`,
    `node3.${d} AAAA`,
    `${d} NS`,
    `${d} SOA`,
    `nope.${d} A`,
    `${d} MX`,
  ];
  return `${q.join('\n')}\n`;
}
