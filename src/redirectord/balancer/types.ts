import type { NodeStatus } from '../../coordination/node-status.js';

/** What the balancer knows about the listener request being placed. */
export interface BalancerContext {
  /** IP family the listener connected with. */
  clientFamily: 4 | 6;
  mount: string;
  /** The mount's bitrate when known (transcoded mounts); otherwise estimated from the node's traffic. */
  bitrateKbps?: number;
  /** The listener's address: redirects count per client (IPv6 per /64) in the predictive load. */
  clientAddress?: string;
  /** A request that does not become a listener (HEAD): placed like a GET but never counted. */
  probe?: boolean;
}

/** Drops nodes that must not take the listener. */
export interface NodeFilter {
  readonly name: string;
  keep(node: NodeStatus, ctx: BalancerContext): boolean;
}

/** Weights a node by its spare capacity, in [0, 1]; scores of several scorers multiply. */
export interface NodeScorer {
  readonly name: string;
  score(node: NodeStatus, ctx: BalancerContext): number;
}

export interface ScoredNode {
  node: NodeStatus;
  score: number;
}

/** Picks one node among the candidates that passed every filter. */
export interface NodePicker {
  readonly name: string;
  pick(candidates: readonly ScoredNode[], random: () => number): NodeStatus | undefined;
}

/** A parsed `--lb-policy`. */
export interface Policy {
  readonly filters: readonly NodeFilter[];
  readonly scorers: readonly NodeScorer[];
  readonly picker: NodePicker;
  /** The normalized spec, for logs. */
  readonly text: string;
}
