import type { ClusterState } from '../../coordination/cluster-state.js';
import type { PublicMount } from '../../coordination/mount.js';
import { summarizeCluster, type MountOnAir } from '../../coordination/cluster-summary.js';
import type { ListenerHistory } from '../../coordination/listener-history.js';
import { PLAYLIST_FORMATS } from './playlists.js';
import { publicStreamUrl, type Scheme } from './urls.js';

/**
 * What the status page and /status.json show: the cluster view without any secret. Mounts go
 * through publicMount(), and a relay URL loses its user:password part.
 */
export interface StatusNode {
  name: string;
  addresses: string[];
  master: boolean;
  icecastOk: boolean;
  listeners: number;
  /** 0 means unlimited. */
  maxListeners: number;
  bandwidthKbps: number;
  /** 0 means unlimited. */
  maxBandwidthKbps: number;
  /** Listeners over maximum, or null when unlimited. */
  utilization: number | null;
  reportedAt: string;
  /** Seconds since the report, from the serving node's clock. */
  reportAgeSeconds: number;
  /** Drained: takes no new listeners, keeps the ones it has. */
  draining: boolean;
  /** radiod's version, "unknown" for a node too old to say. */
  version: string;
}

export type StatusMount = PublicMount & MountOnAir & {
  /** Sum over live nodes. */
  listeners: number;
  streamUrl: string;
  playlists: Record<string, string>;
};

export interface StatusView {
  domain: string;
  /** The node that rendered this view. */
  servedBy: string;
  /** False while the view is the last known state because etcd is unreachable. */
  connected: boolean;
  generatedAt: string;
  master: { name: string; addresses: string[] } | null;
  nodes: StatusNode[];
  mounts: StatusMount[];
  totals: { nodes: number; mounts: number; listeners: number; bandwidthKbps: number };
  /** This node's HTTPS certificate, when HTTPS has one. */
  https?: { certificateNotAfter: string; certificateExpiresInSeconds: number };
  /** The versions the live nodes run; more than one during a rolling upgrade. */
  versions: string[];
  /** Listeners per minute over the last 24 h (total and the busiest mounts), when the master has written any. */
  history?: ListenerHistory;
}

export function buildStatusView(
  state: ClusterState,
  opts: { domain: string; nodeName: string; httpPort: number; now: number; certificateNotAfter?: Date; scheme?: Scheme },
): StatusView {
  const summary = summarizeCluster(state);
  const nodes = summary.nodes.map(
    (n): StatusNode => ({
      name: n.name,
      addresses: [...n.addresses],
      master: n.isMaster,
      icecastOk: n.icecastOk,
      listeners: n.listeners,
      maxListeners: n.maxListeners,
      bandwidthKbps: n.bandwidthKbps,
      maxBandwidthKbps: n.maxBandwidthKbps,
      utilization: n.maxListeners > 0 ? n.listeners / n.maxListeners : null,
      reportedAt: new Date(n.reportedAt).toISOString(),
      reportAgeSeconds: Math.max(0, Math.round((opts.now - n.reportedAt) / 1000)),
      draining: n.draining === true,
      version: n.version ?? 'unknown',
    }),
  );
  const mounts = summary.mounts.map((m): StatusMount => {
    const { listenersByNode: _byNode, ...pub } = m;
    // Served over HTTPS, the links are https:// too: a page must not send its reader to plain HTTP.
    const streamUrl = publicStreamUrl(opts.domain, opts.httpPort, m.path, opts.scheme);
    const playlists: Record<string, string> = {};
    for (const f of PLAYLIST_FORMATS) playlists[f.extension] = `${streamUrl}.${f.extension}`;
    return { ...pub, streamUrl, playlists };
  });
  return {
    domain: opts.domain,
    servedBy: opts.nodeName,
    connected: state.connected,
    generatedAt: new Date(opts.now).toISOString(),
    master: state.master ? { name: state.master.name, addresses: [...state.master.addresses] } : null,
    nodes,
    mounts,
    totals: {
      nodes: nodes.length,
      mounts: mounts.length,
      listeners: summary.totals.listeners,
      bandwidthKbps: summary.totals.bandwidthKbps,
    },
    ...(opts.certificateNotAfter ? { https: certificateStatus(opts.certificateNotAfter, opts.now) } : {}),
    versions: summary.versions,
    ...(state.history ? { history: state.history } : {}),
  };
}

function certificateStatus(notAfter: Date, now: number): NonNullable<StatusView['https']> {
  return { certificateNotAfter: notAfter.toISOString(), certificateExpiresInSeconds: Math.floor((notAfter.getTime() - now) / 1000) };
}
