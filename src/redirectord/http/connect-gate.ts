import { monotonicNow, type MonotonicClock } from '../../coordination/clock.js';

/**
 * Bounds how many connections to one server are being opened at once, the rest waiting in
 * arrival order. Icecast 2.4.4 listens with a backlog of 5: in a flash crowd the connects
 * beyond it are dropped, and the kernel retries each after 1, 3, 7, 15 ... s, so a few
 * unlucky listeners wait a minute or get a 502. Queued here, each waits only for the
 * connections ahead of it.
 *
 * The queue itself is bounded in length and in waiting time: a hung Icecast (accepting but
 * never answering) frees a slot only every head timeout, and the queue would otherwise grow
 * with every arrival. A refused entry is told why, so its listener gets a 503 with Retry-After.
 *
 * An entry is `waiting` (queued), `running` (holds a slot) or `done` (released, withdrawn,
 * refused); every transition is one-way.
 */
export type GateRefusal = 'full' | 'expired';

export interface ConnectGateLimits {
  /** Entries waiting at most; a newcomer beyond is refused at once. */
  maxWaiting?: number;
  /** Longest wait for a slot; a waiting entry is refused after it. */
  maxWaitMs?: number;
  /** What waits are measured on (monotonic: a wall-clock step must not expire them all at once). */
  clock?: MonotonicClock;
}

interface Waiting {
  run: () => void;
  refuse: (why: GateRefusal) => void;
  deadline: number;
  /** False once it ran, left or was refused; such entries are skipped when their turn comes. */
  live: boolean;
}

export class ConnectGate {
  private inFlight = 0;
  private queue: Waiting[] = [];
  private head = 0;
  private live = 0;
  private expiryTimer: NodeJS.Timeout | undefined;
  readonly maxWaiting: number;
  readonly maxWaitMs: number;
  private readonly clock: MonotonicClock;

  constructor(
    readonly maxInFlight: number,
    limits: ConnectGateLimits = {},
  ) {
    this.maxWaiting = limits.maxWaiting ?? Infinity;
    this.maxWaitMs = limits.maxWaitMs ?? Infinity;
    this.clock = limits.clock ?? monotonicNow;
  }

  /**
   * Runs `start` as soon as a slot is free (now, if one is). `start` gets `release`, to call
   * once the connection is established or has failed. `refused` is called instead (at once
   * when the queue is full, later when the wait expired). Returns `leave`, which withdraws a
   * waiting entry or releases a running one; `release` and `leave` may be called more than once.
   */
  enter(start: (release: () => void) => void, refused: (why: GateRefusal) => void = () => {}): () => void {
    let state: 'waiting' | 'running' | 'done' = 'waiting';
    const release = (): void => {
      const held = state === 'running';
      if (state === 'waiting') this.withdraw(entry);
      state = 'done';
      if (held) {
        this.inFlight--;
        this.startWaiting();
      }
    };
    const entry: Waiting = {
      run: () => {
        state = 'running';
        this.inFlight++;
        start(release);
      },
      refuse: (why) => {
        state = 'done';
        refused(why);
      },
      deadline: this.clock() + this.maxWaitMs,
      live: true,
    };
    if (this.inFlight < this.maxInFlight && this.live === 0) {
      entry.live = false;
      entry.run();
    } else if (this.live >= this.maxWaiting) {
      entry.live = false;
      entry.refuse('full');
    } else {
      this.queue.push(entry);
      this.live++;
      this.armExpiry();
    }
    return release;
  }

  /** Entries waiting for a slot. */
  waiting(): number {
    return this.live;
  }

  running(): number {
    return this.inFlight;
  }

  private withdraw(entry: Waiting): void {
    if (!entry.live) return;
    entry.live = false;
    this.live--;
  }

  /** The next live waiting entry, taken off the queue. */
  private takeNext(): Waiting | undefined {
    while (this.head < this.queue.length) {
      const e = this.queue[this.head]!;
      this.head++;
      if (e.live) {
        e.live = false;
        this.live--;
        return e;
      }
    }
    return undefined;
  }

  private startWaiting(): void {
    while (this.inFlight < this.maxInFlight) {
      const e = this.takeNext();
      if (!e) break;
      e.run();
    }
    this.compact();
  }

  /** Entries wait in arrival order with one bound, so the oldest live one expires first. */
  private armExpiry(): void {
    if (this.expiryTimer || this.maxWaitMs === Infinity) return;
    const next = this.oldestLive();
    if (!next) return;
    this.expiryTimer = setTimeout(() => this.expire(), Math.max(0, next.deadline - this.clock()));
    this.expiryTimer.unref();
  }

  private expire(): void {
    this.expiryTimer = undefined;
    const now = this.clock();
    for (let next = this.oldestLive(); next && next.deadline <= now; next = this.oldestLive()) {
      this.takeNext();
      next.refuse('expired');
    }
    this.compact();
    this.armExpiry();
  }

  private oldestLive(): Waiting | undefined {
    while (this.head < this.queue.length && !this.queue[this.head]!.live) this.head++;
    return this.queue[this.head];
  }

  private compact(): void {
    // Drop the consumed prefix now and then, not on every entry.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.live === 0 && this.expiryTimer) {
      clearTimeout(this.expiryTimer);
      this.expiryTimer = undefined;
    }
  }
}
