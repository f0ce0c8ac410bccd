import type { ClusterState } from './cluster-state.js';

/**
 * What a node does about its roles (the master candidacy, its transcoders) given the drain
 * flags. Pure: radiod acts on it, radioctl drain reports it.
 * - serve: not drained; the node campaigns like any other.
 * - hand-over: drained, and another node can take the roles over: the node withdraws every
 *   candidacy (a master resigns) until it is undrained.
 * - hold: drained, but no other node can take over: giving up would leave the radio without
 *   a master or a mount without its transcoder, which a maintenance drain never asks for.
 */
export type DrainDuty =
  | { kind: 'serve' }
  | { kind: 'hand-over'; successors: string[] }
  | { kind: 'hold'; reason: 'no-other-node' };

/**
 * A successor is another live node whose Icecast answers (a node whose Icecast is down does not
 * campaign for master) and that is not drained itself (it would hand over too).
 */
export function drainDuty(state: Pick<ClusterState, 'nodes' | 'drained'>, node: string): DrainDuty {
  if (!state.drained?.has(node)) return { kind: 'serve' };
  const successors = [...state.nodes.values()]
    .filter((n) => n.name !== node && n.icecastOk && n.draining !== true && !state.drained?.has(n.name))
    .map((n) => n.name)
    .sort();
  return successors.length > 0 ? { kind: 'hand-over', successors } : { kind: 'hold', reason: 'no-other-node' };
}

/** Whether this duty asks the node to give up its candidacies. */
export function handsOver(duty: DrainDuty): boolean {
  return duty.kind === 'hand-over';
}
