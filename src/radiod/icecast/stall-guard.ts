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
 * `killAfterMs()` is asked at each poll: a legitimate reload blocks Icecast's HTTP for about
 * 90 ms per mount with URL authentication (measured on 2.4.4: 100 mounts 8.5-10 s, 400 mounts
 * 36 s), so the delay grows with the mounts (stallDelayMs). Each delay asked stays in force for
 * its own length: the reload that removes mounts tears down the authenticators of the mounts
 * it removes, so removing 400 mounts at once silenced a healthy Icecast for over 7 s while the
 * mount count, and with it the current delay, had already dropped to 0 (killed by a 2 s delay,
 * measured here). 0 turns the guard off. Times are monotonic milliseconds. Pure.
 */
export type StallState =
  | { readonly name: 'answering' }
  | { readonly name: 'silent'; readonly since: number }
  | { readonly name: 'killed'; readonly since: number; readonly at: number };

/** A delay asked at `at`: in force until `at + ms`. */
interface HeldDelay {
  readonly ms: number;
  readonly at: number;
}

export class IcecastStallGuard {
  private current: StallState = { name: 'answering' };
  /** Delays still in force, longest first, each expiring later than the next-longer one. */
  private held: HeldDelay[] = [];
  private lastDelayMs = 0;

  constructor(private readonly killAfterMs: () => number) {}

  get state(): StallState {
    return this.current;
  }

  /** The delay in force at the last poll, in ms. */
  get delayMs(): number {
    return this.lastDelayMs;
  }

  /** One stats poll's outcome at monotonic time `now`; 'kill' when Icecast should be killed. */
  observe(answered: boolean, now: number): 'kill' | undefined {
    const killAfterMs = this.delayInForce(this.killAfterMs(), now);
    this.lastDelayMs = killAfterMs;
    if (answered || killAfterMs <= 0) {
      this.current = { name: 'answering' };
      return undefined;
    }
    const s = this.current;
    if (s.name === 'answering') {
      this.current = { name: 'silent', since: now };
      return undefined;
    }
    const from = s.name === 'silent' ? s.since : s.at;
    if (now - from < killAfterMs) return undefined;
    this.current = { name: 'killed', since: s.since, at: now };
    return 'kill';
  }

  /**
   * The longest delay asked within its own length of `now`, `asked` included. 0 (off) forgets
   * them all: the operator turned the guard off.
   */
  private delayInForce(asked: number, now: number): number {
    if (asked <= 0) {
      this.held = [];
      return 0;
    }
    // A delay no longer than the new one, asked earlier, also ends earlier: it never counts again.
    this.held = this.held.filter((d) => d.ms > asked && now - d.at < d.ms);
    this.held.push({ ms: asked, at: now });
    return this.held[0]!.ms;
  }

  /** How long Icecast has answered nothing, in ms (0 while it answers). */
  silentForMs(now: number): number {
    const s = this.current;
    return s.name === 'answering' ? 0 : now - s.since;
  }
}

/** Per mount: two back-to-back reloads' worth of 2.4.4's stall (about 90 ms each), rounded up. */
export const STALL_DELAY_PER_MOUNT_MS = 200;

/**
 * The silence after which a running Icecast counts as wedged: the operator's delay, or longer
 * where that many mounts can make a healthy Icecast's reload last longer; 0 (off) stays 0.
 */
export function stallDelayMs(configuredSeconds: number, mounts: number): number {
  if (configuredSeconds <= 0) return 0;
  return Math.max(configuredSeconds * 1000, mounts * STALL_DELAY_PER_MOUNT_MS);
}
