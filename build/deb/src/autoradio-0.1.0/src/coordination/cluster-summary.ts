import type { ClusterState } from './cluster-state.js';
import { publicMount, type PublicMount } from './mount.js';
import type { NodeStatus } from './node-status.js';

/** The cluster as people see it: what `radioctl status`, the status page and /status.json show. No secrets. */
export interface ClusterSummary {
  master: string | undefined;
  connected: boolean;
  nodes: (NodeStatus & { isMaster: boolean })[];
  mounts: (PublicMount & { listeners: number; listenersByNode: Record<string, number> })[];
  totals: { nodes: number; healthyNodes: number; listeners: number; bandwidthKbps: number; maxListeners: number };
}

/** Pure: folds per-node listener counts into per-mount, cluster-wide totals. */
export function summarizeCluster(state: ClusterState): ClusterSummary {
  const nodes = [...state.nodes.values()]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => ({ ...n, isMaster: n.name === state.master?.name }));
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
      return { ...publicMount(m), listeners, listenersByNode };
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
  };
}
