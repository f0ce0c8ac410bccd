import { clientKey } from '../../common/client-key.js';
import type { NodeStatus } from '../../coordination/node-status.js';
import type { BalancerContext } from './types.js';
import { streamKbpsEstimate } from './stream-estimate.js';

/**
 * A redirect stops counting after this long even when no new report comes: a listener that
 * follows its redirect shows up in the node's next poll within a second or two, and unchanged
 * reports are written only every 15 s, so counting until the next report would let a burst of
 * redirects that nobody followed keep a node "full" for that long.
 */
export const PENDING_TTL_MS = 5_000;

/** Redirects from one client (IPv4 address or IPv6 /64) that count on one node at a time. */
export const PENDING_PER_CLIENT = 4;

/** Bounds memory when redirects from many addresses go to a node without a listener limit. */
const MAX_PENDING_PER_NODE = 10_000;

interface PendingRedirect {
  at: number;
  kbps: number;
  client: string;
}

/** Redirects sent to one node since its report `reportedAt`, oldest first. */
interface NodePending {
  reportedAt: number;
  redirects: PendingRedirect[];
  /** Index of the oldest redirect still counted; the consumed prefix is dropped in batches. */
  head: number;
  perClient: Map<string, number>;
  kbps: number;
}

/**
 * Counts each redirect (GET; HEAD and other probes are not listeners) as one more listener on
 * the chosen node until the node's next status report or PENDING_TTL_MS, whichever comes
 * first, so a burst of listeners between two reports cannot push it past 100 %. One client
 * counts at most PENDING_PER_CLIENT times per node: a few KB of requests from one host cannot
 * make a node look full to everybody else.
 */
export class PredictiveLoad {
  private readonly pending = new Map<string, NodePending>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The nodes as they probably are now: each report plus the redirects sent since. */
  estimate(nodes: readonly NodeStatus[]): NodeStatus[] {
    const live = new Set<string>();
    const now = this.now();
    const result = nodes.map((node) => {
      live.add(node.name);
      const p = this.current(node, now);
      const count = p === undefined ? 0 : p.redirects.length - p.head;
      if (p === undefined || count === 0) return node;
      return { ...node, listeners: node.listeners + count, bandwidthKbps: node.bandwidthKbps + p.kbps };
    });
    // Forget nodes that left, so their names cannot pile up.
    for (const name of this.pending.keys()) if (!live.has(name)) this.pending.delete(name);
    return result;
  }

  /** Records one redirect to `node` (the reported status, not the estimate), unless it is a probe. */
  record(node: NodeStatus, ctx: BalancerContext): void {
    if (ctx.probe === true) return;
    const now = this.now();
    let p = this.current(node, now);
    if (p === undefined) {
      p = { reportedAt: node.reportedAt, redirects: [], head: 0, perClient: new Map(), kbps: 0 };
      this.pending.set(node.name, p);
    }
    const client = clientKey(ctx.clientAddress);
    const already = p.perClient.get(client) ?? 0;
    if (already >= PENDING_PER_CLIENT) return;
    if (p.redirects.length - p.head >= MAX_PENDING_PER_NODE) expireOldest(p);
    const kbps = streamKbpsEstimate(node, ctx);
    p.redirects.push({ at: now, kbps, client });
    p.perClient.set(client, already + 1);
    p.kbps += kbps;
  }

  /** Redirects counted for `name` now (for tests and the status page). */
  pendingListeners(name: string): number {
    const p = this.pending.get(name);
    if (p === undefined) return 0;
    expireOlderThan(p, this.now() - PENDING_TTL_MS);
    return p.redirects.length - p.head;
  }

  /** The node's pending redirects relative to its current report, expired ones dropped. */
  private current(node: NodeStatus, now: number): NodePending | undefined {
    const p = this.pending.get(node.name);
    if (p === undefined) return undefined;
    if (p.reportedAt !== node.reportedAt) {
      // A new report already includes whoever followed the redirects counted so far.
      this.pending.delete(node.name);
      return undefined;
    }
    expireOlderThan(p, now - PENDING_TTL_MS);
    return p;
  }
}

function expireOlderThan(p: NodePending, cutoff: number): void {
  while (p.head < p.redirects.length && p.redirects[p.head]!.at <= cutoff) expireOldest(p);
}

function expireOldest(p: NodePending): void {
  const r = p.redirects[p.head]!;
  p.head++;
  p.kbps -= r.kbps;
  const left = (p.perClient.get(r.client) ?? 1) - 1;
  if (left > 0) p.perClient.set(r.client, left);
  else p.perClient.delete(r.client);
  if (p.head === p.redirects.length) {
    p.redirects = [];
    p.head = 0;
    p.kbps = 0;
  } else if (p.head >= 1024 && p.head * 2 >= p.redirects.length) {
    p.redirects = p.redirects.slice(p.head);
    p.head = 0;
  }
}
