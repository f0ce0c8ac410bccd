/**
 * Bounds how many connections to one server are being opened at once, the rest waiting in
 * arrival order. Icecast 2.4.4 listens with a backlog of 5: in a flash crowd the connects
 * beyond it are dropped, and the kernel retries each after 1, 3, 7, 15 ... s, so a few
 * unlucky listeners wait a minute or get a 502. Queued here, each waits only for the
 * connections ahead of it.
 */
export class ConnectGate {
  private inFlight = 0;
  private queue: (() => void)[] = [];
  private head = 0;

  constructor(readonly maxInFlight: number) {}

  /**
   * Runs `start` as soon as a slot is free (now, if one is). `start` gets `release`, to call
   * once the connection is established or has failed. Returns `leave`, which withdraws a
   * waiting entry or releases a running one; both `release` and `leave` may be called more
   * than once.
   */
  enter(start: (release: () => void) => void): () => void {
    let state: 'waiting' | 'running' | 'done' = 'waiting';
    const release = (): void => {
      const held = state === 'running';
      state = 'done';
      if (held) {
        this.inFlight--;
        this.startWaiting();
      }
    };
    const run = (): void => {
      if (state !== 'waiting') return;
      state = 'running';
      this.inFlight++;
      start(release);
    };
    if (this.inFlight < this.maxInFlight && this.waiting() === 0) run();
    else this.queue.push(run);
    return release;
  }

  /** Entries waiting for a slot (withdrawn ones included until their turn comes). */
  waiting(): number {
    return this.queue.length - this.head;
  }

  running(): number {
    return this.inFlight;
  }

  private startWaiting(): void {
    while (this.inFlight < this.maxInFlight && this.head < this.queue.length) {
      const run = this.queue[this.head]!;
      this.head++;
      run();
    }
    // Drop the consumed prefix now and then, not on every entry.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
