/**
 * When peers may revoke a leader's lease: a strict majority of the cluster's live nodes (the
 * leader included, as its presence outlives it by up to a TTL) must each have seen it dead. A
 * node cut off with the leader cannot reach etcd to count, so a minority can never depose the
 * majority's leader; a two-node cluster never deposes (it waits for the lease to expire). Pure.
 */
export function depositionQuorum(liveNodes: number): number {
  return Math.floor(liveNodes / 2) + 1;
}

/** Whether the suspicions of `suspecters` suffice, counting only nodes that are live members. */
export function mayDepose(suspecters: Iterable<string>, liveNodes: ReadonlySet<string>, leaderNode: string): boolean {
  let votes = 0;
  for (const name of new Set(suspecters)) if (name !== leaderNode && liveNodes.has(name)) votes++;
  return votes >= depositionQuorum(liveNodes.size) && liveNodes.size >= 3;
}
