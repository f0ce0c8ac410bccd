import type { NodeStatus } from '../../coordination/node-status.js';
import type { BalancerContext } from './types.js';
import { streamKbpsEstimate } from './stream-estimate.js';

interface Pending {
  /** reportedAt of the status report the count is relative to. */
  reportedAt: number;
  listeners: number;
  kbps: number;
}

/**
 * Counts every redirect sent to a node as one more listener there until the node's next
 * status report, so a burst of listeners between two reports cannot push it past 100 %.
 */
export class PredictiveLoad {
  private readonly pending = new Map<string, Pending>();

  /** The nodes as they probably are now: each report plus the redirects sent since. */
  estimate(nodes: readonly NodeStatus[]): NodeStatus[] {
    const live = new Set<string>();
    const result = nodes.map((node) => {
      live.add(node.name);
      const p = this.pending.get(node.name);
      if (!p) return node;
      if (p.reportedAt !== node.reportedAt) {
        this.pending.delete(node.name);
        return node;
      }
      return { ...node, listeners: node.listeners + p.listeners, bandwidthKbps: node.bandwidthKbps + p.kbps };
    });
    // Forget nodes that left, so their names cannot pile up.
    for (const name of this.pending.keys()) if (!live.has(name)) this.pending.delete(name);
    return result;
  }

  /** Records one redirect to `node` (the reported status, not the estimate). */
  record(node: NodeStatus, ctx: BalancerContext): void {
    const p = this.pending.get(node.name);
    const kbps = streamKbpsEstimate(node, ctx);
    if (p && p.reportedAt === node.reportedAt) {
      p.listeners += 1;
      p.kbps += kbps;
    } else {
      this.pending.set(node.name, { reportedAt: node.reportedAt, listeners: 1, kbps });
    }
  }

  /** Redirects counted for `name` since its last report (for tests and the status page). */
  pendingListeners(name: string): number {
    return this.pending.get(name)?.listeners ?? 0;
  }
}
