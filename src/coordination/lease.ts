import { EventEmitter } from 'node:events';
import { EtcdLeaseInvalidError, type Etcd3, type Lease } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { monotonicNow, type MonotonicClock } from './clock.js';
import type { FencingBudget } from './fencing-budget.js';

/**
 * An etcd lease this process keeps alive by itself, with a local notion of "confirmed".
 *
 * The etcd3 client reports a lost lease only after 2 x TTL without a successful keepalive,
 * about one TTL after another node could already have taken over. Here every keepalive records
 * the time it was *sent*; the server's expiry is at least that time + TTL, so as long as a
 * confirmation sent less than the confirmation window ago exists, the lease is certainly still
 * alive on the server, with enough of the TTL left for fencing to take effect (see
 * fencing-budget.ts). All of it is measured on a monotonic clock: a wall-clock step must not
 * move the window.
 *
 * Events: 'granted' (leaseId) after every (re-)grant, 'confirmed' after each successful
 * keepalive, 'unconfirmed' when the confirmation window closes, 'lost' when etcd says the
 * lease is gone (it is then re-granted automatically).
 */
/** The events a KeptLease emits, with their arguments. */
export interface KeptLeaseEvents {
  granted: [leaseId: string];
  confirmed: [];
  unconfirmed: [];
  lost: [];
}

export class KeptLease extends EventEmitter<KeptLeaseEvents> {
  private lease: Lease | undefined;
  private leaseId: string | undefined;
  /** Monotonic time the newest answered keepalive was sent; undefined when none counts. */
  private confirmedSentAt: number | undefined;
  private readonly budget: FencingBudget;
  private timer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly throttled: ThrottledLog;

  /** `budget`: the window and keepalive pace (fencing-budget.ts: elections and presence differ). */
  constructor(
    private readonly client: Etcd3,
    budget: FencingBudget,
    private readonly log: Logger,
    private readonly clock: MonotonicClock = monotonicNow,
  ) {
    super();
    this.throttled = new ThrottledLog(log);
    this.budget = budget;
    this.ttlSeconds = budget.ttlMs / 1000;
  }

  readonly ttlSeconds: number;

  /** How often keepalives are sent: several per window, so one slow answer does not close it. */
  get intervalMs(): number {
    return this.budget.keepaliveIntervalMs;
  }

  /** The window after a keepalive was sent during which the lease is known to be alive. */
  get confirmationWindowMs(): number {
    return this.budget.confirmationWindowMs;
  }

  get id(): string | undefined {
    return this.leaseId;
  }

  /** The lease handle to attach keys to, once granted. */
  get handle(): Lease | undefined {
    return this.lease;
  }

  /** True while a keepalive sent less than the confirmation window ago was answered by etcd. */
  get confirmed(): boolean {
    return !this.stopped && this.leaseId !== undefined && this.windowRemainingMs() > 0;
  }

  private windowRemainingMs(): number {
    if (this.confirmedSentAt === undefined) return 0;
    return this.confirmedSentAt + this.confirmationWindowMs - this.clock();
  }

  start(): void {
    void this.tick();
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delayMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.leaseId === undefined || this.lease === undefined) await this.grant();
      else await this.keepalive();
      this.throttled.clear('lease');
      this.schedule(this.intervalMs);
    } catch (err) {
      this.throttled.warn('lease', { err: errorMessage(err), ttl: this.ttlSeconds }, 'etcd lease keepalive failed');
      // Retry quickly while the window is still open, then settle to the normal pace.
      this.schedule(Math.min(this.intervalMs, 250));
    }
  }

  private async grant(): Promise<void> {
    const sentAt = this.clock();
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false });
    // A failed grant must not leave a half-made lease behind, nor an unhandled 'lost' event.
    lease.on('lost', () => {});
    let id: string;
    try {
      id = await lease.grant();
    } catch (err) {
      lease.release();
      throw err;
    }
    if (this.stopped) {
      await lease.revoke().catch(() => {});
      return;
    }
    this.lease = lease;
    this.leaseId = id;
    this.markConfirmed(sentAt);
    this.log.debug({ lease: id, ttl: this.ttlSeconds }, 'lease granted');
    this.emit('granted', id);
  }

  private async keepalive(): Promise<void> {
    const sentAt = this.clock();
    const lease = this.lease!;
    try {
      // gRPC wants an epoch deadline; it turns it into a timer at once, so a step later does not matter.
      await lease.keepaliveOnce({ deadline: Date.now() + Math.max(500, this.intervalMs) });
    } catch (err) {
      if (!(err instanceof EtcdLeaseInvalidError) || lease !== this.lease) throw err;
      // etcd forgot the lease (expired during an outage): keys attached to it are gone.
      this.log.warn({ lease: this.leaseId }, 'etcd lease expired; granting a new one');
      this.drop();
      this.emit('lost');
      await this.grant();
      return;
    }
    if (this.stopped || lease !== this.lease) return;
    this.markConfirmed(sentAt);
  }

  private markConfirmed(sentAt: number): void {
    this.confirmedSentAt = sentAt;
    this.emit('confirmed');
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.onWindowClosed(), Math.max(0, this.windowRemainingMs()) + 1);
  }

  private onWindowClosed(): void {
    if (this.stopped) return;
    const remaining = this.windowRemainingMs();
    if (remaining > 0) {
      // Timers may fire a millisecond before the clock agrees (they round): check again rather
      // than never reporting the closed window.
      this.watchdog = setTimeout(() => this.onWindowClosed(), remaining + 1);
      return;
    }
    this.emit('unconfirmed');
  }

  private drop(): void {
    this.lease?.release();
    this.lease = undefined;
    this.leaseId = undefined;
    this.confirmedSentAt = undefined;
    clearTimeout(this.watchdog);
  }

  /** Stops keepalives and revokes the lease, so keys attached to it vanish at once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.watchdog);
    const lease = this.lease;
    this.lease = undefined;
    this.leaseId = undefined;
    if (lease) {
      await lease.revoke({ deadline: Date.now() + 1000 }).catch((err: unknown) => {
        this.log.debug({ err: errorMessage(err) }, 'lease revoke failed; it will expire');
      });
    }
  }
}
