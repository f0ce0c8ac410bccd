import type { NodeStatus } from '../../coordination/node-status.js';
import { ineligibility, newestReport } from './eligibility.js';
import { PredictiveLoad } from './predictive-load.js';
import type { BalancerContext, Policy, ScoredNode } from './types.js';

export type { BalancerContext, Policy } from './types.js';

/**
 * Chooses the node a listener is sent to. Pure apart from the random source, the clock and its
 * own predictive bookkeeping: the caller passes the live nodes on every call.
 */
export class Balancer {
  private readonly load: PredictiveLoad;

  constructor(
    readonly policy: Policy,
    private readonly random: () => number = Math.random,
    now: () => number = Date.now,
  ) {
    this.load = new PredictiveLoad(now);
  }

  /** The chosen node (its reported status), or undefined when no node can take the listener. */
  choose(nodes: readonly NodeStatus[], ctx: BalancerContext): NodeStatus | undefined {
    const estimated = this.load.estimate(nodes);
    const newest = newestReport(nodes);
    const candidates: ScoredNode[] = [];
    estimated.forEach((node, i) => {
      // The hard rule first (eligibility.ts); the policy string only chooses among what is left.
      if (ineligibility(nodes[i]!, newest, ctx.clientFamily) !== undefined) return;
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

  /** Redirects to `name` that count as pending listeners now. */
  pendingListeners(name: string): number {
    return this.load.pendingListeners(name);
  }
}
