import type { Mount } from './mount.js';
import type { NodeStatus } from './node-status.js';
import type { ListenerHistory } from './listener-history.js';
import type { AcmeState } from './acme.js';

/**
 * One consistent picture of the cluster, as the watched view holds it. Decisions (icecast.xml,
 * redirects, DNS answers, transcoders to run) are pure functions of this value.
 */
export interface ClusterState {
  /** Mounts by path. */
  mounts: ReadonlyMap<string, Mount>;
  /** Live nodes by name (their presence key exists). */
  nodes: ReadonlyMap<string, NodeStatus>;
  /** The elected master, if any (from the election key, so known even before its first status report). */
  master: MasterInfo | undefined;
  /** The master's candidate key (its last segment is the master's election lease, in hex). */
  masterKey?: string;
  /** etcd revision the state reflects. */
  revision: string;
  /** False while the view is serving its last known state because etcd is unreachable. */
  connected: boolean;
  /** Changes whenever the set of live nodes changes (used as the DNS SOA serial). */
  membershipSerial: number;
  /**
   * Nodes an operator drained (radioctl drain), live or not. A live drained node's status
   * already carries `draining: true` in `nodes`, whatever its radiod wrote.
   */
  drained?: ReadonlySet<string>;
  /** Nodes an operator forgot (radioctl forget-node) and whose radiod has not started since. */
  forgotten?: ReadonlySet<string>;
  /** Listeners over the last 24 h, as the master last wrote them. */
  history?: ListenerHistory;
  /** Pending DNS-01 values and the cluster's certificate (HTTPS by ACME); absent when etcd holds neither. */
  acme?: AcmeState;
  /**
   * The cluster's Icecast admin password: the front door's `/admin/listclients` takes the same
   * credentials as Icecast's. A secret: views built for people never carry it.
   */
  icecastAdminPassword?: string;
}

/** What a master candidate writes into its election key. */
export interface MasterInfo {
  name: string;
  addresses: string[];
  icecastPort: number;
}

export function emptyClusterState(): ClusterState {
  return { mounts: new Map(), nodes: new Map(), master: undefined, revision: '0', connected: false, membershipSerial: 1 };
}

/** False for the empty state a view starts with: nothing was read yet, which is not "no mounts". */
export function isLoaded(state: Pick<ClusterState, 'revision'>): boolean {
  return state.revision !== '0';
}
