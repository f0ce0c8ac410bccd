import { RELAY_PREFIX } from '../coordination/relay-route.js';
import type { ClusterState } from '../coordination/cluster-state.js';
import type { NodeStatus, OnAirMount } from '../coordination/node-status.js';
import type { IcecastMountStats, IcecastStats } from './icecast/stats.js';
import { mergeFrontDoorListeners, type FrontDoorListeners } from '../coordination/front-door-listeners.js';

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
 * On the master, each running transcoder is an Icecast listener of its source mount too:
 * liquidsoap's input.http pulls it from the master (user agent `Liquidsoap/<version> (Unix;
 * OCaml <version>)`, measured), but /admin/stats counts listeners without telling them apart.
 * One transcoder runs per transcoding mount, so per source mount the pulls are the number of
 * mounts transcoded from it; like relays, a transcoder that is restarting makes the count at
 * most one too small for a moment, and counts never go below zero.
 */
export function transcoderPulls(state: Pick<ClusterState, 'mounts'>): Record<string, number> {
  const pulls: Record<string, number> = {};
  for (const m of state.mounts.values()) {
    const source = m.transcoding?.source;
    if (source !== undefined) pulls[source] = (pulls[source] ?? 0) + 1;
  }
  return pulls;
}

/** What the master's Icecast holds that is not a person: other nodes' relays and transcoder pulls, per mount. */
export function nonListenerClients(state: Pick<ClusterState, 'nodes' | 'mounts'>, self: string): Record<string, number> {
  const total = relaysFromOtherNodes(state, self);
  for (const [path, n] of Object.entries(transcoderPulls(state))) total[path] = (total[path] ?? 0) + n;
  return total;
}

function onAirMount(m: IcecastMountStats): OnAirMount | undefined {
  if (m.sourceSince === undefined) return undefined;
  const out: OnAirMount = { since: m.sourceSince };
  if (m.title !== undefined) out.title = m.title;
  if (m.contentType !== undefined) out.contentType = m.contentType;
  if (m.bitrateKbps !== undefined) out.bitrateKbps = m.bitrateKbps;
  return out;
}

/** The mounts a source feeds on this Icecast, with what is playing (internal `/_` mounts left out). */
export function onAirMounts(stats: IcecastStats): Record<string, OnAirMount> {
  const onAir: Record<string, OnAirMount> = {};
  for (const m of stats.mounts) {
    const entry = m.mount.startsWith('/_') ? undefined : onAirMount(m);
    if (entry) onAir[m.mount] = entry;
  }
  return onAir;
}

/**
 * The status published under the node's lease. `relays` (on the master: relays and transcoder pulls) is subtracted from
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
  extra: { isMaster?: boolean; version?: string; frontDoor?: FrontDoorListeners } = {},
): NodeStatus {
  const icecast: Record<string, number> = {};
  for (const m of stats?.mounts ?? []) {
    // A relayed mount's listeners sit on its local relay mount (render.ts): they are its own.
    const path = m.mount.startsWith(`${RELAY_PREFIX}/`) ? m.mount.slice(RELAY_PREFIX.length) : m.mount;
    if (path.startsWith('/_')) continue;
    icecast[path] = (icecast[path] ?? 0) + m.listeners;
  }
  // Only mounts with listeners: a status lists what a node serves to people, and it is
  // rewritten in etcd; 1,000 idle mounts would make every report about 30 KB.
  const people: Record<string, number> = {};
  for (const [path, n] of Object.entries(icecast)) {
    const left = Math.max(0, n - (relays[path] ?? 0));
    if (left > 0) people[path] = left;
  }
  // The front door's listeners are people Icecast sees only as its feeds; without an Icecast
  // answer nothing is reported (the node is not offered to listeners then anyway).
  const mounts = stats === undefined ? {} : mergeFrontDoorListeners(people, extra.frontDoor);
  let listeners = 0;
  for (const n of Object.values(mounts)) listeners += n;
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
    // Every source lands on the master (the front door proxies sources there), so only its
    // Icecast says what is on air; other nodes would only repeat their relays' view of it.
    ...(extra.isMaster && stats ? { onAir: onAirMounts(stats) } : {}),
    ...(extra.version !== undefined ? { version: extra.version } : {}),
  };
}
