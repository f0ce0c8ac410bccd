import type { MasterCandidacy } from './candidacy.js';

/** Why the node is out of the master election; undefined while it campaigns. */
export type Withdrawal = 'icecast-down' | 'drained' | undefined;

/**
 * Whether this node campaigns for master, from its two conditions: its Icecast answers (a
 * master whose Icecast is down would take every source and serve nobody), and it is not
 * handing its roles over because an operator drained it. Campaigns when both hold, withdraws
 * as soon as either fails. A drained master leaves as on a planned stop (`resign`: the next
 * candidate takes over within milliseconds, the sources still attached here move through the
 * front doors); a master whose Icecast went down only withdraws, there is nothing to drop.
 */
export class CandidacyGate {
  private icecastUp = false;
  private handingOver = false;

  constructor(
    private readonly candidacy: MasterCandidacy,
    private readonly resign: (reason: string) => Promise<void>,
  ) {}

  get withdrawal(): Withdrawal {
    if (!this.icecastUp) return 'icecast-down';
    return this.handingOver ? 'drained' : undefined;
  }

  setIcecastUp(up: boolean): void {
    this.icecastUp = up;
    this.apply();
  }

  setHandingOver(handOver: boolean): void {
    this.handingOver = handOver;
    this.apply();
  }

  private apply(): void {
    const why = this.withdrawal;
    if (why === undefined) this.candidacy.start();
    else if (!this.candidacy.active) return;
    else if (why === 'drained') void this.resign('drained');
    else void this.candidacy.stop('local icecast is down');
  }
}
