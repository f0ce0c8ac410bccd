/**
 * The etcd key layout, in one place. Every key lives under a versioned root so that a future
 * incompatible layout can sit beside this one during an upgrade.
 *
 *   /autoradio/v1/mounts/<path>                    Mount JSON (path without its leading slash)
 *   /autoradio/v1/nodes/<name>                     NodeStatus JSON, attached to the node's lease
 *   /autoradio/v1/election/master/<lease hex>      master candidates (lowest create revision leads)
 *   /autoradio/v1/election/transcoder/<path>/<lease hex>   one election per transcoding mount
 *   /autoradio/v1/cluster/icecast-secrets          admin and relay passwords, created once
 */
export const ROOT = '/autoradio/v1/';

export const MOUNTS_PREFIX = `${ROOT}mounts/`;
export const NODES_PREFIX = `${ROOT}nodes/`;
export const MASTER_ELECTION_PREFIX = `${ROOT}election/master/`;
export const TRANSCODER_ELECTION_ROOT = `${ROOT}election/transcoder/`;
export const ICECAST_SECRETS_KEY = `${ROOT}cluster/icecast-secrets`;

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

/** Trailing slash: a transcoder election for /a must not see candidates of /a/b. */
export function transcoderElectionPrefix(path: string): string {
  return `${TRANSCODER_ELECTION_ROOT}${path.replace(/^\//, '')}/`;
}
