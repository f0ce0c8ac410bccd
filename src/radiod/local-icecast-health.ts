/**
 * Whether the local Icecast is serving, from the stats polls. Two states:
 * - `down` (initial): the first answered poll moves to `up`;
 * - `up`: `downAfterFailures` failed polls in a row move back to `down` (one failed poll is
 *   not enough: an Icecast restart takes about a second).
 * `observe` returns the transition a poll caused, if any. Pure.
 */
export class LocalIcecastHealth {
  private state: 'down' | 'up' = 'down';
  private failures = 0;

  constructor(private readonly downAfterFailures: number) {}

  observe(answered: boolean): 'came-up' | 'went-down' | undefined {
    if (answered) {
      this.failures = 0;
      if (this.state === 'up') return undefined;
      this.state = 'up';
      return 'came-up';
    }
    this.failures++;
    if (this.state === 'up' && this.failures >= this.downAfterFailures) {
      this.state = 'down';
      return 'went-down';
    }
    return undefined;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }
}
