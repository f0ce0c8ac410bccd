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
 * The status published under the node's lease. `stats` undefined means the local Icecast did
 * not answer: the node stays present (its addresses still serve DNS and the HTTP front door)
 * but reports icecastOk false so balancers stop sending listeners here. Internal mounts
 * (paths starting with `/_`) are not the cluster's and are left out.
 */
export function buildNodeStatus(
  settings: NodeReportSettings,
  stats: IcecastStats | undefined,
  bandwidthKbps: number,
  now: number,
): NodeStatus {
  const mounts: Record<string, number> = {};
  let listeners = 0;
  for (const m of stats?.mounts ?? []) {
    if (m.mount.startsWith('/_')) continue;
    mounts[m.mount] = m.listeners;
    listeners += m.listeners;
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
