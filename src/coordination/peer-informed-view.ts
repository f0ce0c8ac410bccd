import type { ClusterState } from './cluster-state.js';
import type { ClusterStateSource } from './cluster-view.js';
import { masterToFollow } from './peer-master-choice.js';
import { PeerMasterLookup, type PeerMasterLookupOptions } from './peer-master-lookup.js';

/**
 * The cluster view with the master the peers report while the view is cut from etcd
 * (peer-master-lookup.ts), for what routes audio: the front door's sources and relays, the
 * relays radiod renders. Everything else in it is the view's own. A master learned from peers
 * has no candidate key: nothing that acts on the election (deposing a master) may read this view.
 */
export class PeerInformedView implements ClusterStateSource {
  #cached: { from: ClusterState; peers: ReturnType<PeerMasterLookup['current']>; state: ClusterState } | undefined;

  constructor(
    private readonly view: ClusterStateSource,
    private readonly peers: Pick<PeerMasterLookup, 'current' | 'onChange'>,
  ) {}

  current(): ClusterState {
    const from = this.view.current();
    const peers = this.peers.current();
    // The same object while nothing changed: consumers compare states by identity.
    if (this.#cached?.from === from && this.#cached.peers === peers) return this.#cached.state;
    const master = masterToFollow(from, peers);
    const state = master === from.master ? from : { ...from, master, masterKey: undefined };
    this.#cached = { from, peers, state };
    return state;
  }

  onChange(listener: (state: ClusterState) => void): () => void {
    const offView = this.view.onChange(() => listener(this.current()));
    const offPeers = this.peers.onChange(() => listener(this.current()));
    return () => {
      offView();
      offPeers();
    };
  }
}

/** Starts asking peers while `view` is cut from etcd; the lookup is stopped with the daemon. */
export function startPeerInformedView(
  view: ClusterStateSource,
  o: Omit<PeerMasterLookupOptions, 'view'>,
): { routing: PeerInformedView; lookup: PeerMasterLookup } {
  const lookup = new PeerMasterLookup({ view, ...o });
  lookup.start();
  return { routing: new PeerInformedView(view, lookup), lookup };
}
