/**
 * When a local Icecast that runs but answers nothing should be killed, so that its supervisor
 * (systemd's Restart=always in the package's icecast2 drop-in) starts a fresh one.
 *
 * Why: Icecast 2.4.4 can deadlock (threads waiting on each other's locks, seen during a
 * shutdown with a source authentication pending). A deadlocked Icecast is neither crashed nor
 * serving: systemd sees a running process and restarts nothing, radiod withdraws the node from
 * the election, and the node stays useless until a person kills it.
 *
 * States:
 * - `answering` (initial): the last poll was answered, or none failed yet;
 * - `silent`: every poll since `since` went unanswered; once that lasts `killAfterMs`, the
 *   verdict is `kill` and the state becomes `killed`;
 * - `killed`: a kill was asked at `at`, in a silence that began at `since`. The next one comes
 *   only `killAfterMs` later if Icecast still answers nothing: a supervisor's restart, or a
 *   slow start, is not a new stall.
 * `killAfterMs` 0 turns the guard off. Times are monotonic milliseconds. Pure.
 */
export type StallState =
  | { readonly name: 'answering' }
  | { readonly name: 'silent'; readonly since: number }
  | { readonly name: 'killed'; readonly since: number; readonly at: number };

export class IcecastStallGuard {
  private current: StallState = { name: 'answering' };

  constructor(private readonly killAfterMs: number) {}

  get state(): StallState {
    return this.current;
  }

  /** One stats poll's outcome at monotonic time `now`; 'kill' when Icecast should be killed. */
  observe(answered: boolean, now: number): 'kill' | undefined {
    if (answered || this.killAfterMs <= 0) {
      this.current = { name: 'answering' };
      return undefined;
    }
    const s = this.current;
    if (s.name === 'answering') {
      this.current = { name: 'silent', since: now };
      return undefined;
    }
    const from = s.name === 'silent' ? s.since : s.at;
    if (now - from < this.killAfterMs) return undefined;
    this.current = { name: 'killed', since: s.since, at: now };
    return 'kill';
  }

  /** How long Icecast has answered nothing, in ms (0 while it answers). */
  silentForMs(now: number): number {
    const s = this.current;
    return s.name === 'answering' ? 0 : now - s.since;
  }
}
