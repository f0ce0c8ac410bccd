import { RELAY_PREFIX } from '../coordination/relay-route.js';
import type { ClusterState } from '../coordination/cluster-state.js';
import type { NodeStatus } from '../coordination/node-status.js';
import type { IcecastStats } from './icecast/stats.js';

/** What a node always reports about itself, whatever its Icecast says. */
export interface NodeReportSettings {
  name: string;
  addresses: string[];
  icecastPort: number;
  /** 0 means unlimited. */
  maxListeners: number;
  /** Mbit/s; 0 means unlimited. */
  bandwidthMbps: number;
}

/**
 * On the master, the other nodes' relays are Icecast listeners too, but not people: per mount,
 * how many other nodes relay it. Every other node with a healthy Icecast relays every mount
 * (relays are not on demand); a relay still connecting is at most one listener too few for a
 * moment, and counts never go below zero. Statuses list only mounts with listeners, so they
 * cannot say which relays are connected.
 */
export function relaysFromOtherNodes(state: Pick<ClusterState, 'nodes' | 'mounts'>, self: string): Record<string, number> {
  let relaying = 0;
  for (const n of state.nodes.values()) if (n.name !== self && n.icecastOk) relaying++;
  const relays: Record<string, number> = {};
  if (relaying === 0) return relays;
  for (const path of state.mounts.keys()) relays[path] = relaying;
  return relays;
}

/**
 * The status published under the node's lease. `relays` (on the master) is subtracted from
 * each mount's Icecast listener count; `mounts` lists the mounts that have listeners. `stats` undefined means the local Icecast did
 * not answer: the node stays present (its addresses still serve DNS and the HTTP front door)
 * but reports icecastOk false so balancers stop sending listeners here. Internal mounts
 * (paths starting with `/_`) are not the cluster's and are left out.
 */
export function buildNodeStatus(
  settings: NodeReportSettings,
  stats: IcecastStats | undefined,
  bandwidthKbps: number,
  now: number,
  relays: Readonly<Record<string, number>> = {},
): NodeStatus {
  const mounts: Record<string, number> = {};
  let listeners = 0;
  for (const m of stats?.mounts ?? []) {
    // A relayed mount's listeners sit on its hidden relay mount (render.ts): they are its own.
    const path = m.mount.startsWith(`${RELAY_PREFIX}/`) ? m.mount.slice(RELAY_PREFIX.length) : m.mount;
    if (path.startsWith('/_')) continue;
    const people = Math.max(0, m.listeners - (relays[path] ?? 0));
    // Only mounts with listeners: a status lists what a node serves to people, and it is
    // rewritten in etcd; 1,000 idle mounts would make every report about 30 KB.
    if (people > 0) mounts[path] = (mounts[path] ?? 0) + people;
    listeners += people;
  }
  return {
    name: settings.name,
    addresses: [...settings.addresses],
    icecastPort: settings.icecastPort,
    icecastOk: stats !== undefined,
    mounts,
    listeners,
    bandwidthKbps: stats === undefined ? 0 : Math.max(0, bandwidthKbps),
    maxListeners: settings.maxListeners,
    maxBandwidthKbps: Math.round(settings.bandwidthMbps * 1000),
    reportedAt: now,
  };
}
