import type { NodePicker, ScoredNode } from './types.js';
import type { NodeStatus } from '../../coordination/node-status.js';

/*
 * A score of 0 means "no spare capacity": weighted and best never pick such a node, so a
 * policy with a scorer but without the matching filter still keeps listeners off full nodes.
 */

function uniform<T>(items: readonly T[], random: () => number): T | undefined {
  if (items.length === 0) return undefined;
  const i = Math.min(items.length - 1, Math.floor(random() * items.length));
  return items[i];
}

/** Random, with probability proportional to the score. */
export const weighted: NodePicker = {
  name: 'weighted',
  pick(candidates, random) {
    let total = 0;
    for (const c of candidates) total += positive(c.score);
    if (total <= 0) return undefined;
    let r = random() * total;
    let last: NodeStatus | undefined;
    for (const c of candidates) {
      const w = positive(c.score);
      if (w <= 0) continue;
      last = c.node;
      if (r < w) return c.node;
      r -= w;
    }
    // Floating-point rounding can leave r a hair above the last weight.
    return last;
  },
};

/** The highest score; ties are broken at random so equal nodes share the load. */
export const best: NodePicker = {
  name: 'best',
  pick(candidates, random) {
    let top = 0;
    let tied: ScoredNode[] = [];
    for (const c of candidates) {
      const s = positive(c.score);
      if (s <= 0) continue;
      if (s > top) {
        top = s;
        tied = [c];
      } else if (s === top) {
        tied.push(c);
      }
    }
    return uniform(tied, random)?.node;
  },
};

/** Uniformly random among the nodes that passed the filters; scores are ignored. */
export const random: NodePicker = {
  name: 'random',
  pick: (candidates, rnd) => uniform(candidates, rnd)?.node,
};

function positive(score: number): number {
  return Number.isFinite(score) && score > 0 ? score : 0;
}

export const PICKERS: readonly NodePicker[] = [weighted, best, random];
