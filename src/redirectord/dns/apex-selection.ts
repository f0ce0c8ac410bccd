import type { NodeStatus } from '../../coordination/node-status.js';
import { eligibleNodes } from '../balancer/eligibility.js';

/** A node that may appear in the zone apex answer, with its selection weight (> 0). */
export interface ApexCandidate<T = NodeStatus> {
  node: T;
  weight: number;
}

/** At most this many nodes go into one apex answer (SPEC.md, DNS). */
export const APEX_MAX_NODES = 5;

/**
 * Which nodes the apex may name for address records of `family`, and how strongly each is
 * preferred. Only nodes the balancer's hard rule allows are named (healthy Icecast, not
 * draining, current report, an address of the family: balancer/eligibility.ts); when none is,
 * the answer is empty (NODATA) rather than an address that leads to a dead Icecast. Among
 * them, nodes with spare listener capacity are preferred, weighted by how much they have
 * left; nodes at or above their limit appear only when nothing else is left, equally weighted.
 */
export function apexCandidates(nodes: readonly NodeStatus[], family: 4 | 6): ApexCandidate[] {
  const pool = eligibleNodes(nodes, family);
  const spare: ApexCandidate[] = [];
  for (const node of pool) {
    const weight = spareWeight(node);
    if (weight > 0) spare.push({ node, weight });
  }
  if (spare.length > 0) return spare;
  return pool.map((node) => ({ node, weight: 1 }));
}

/** Spare listener capacity as a fraction in (0, 1]; 1 for unlimited nodes, 0 when full. */
export function spareWeight(n: NodeStatus): number {
  if (n.maxListeners <= 0) return 1;
  if (n.listeners >= n.maxListeners) return 0;
  return (n.maxListeners - n.listeners) / n.maxListeners;
}

/**
 * Weighted random sample of up to `k` items without replacement; the order of the result is
 * the draw order, so heavier items tend to come first as well as more often. `random` returns
 * values in [0, 1) like Math.random.
 */
export function weightedSample<T>(
  items: readonly ApexCandidate<T>[],
  k: number,
  random: () => number,
): T[] {
  const n = items.length;
  if (n === 0 || k <= 0) return [];
  const weights = new Array<number>(n);
  const order = new Array<number>(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = items[i]!.weight;
    order[i] = i;
    total += weights[i]!;
  }
  const out: T[] = [];
  let remaining = n;
  while (out.length < k && remaining > 0) {
    let r = random() * total;
    let pick = remaining - 1;
    for (let j = 0; j < remaining; j++) {
      r -= weights[j]!;
      if (r < 0) {
        pick = j;
        break;
      }
    }
    out.push(items[order[pick]!]!.node);
    total -= weights[pick]!;
    // Move the last remaining entry into the drawn slot so the live prefix stays compact.
    remaining--;
    weights[pick] = weights[remaining]!;
    order[pick] = order[remaining]!;
    if (total <= 0) total = sumPrefix(weights, remaining);
  }
  return out;
}

function sumPrefix(weights: number[], len: number): number {
  let t = 0;
  for (let i = 0; i < len; i++) t += weights[i]!;
  return t;
}
