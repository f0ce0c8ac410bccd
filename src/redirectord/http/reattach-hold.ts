import { monotonicNow, type MonotonicClock } from '../../coordination/clock.js';

/** An attempt to re-attach is given at least this long to be answered, even near the deadline. */
const MIN_ATTEMPT_MS = 500;

/**
 * How long a stream whose upstream was lost is held open for its listeners, and when its next
 * attempt goes out. Shared by the relay proxy (stream-proxy.ts) and the listeners' feeds
 * (fanout/mount-feed.ts), which differ only in what giving up ends (one connection, or a feed
 * and all its listeners).
 *
 * The deadline is set at the first loss and kept across re-attaches until audio reaches the
 * listeners again: an upstream that answers 200 and then has nothing (hangs up at once, or stays
 * silent until the idle timeout) would otherwise restart the wait at every answer and hold the
 * listeners on silence for ever.
 * Monotonic: a wall-clock step forward must not end every hold at once, nor one back prolong it.
 */
export class ReattachHold {
  #deadline: number | undefined;

  constructor(
    private readonly waitMs: number,
    /** Pause between attempts. */
    readonly intervalMs: number,
    private readonly now: MonotonicClock = monotonicNow,
  ) {}

  /** Whether holding is allowed at all (a wait of 0 disables it). */
  get enabled(): boolean {
    return this.waitMs > 0;
  }

  /** The upstream was lost: the hold begins, or goes on if no audio flowed since the last loss. */
  begin(): void {
    this.#deadline ??= this.now() + this.waitMs;
  }

  /** Audio from a live upstream reached the listeners: a later loss starts a wait of its own. Not while held. */
  audioFlowed(): void {
    this.#deadline = undefined;
  }

  /** After a failed attempt: whether one more fits before the deadline, a pause from now. */
  mayRetry(): boolean {
    return this.#deadline !== undefined && this.now() + this.intervalMs <= this.#deadline;
  }

  /** The head timeout of an attempt made while held: never past the deadline, but never tiny. */
  attemptTimeout(headTimeoutMs: number): number {
    const left = this.#deadline === undefined ? headTimeoutMs : this.#deadline - this.now();
    return Math.max(MIN_ATTEMPT_MS, Math.min(headTimeoutMs, left));
  }
}
