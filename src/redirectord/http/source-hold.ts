/**
 * Pure timing rules for holding a source client while no Icecast takes its audio. Every time
 * is in milliseconds on a monotonic clock (performance.now()): a hold must end after its
 * deadline even when the wall clock is stepped (NTP, a VM resume), forwards or backwards.
 */

/** A re-attachment lost sooner than this continues the hold it ended. */
export const STABLE_ATTACH_MS = 5000;

/** A source that sent nothing for this long is gone (Icecast's own source timeout is 10 s). */
export const CLIENT_SILENCE_MS = 5000;

/** No step of a hold (one connect, one wait for an answer) is cut shorter than this. */
const MIN_STEP_MS = 100;

/** One hold: when it started, its budget, and what it cost so far. */
export class Hold {
  attempts = 0;
  /** Client audio read and dropped since the last report. */
  discardedBytes = 0;

  constructor(
    readonly startedAt: number,
    readonly holdMs: number,
  ) {}

  heldMs(now: number): number {
    return now - this.startedAt;
  }

  remainingMs(now: number): number {
    return this.startedAt + this.holdMs - now;
  }

  /** A timeout for one step of a re-attach attempt, cut at the hold's deadline. */
  stepMs(ms: number, now: number): number {
    return Math.max(MIN_STEP_MS, Math.min(ms, this.remainingMs(now)));
  }

  /**
   * The pause before the next attempt, or undefined once the hold is over. The last attempt
   * falls on the deadline, so a client is held the full time.
   */
  retryDelayMs(intervalMs: number, now: number): number | undefined {
    const left = this.remainingMs(now);
    return left <= 0 ? undefined : Math.min(intervalMs, left);
  }
}

/**
 * Whether losing an upstream continues the hold that attached it instead of starting a new
 * one: an Icecast that takes the source and drops it at once neither restarts the clock nor
 * gets hammered. A master change always starts a new hold.
 */
export function continuesHold(attachedAt: number, now: number, masterMoved: boolean): boolean {
  return !masterMoved && now - attachedAt < STABLE_ATTACH_MS;
}

export function clientSilent(lastDataAt: number, now: number): boolean {
  return now - lastDataAt >= CLIENT_SILENCE_MS;
}
