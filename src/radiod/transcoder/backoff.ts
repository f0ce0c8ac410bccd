/**
 * Restart delays for a crashing child: doubling from `initialMs` up to `maxMs`, and back to
 * `initialMs` once a run lasted `resetAfterMs` (it was healthy; the next crash is a new story).
 * Pure: the caller passes the run's duration.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 1000, maxMs: 30_000, resetAfterMs: 60_000 };

export class RestartBackoff {
  private nextMs: number;

  constructor(private readonly opts: BackoffOptions = DEFAULT_BACKOFF) {
    this.nextMs = opts.initialMs;
  }

  /** The delay before the next start, given how long the run that just ended lasted. */
  afterExit(uptimeMs: number): number {
    if (uptimeMs >= this.opts.resetAfterMs) this.nextMs = this.opts.initialMs;
    const delay = this.nextMs;
    this.nextMs = Math.min(this.opts.maxMs, this.nextMs * 2);
    return delay;
  }

  reset(): void {
    this.nextMs = this.opts.initialMs;
  }
}
