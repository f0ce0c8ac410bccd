import { EventEmitter } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { KeptLease } from './lease.js';
import type { ElectionView } from './election-view.js';
import type { MonotonicClock } from './clock.js';
import { DEPOSED_PREFIX, leaseHex } from './keys.js';

/** What a campaign shares with the other campaigns of its process (see Elector). */
export interface CampaignContext {
  client: Etcd3;
  lease: KeptLease;
  view: ElectionView;
  /** Resolves once an earlier candidacy in the same election has removed its key. */
  withdrawn(prefix: string): Promise<void>;
  /** Records a withdrawal in progress, so a new candidacy here queues behind the others. */
  withdrawing(prefix: string, done: Promise<void>): void;
  forget(campaign: Campaign): void;
  clock: MonotonicClock;
  /** How long a candidate that becomes first after a deposition waits before it leads (fencing-budget.ts). */
  takeoverWaitMs: number;
}

/**
 * Where this candidate's key stands. Transitions:
 *   idle -> creating (start, or a new lease was granted)
 *   creating -> placed (create-if-absent committed at `revision`) | idle (failed: retried)
 *   placed -> idle (the lease was lost, or the key vanished from the view)
 *   any -> stopped (stop)
 */
type Registration =
  | { kind: 'idle' }
  | { kind: 'creating'; key: string; leaseId: string; settled: Promise<void> }
  | { kind: 'placed'; key: string; leaseId: string; revision: bigint }
  | { kind: 'stopped' };

const RETRY_MS = 250;
const WITHDRAW_RETRY_MS = 500;

/**
 * One candidate in one etcd election: a key `<prefix><lease hex>` attached to the process's
 * shared lease; the key with the lowest create revision leads. The place in the queue comes
 * from the shared ElectionView (a watch), so keepalives cause no reads.
 *
 * Leadership is fenced locally: `isLeader` is true only while this candidate's key is first in
 * a view that has seen the key's creation AND the shared lease is confirmed (see KeptLease and
 * fencing-budget.ts). A candidate cut off from etcd steps down before its lease can expire on
 * the server and another candidate can be elected.
 *
 * Events: 'elected' and 'deposed' (reason) on every change of isLeader; 'change' on every
 * change of isLeader or heldFirstPlace.
 */
/** The events a Campaign emits, with their arguments. */
export interface CampaignEvents {
  change: [];
  elected: [];
  deposed: [reason: string];
}

export class Campaign extends EventEmitter<CampaignEvents> {
  private readonly throttled: ThrottledLog;
  private registration: Registration = { kind: 'idle' };
  private started = false;
  private first = false;
  private reportedFirstPlace = false;
  private leading = false;
  private retryTimer: NodeJS.Timeout | undefined;
  /**
   * Set when this candidate became first while a deposition marker was in the view: the deposed
   * holder may believe in its lease until its confirmation window closes, so leading waits until
   * this monotonic time (see fencing-budget.ts). Undefined: no wait.
   */
  private takeoverAt: number | undefined;
  private takeoverTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ctx: CampaignContext,
    readonly prefix: string,
    private value: string,
    private readonly log: Logger,
  ) {
    super();
    this.throttled = new ThrottledLog(log);
  }

  get isLeader(): boolean {
    return this.leading && this.ctx.lease.confirmed && this.registration.kind !== 'stopped' && !this.waitingForTakeover();
  }

  /** First in line after a deposition, waiting out the deposed leader's window (see startTakeover). */
  get takingOver(): boolean {
    return this.first && this.registration.kind !== 'stopped' && this.waitingForTakeover();
  }

  private waitingForTakeover(): boolean {
    return this.takeoverAt !== undefined && this.ctx.clock() < this.takeoverAt;
  }

  /**
   * True when the last known state of the election put this candidate first, even if the lease
   * is not confirmed right now: "fenced", as opposed to "someone else leads". While etcd is
   * unreachable nobody can tell a partition from a lost quorum; callers use this to keep
   * serving what needs no exclusive right (existing streams) while refusing what does.
   */
  get heldFirstPlace(): boolean {
    return this.first && this.registration.kind !== 'stopped';
  }

  start(): void {
    if (this.started || this.registration.kind === 'stopped') return;
    this.started = true;
    void this.ctx.withdrawn(this.prefix).then(() => this.register());
  }

  /** Changes the announced value (e.g. new addresses) without losing the place in the queue. */
  async proclaim(value: string): Promise<void> {
    this.value = value;
    const r = this.registration;
    const lease = this.ctx.lease.handle;
    if (r.kind === 'placed' && lease && this.ctx.lease.id === r.leaseId) await lease.put(r.key).value(value).exec();
  }

  /** The shared lease was (re-)granted: keys of an earlier lease are gone with it. */
  leaseGranted(): void {
    const r = this.registration;
    if (r.kind === 'placed' || r.kind === 'creating') {
      if (r.leaseId === this.ctx.lease.id) return;
      this.registration = { kind: 'idle' };
    }
    this.register();
  }

  /** etcd forgot the shared lease: our key is gone. A new grant follows (leaseGranted). */
  leaseLost(): void {
    if (this.registration.kind === 'stopped') return;
    this.registration = { kind: 'idle' };
    this.update('lease expired');
  }

  /** The view changed for our election, or the lease's confirmation did: re-derive our place. */
  refresh(): void {
    const r = this.registration;
    if (r.kind === 'placed' && this.ctx.view.revision >= r.revision && !this.ctx.view.has(r.key)) {
      // Deleted by hand, or expired with a lease we still think is ours: create it again.
      this.registration = { kind: 'idle' };
      this.update('candidate key disappeared');
      this.register();
      return;
    }
    this.update('another candidate leads');
  }

  private register(): void {
    if (!this.started || this.registration.kind !== 'idle') return;
    const lease = this.ctx.lease.handle;
    const leaseId = this.ctx.lease.id;
    if (!lease || !leaseId) return; // leaseGranted() calls again
    const key = `${this.prefix}${leaseHex(leaseId)}`;
    // Create only if absent: a retried put must not move us to the back of the queue.
    const settled = this.ctx.client
      .if(key, 'Create', '==', 0)
      .then(lease.put(key).value(this.value))
      .commit()
      .then(
        (res) => {
          const r = this.registration;
          if (r.kind !== 'creating' || r.key !== key) return;
          this.registration = { kind: 'placed', key, leaseId, revision: BigInt(res.header.revision) };
          this.throttled.clear('register');
          this.refresh();
        },
        (err: unknown) => {
          const r = this.registration;
          if (r.kind !== 'creating' || r.key !== key) return;
          this.registration = { kind: 'idle' };
          this.throttled.warn('register', { err: errorMessage(err), prefix: this.prefix }, 'cannot register the candidacy; retrying');
          clearTimeout(this.retryTimer);
          this.retryTimer = setTimeout(() => this.register(), RETRY_MS);
        },
      );
    this.registration = { kind: 'creating', key, leaseId, settled };
  }

  private update(reason: string): void {
    const r = this.registration;
    const wasFirst = this.first;
    if (r.kind === 'placed') {
      if (this.ctx.view.revision >= r.revision) this.first = this.ctx.view.leader(this.prefix) === r.key;
    } else {
      this.first = false;
    }
    if (this.first && !wasFirst) this.startTakeover();
    if (!this.first) this.endTakeover();
    const now = this.first && this.ctx.lease.confirmed && !this.waitingForTakeover();
    const place = this.heldFirstPlace;
    if (place !== this.reportedFirstPlace) {
      this.reportedFirstPlace = place;
      if (now === this.leading) this.emit('change');
    }
    if (now === this.leading) return;
    this.leading = now;
    if (now) {
      this.log.info({ prefix: this.prefix }, 'elected');
      this.emit('elected');
    } else {
      const why = !this.first ? reason : this.waitingForTakeover() ? 'waiting out a deposed leader' : 'lease not confirmed by etcd';
      this.log.info({ prefix: this.prefix, reason: why }, 'deposed');
      this.emit('deposed', why);
    }
    this.emit('change');
  }

  /**
   * First place came while peers had just revoked some lease (a marker is in the view): that
   * lease's holder, if alive and cut off, is fenced only once its window has closed.
   */
  private startTakeover(): void {
    this.endTakeover();
    if (this.ctx.view.candidateCount(DEPOSED_PREFIX) === 0) return;
    const waitMs = this.ctx.takeoverWaitMs;
    this.takeoverAt = this.ctx.clock() + waitMs;
    this.log.info({ prefix: this.prefix, waitMs }, 'first in line after a deposition; waiting out the deposed leader');
    this.armTakeoverTimer(waitMs);
  }

  private armTakeoverTimer(waitMs: number): void {
    this.takeoverTimer = setTimeout(() => {
      // Timers may fire a millisecond before the clock agrees (they round).
      if (this.waitingForTakeover()) this.armTakeoverTimer(this.takeoverAt! - this.ctx.clock());
      else this.update('takeover wait over');
    }, waitMs + 1);
  }

  private endTakeover(): void {
    clearTimeout(this.takeoverTimer);
    this.takeoverTimer = undefined;
    if (!this.first) this.takeoverAt = undefined;
  }

  /**
   * Steps down at once and deletes the key, so the next candidate takes over within
   * milliseconds. Resolves after the first delete attempt; if etcd did not answer, deleting goes
   * on in the background until it succeeds or the lease is gone (the key goes with it).
   */
  async stop(): Promise<void> {
    const r = this.registration;
    if (r.kind === 'stopped') return;
    this.registration = { kind: 'stopped' };
    clearTimeout(this.retryTimer);
    clearTimeout(this.takeoverTimer);
    this.first = false;
    if (this.leading) {
      this.leading = false;
      this.emit('deposed', 'stopped');
      this.emit('change');
    }
    this.ctx.forget(this);
    if (r.kind === 'idle') return;
    // A create still in flight could land after our delete and leave a candidate nobody runs.
    const firstAttempt = (r.kind === 'creating' ? r.settled : Promise.resolve()).then(() => this.deleteKey(r.key, r.leaseId));
    this.ctx.withdrawing(this.prefix, this.keepDeleting(firstAttempt, r.key, r.leaseId));
    await firstAttempt;
  }

  private async deleteKey(key: string, leaseId: string): Promise<boolean> {
    try {
      await this.ctx.client.delete().key(key).exec();
      return true;
    } catch (err) {
      this.throttled.warn('withdraw', { err: errorMessage(err), key }, 'cannot delete the candidate key; retrying');
      return this.ctx.lease.id !== leaseId;
    }
  }

  private async keepDeleting(attempt: Promise<boolean>, key: string, leaseId: string): Promise<void> {
    while (!(await attempt)) {
      await new Promise((r) => setTimeout(r, WITHDRAW_RETRY_MS));
      if (this.ctx.lease.id !== leaseId || this.ctx.lease.handle === undefined) return;
      attempt = this.deleteKey(key, leaseId);
    }
  }
}
