import type { Logger } from '../common/logger.js';
import { isLoaded } from '../coordination/cluster-state.js';
import { followState, type ClusterStateSource } from '../coordination/cluster-view.js';
import { drainDuty, handsOver, type DrainDuty } from '../coordination/drain-handover.js';

/**
 * Follows this node's drain flag through the cluster view and tells the node's role holders
 * (the master candidacy, the transcoders) whether to hand their roles over. Acts on a change
 * of duty only, so other nodes' status reports cost nothing; each change is logged once.
 */
export class DrainWatch {
  private duty: DrainDuty = { kind: 'serve' };
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly deps: {
      view: ClusterStateSource;
      nodeName: string;
      log: Logger;
      /** Called with true when the roles must go, false when the node may hold them again. */
      onHandOver: (handOver: boolean) => void;
    },
  ) {}

  start(): void {
    this.unsubscribe = followState(this.deps.view, () => this.check());
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private check(): void {
    const state = this.deps.view.current();
    // Before the first read nothing is known, which is not "not drained".
    if (!isLoaded(state)) return;
    const next = drainDuty(state, this.deps.nodeName);
    const previous = this.duty;
    this.duty = next;
    if (next.kind === previous.kind) return;
    if (next.kind === 'hand-over') this.deps.log.info({ successors: next.successors }, 'drained: handing the master role and transcoders over');
    else if (next.kind === 'hold') this.deps.log.warn('drained, but no other live node can take over: keeping the master role and transcoders');
    else this.deps.log.info('undrained: campaigning for the master role and transcoders again');
    if (handsOver(next) !== handsOver(previous)) this.deps.onHandOver(handsOver(next));
  }
}
