import type { NodeStatus } from '../../coordination/node-status.js';
import { PredictiveLoad } from './predictive-load.js';
import type { BalancerContext, Policy, ScoredNode } from './types.js';

export type { BalancerContext, Policy } from './types.js';

/**
 * Chooses the node a listener is sent to. Pure apart from the random source and its own
 * predictive bookkeeping: the caller passes the live nodes on every call.
 */
export class Balancer {
  private readonly load = new PredictiveLoad();

  constructor(
    readonly policy: Policy,
    private readonly random: () => number = Math.random,
  ) {}

  /** The chosen node (its reported status), or undefined when no node can take the listener. */
  choose(nodes: readonly NodeStatus[], ctx: BalancerContext): NodeStatus | undefined {
    const estimated = this.load.estimate(nodes);
    const candidates: ScoredNode[] = [];
    estimated.forEach((node, i) => {
      if (!this.policy.filters.every((f) => f.keep(node, ctx))) return;
      let score = 1;
      for (const s of this.policy.scorers) score *= s.score(node, ctx);
      candidates.push({ node: nodes[i]!, score });
    });
    // Scores are computed on the estimate but the picker returns the reported status.
    const chosen = this.policy.picker.pick(candidates, this.random);
    if (chosen) this.load.record(chosen, ctx);
    return chosen;
  }

  /** Redirects sent to `name` since its last status report. */
  pendingListeners(name: string): number {
    return this.load.pendingListeners(name);
  }
}
