import type { ClusterState } from './cluster-state.js';
import { publicMount, type PublicMount } from './mount.js';
import type { NodeStatus, OnAirMount } from './node-status.js';

/** The cluster as people see it: what `radioctl status`, the status page and /status.json show. No secrets. */
export interface ClusterSummary {
  master: string | undefined;
  connected: boolean;
  nodes: (NodeStatus & { isMaster: boolean })[];
  mounts: (PublicMount & { listeners: number; listenersByNode: Record<string, number> } & MountOnAir)[];
  totals: { nodes: number; healthyNodes: number; listeners: number; bandwidthKbps: number; maxListeners: number };
  /** The radiod versions the live nodes run, sorted; more than one during a rolling upgrade. */
  versions: string[];
}

/** Whether a mount is on air, from the master's report: off air too when no master reports. */
export interface MountOnAir {
  onAir: boolean;
  /** ISO 8601, while on air. */
  sourceSince?: string;
  title?: string;
  contentType?: string;
  bitrateKbps?: number;
}

/** Only the on-air fields of a summarized mount (off air when the mount is unknown). */
export function pickOnAir(m: MountOnAir | undefined): MountOnAir {
  if (!m) return { onAir: false };
  const { onAir, sourceSince, title, contentType, bitrateKbps } = m;
  const out: MountOnAir = { onAir };
  if (sourceSince !== undefined) out.sourceSince = sourceSince;
  if (title !== undefined) out.title = title;
  if (contentType !== undefined) out.contentType = contentType;
  if (bitrateKbps !== undefined) out.bitrateKbps = bitrateKbps;
  return out;
}

function mountOnAir(entry: OnAirMount | undefined): MountOnAir {
  if (!entry) return { onAir: false };
  const out: MountOnAir = { onAir: true, sourceSince: new Date(entry.since).toISOString() };
  if (entry.title !== undefined) out.title = entry.title;
  if (entry.contentType !== undefined) out.contentType = entry.contentType;
  if (entry.bitrateKbps !== undefined) out.bitrateKbps = entry.bitrateKbps;
  return out;
}

/** Pure: folds per-node listener counts into per-mount, cluster-wide totals. */
export function summarizeCluster(state: ClusterState): ClusterSummary {
  const nodes = [...state.nodes.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => ({ ...n, isMaster: n.name === state.master?.name }));
  const onAir = nodes.find((n) => n.isMaster)?.onAir ?? {};
  const mounts = [...state.mounts.values()]
    .sort((a, b) => a.path.localeCompare(b.path))
    .map((m) => {
      const listenersByNode: Record<string, number> = {};
      let listeners = 0;
      for (const n of nodes) {
        const count = n.mounts[m.path] ?? 0;
        if (count > 0) listenersByNode[n.name] = count;
        listeners += count;
      }
      return { ...publicMount(m), listeners, listenersByNode, ...mountOnAir(onAir[m.path]) };
    });
  const unlimited = nodes.some((n) => n.maxListeners === 0);
  return {
    master: state.master?.name,
    connected: state.connected,
    nodes,
    mounts,
    totals: {
      nodes: nodes.length,
      healthyNodes: nodes.filter((n) => n.icecastOk).length,
      listeners: nodes.reduce((sum, n) => sum + n.listeners, 0),
      bandwidthKbps: nodes.reduce((sum, n) => sum + n.bandwidthKbps, 0),
      maxListeners: unlimited ? 0 : nodes.reduce((sum, n) => sum + n.maxListeners, 0),
    },
    versions: [...new Set(nodes.map((n) => n.version ?? 'unknown'))].sort(),
  };
}
