import { isIP } from 'node:net';

/**
 * Where etcd's raft leadership should go while this node is master: anywhere but here. A node
 * that crashes while holding both roles costs a raft election (1-2 s without writes, so without
 * a deposition) before its peers can even say it is dead, and etcd extends every lease when its
 * raft leader changes. Apart, one crash costs one of the two. Pure.
 */
export interface RaftMember {
  id: string;
  clientUrls: readonly string[];
  isLearner?: boolean;
}

export function leadershipTarget(o: {
  /** The member that answered the status request, and whom it sees as leader. */
  answeredBy: string;
  leader: string;
  members: readonly RaftMember[];
  ownAddresses: readonly string[];
}): string | undefined {
  if (o.leader === '0' || o.answeredBy !== o.leader) return undefined;
  const leader = o.members.find((m) => m.id === o.leader);
  if (!leader || !leader.clientUrls.some((u) => isOwnUrl(u, o.ownAddresses))) return undefined;
  // Members not started yet have no client URLs; learners cannot lead.
  const candidates = o.members.filter((m) => m.id !== o.leader && !m.isLearner && m.clientUrls.length > 0);
  if (candidates.length === 0) return undefined;
  return candidates[Math.floor(Math.random() * candidates.length)]!.id;
}

function isOwnUrl(url: string, ownAddresses: readonly string[]): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))) return true;
  return ownAddresses.includes(host);
}
