import type { NodeScorer } from './types.js';

function spareFraction(used: number, max: number): number {
  if (max <= 0) return 1;
  return Math.min(1, Math.max(0, (max - used) / max));
}

/** Spare listener capacity; an unlimited node counts as entirely free. */
export const listenersScore: NodeScorer = {
  name: 'listeners_score',
  score: (node) => spareFraction(node.listeners, node.maxListeners),
};

/** Spare outbound bandwidth; an unlimited node counts as entirely free. */
export const bandwidthScore: NodeScorer = {
  name: 'bandwidth_score',
  score: (node) => spareFraction(node.bandwidthKbps, node.maxBandwidthKbps),
};

export const SCORERS: readonly NodeScorer[] = [listenersScore, bandwidthScore];
