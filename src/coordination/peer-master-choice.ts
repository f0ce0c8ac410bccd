import type { ClusterState, MasterInfo } from './cluster-state.js';
import type { MasterReport } from './master-report.js';

/** One peer's answer, with the name of the node that was asked (from this node's view). */
export interface PeerAnswer {
  asked: string;
  report: MasterReport;
}

/** The master that peers in touch with etcd agree on, and the freshest report it came from. */
export interface PeerMaster {
  /** Undefined: the peers know of no master right now (an election is under way). */
  master: MasterInfo | undefined;
  revision: bigint;
  from: string;
}

/**
 * Picks the master from peers' reports while this node's own view is cut from etcd. Pure.
 *
 * Only a peer whose view is in touch with etcd is believed, and the freshest such view wins
 * (etcd revisions only grow); one older than this node's own last view is not believed. A source client's credentials are replayed to whatever master is
 * chosen, so a report naming a master this node's last view does not know, at an address or
 * port that view does not have for it, is not believed either: credentials only ever go to
 * nodes that etcd listed.
 */
export function choosePeerMaster(answers: readonly PeerAnswer[], known: ClusterState): PeerMaster | undefined {
  let best: PeerMaster | undefined;
  // A peer whose watch lags behind this node's own last view tells less than that view does.
  const ownRevision = BigInt(known.revision);
  for (const { asked, report } of answers) {
    if (report.node !== asked || !report.connected || !known.nodes.has(asked)) continue;
    if (report.master && !isKnownMaster(report.master, known)) continue;
    const revision = BigInt(report.revision);
    if (revision < ownRevision) continue;
    if (best && revision <= best.revision) continue;
    best = { master: report.master ?? undefined, revision, from: asked };
  }
  return best;
}

function isKnownMaster(master: MasterInfo, known: ClusterState): boolean {
  const sameAsKnownMaster = known.master?.name === master.name ? known.master : undefined;
  const node = known.nodes.get(master.name);
  const addresses = new Set([...(node?.addresses ?? []), ...(sameAsKnownMaster?.addresses ?? [])]);
  const ports = new Set([node?.icecastPort, sameAsKnownMaster?.icecastPort]);
  return addresses.size > 0 && master.addresses.every((a) => addresses.has(a)) && ports.has(master.icecastPort);
}

/**
 * The master this node's front door routes sources and relays to: etcd's word while the own view
 * is in touch with etcd; while it is cut, the peers' word when they gave one. Pure.
 */
export function masterToFollow(state: ClusterState, fromPeers: PeerMaster | undefined): MasterInfo | undefined {
  return !state.connected && fromPeers ? fromPeers.master : state.master;
}
