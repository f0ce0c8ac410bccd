/**
 * The etcd key layout, in one place. Every key lives under a versioned root so that a future
 * incompatible layout can sit beside this one during an upgrade.
 *
 *   /autoradio/v1/mounts/<path>                    Mount JSON (path without its leading slash)
 *   /autoradio/v1/nodes/<name>                     NodeStatus JSON, attached to the node's lease
 *   /autoradio/v1/election/master/<lease hex>      master candidates (lowest create revision leads)
 *   /autoradio/v1/election/transcoder/<encoded path>/<lease hex>   one election per transcoding mount
 *   /autoradio/v1/election/deposed/<lease hex>     a lease its peers revoked (a master they all saw dead)
 *   /autoradio/v1/suspicions/<lease hex>/<node>    a node that sees that lease's master dead
 *   /autoradio/v1/cluster/icecast-secrets          admin and relay passwords, created once
 *   /autoradio/v1/cluster/listener-history        ListenerHistory JSON: 24 h of listeners, written by the master
 *   /autoradio/v1/drain/<name>                     DrainRecord JSON: the node takes no new listeners (radioctl drain)
 *   /autoradio/v1/election/acme/<lease hex>        ACME orderer candidates (redirectord with --acme-directory)
 *   /autoradio/v1/acme/challenge/<token>           a pending DNS-01 value, attached to the orderer's election lease
 *   /autoradio/v1/acme/certificate                 the cluster's certificate chain and key (StoredCertificate JSON)
 *   /autoradio/v1/acme/account                     the ACME account key and the directory it belongs to
 *   /autoradio/v1/acme/backoff                     StoredBackoff JSON: failed orders in a row, and when the last one failed
 *   /autoradio/v1/forgotten/<name>                 ForgottenRecord JSON: an operator removed the node (radioctl forget-node)
 */
export const ROOT = '/autoradio/v1/';

export const MOUNTS_PREFIX = `${ROOT}mounts/`;
export const NODES_PREFIX = `${ROOT}nodes/`;
/** Every election lives under here: one watch on it serves all of a node's campaigns. */
export const ELECTION_ROOT = `${ROOT}election/`;
export const MASTER_ELECTION_PREFIX = `${ELECTION_ROOT}master/`;
export const TRANSCODER_ELECTION_ROOT = `${ELECTION_ROOT}transcoder/`;
/**
 * Markers of leases revoked by peers (deposition.ts). Under the election root so that every
 * campaign's view holds them: a candidate that becomes first while one exists waits out the
 * deposed holder's confirmation window before it acts.
 */
export const DEPOSED_PREFIX = `${ELECTION_ROOT}deposed/`;
export const SUSPICIONS_PREFIX = `${ROOT}suspicions/`;
export const ICECAST_SECRETS_KEY = `${ROOT}cluster/icecast-secrets`;
export const LISTENER_HISTORY_KEY = `${ROOT}cluster/listener-history`;
/** Drained nodes: no lease, so a drain outlives the node's restart (an upgrade) until undrained. */
export const DRAIN_PREFIX = `${ROOT}drain/`;

/** The node that orders the cluster's certificate is elected here (one election, like the master's). */
export const ACME_ELECTION_PREFIX = `${ELECTION_ROOT}acme/`;
export const ACME_CHALLENGE_PREFIX = `${ROOT}acme/challenge/`;
export const ACME_CERTIFICATE_KEY = `${ROOT}acme/certificate`;
export const ACME_ACCOUNT_KEY = `${ROOT}acme/account`;
/** Failed orders in a row, cluster-wide: a new orderer (takeover, restart) keeps backing off. */
export const ACME_BACKOFF_KEY = `${ROOT}acme/backoff`;

/** One key per pending challenge (a token is base64url, one key segment). */
export function acmeChallengeKey(token: string): string {
  return ACME_CHALLENGE_PREFIX + token;
}

export function drainKey(name: string): string {
  return DRAIN_PREFIX + name;
}

/**
 * Nodes an operator removed for good: metrics stop reporting them as down. No lease; the node's
 * own radiod deletes its key when it starts again, so a node that returns and dies later is
 * reported down like any other.
 */
export const FORGOTTEN_PREFIX = `${ROOT}forgotten/`;

export function forgottenKey(name: string): string {
  return FORGOTTEN_PREFIX + name;
}

export function mountKey(path: string): string {
  return MOUNTS_PREFIX + path.replace(/^\//, '');
}

export function mountPathFromKey(key: string): string {
  return '/' + key.slice(MOUNTS_PREFIX.length);
}

export function nodeKey(name: string): string {
  return NODES_PREFIX + name;
}

export function nodeNameFromKey(key: string): string {
  return key.slice(NODES_PREFIX.length);
}

/**
 * The mount path (without its leading slash) is one key segment: its slashes are encoded, so
 * that no election's prefix is a prefix of another's (/live and /live/low are `live/` and
 * `live%2Flow/`). Mount paths never contain '%', so the encoding is one-to-one; a path without
 * inner slashes keeps the key it had before the encoding was introduced.
 */
export function transcoderElectionPrefix(path: string): string {
  return `${TRANSCODER_ELECTION_ROOT}${encodeURIComponent(path.replace(/^\//, ''))}/`;
}

/**
 * Splits a candidate key into its election (everything up to the last '/') and the candidate's
 * own segment. Elections are told apart by this exact prefix, never by prefix matching.
 */
export function electionOfKey(key: string): { election: string; candidate: string } | undefined {
  if (!key.startsWith(ELECTION_ROOT)) return undefined;
  const cut = key.lastIndexOf('/');
  const candidate = key.slice(cut + 1);
  if (candidate === '' || cut < ELECTION_ROOT.length) return undefined;
  return { election: key.slice(0, cut + 1), candidate };
}

/** A lease id as etcd grants it (decimal) in the hex form candidate keys end with. */
export function leaseHex(leaseId: string): string {
  return BigInt(leaseId).toString(16);
}

/** The lease id (decimal, as etcd's API takes it) of a candidate key's hex segment. */
export function leaseIdOfHex(hex: string): string {
  return BigInt(`0x${hex}`).toString();
}

/** The lease (hex) a candidate key is attached to: its last segment. */
export function candidateLeaseHex(candidateKey: string): string {
  return candidateKey.slice(candidateKey.lastIndexOf('/') + 1);
}
