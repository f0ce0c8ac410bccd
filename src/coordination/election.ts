import { EventEmitter } from 'node:events';
import type { Etcd3, Watcher } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { KeptLease } from './lease.js';

export interface CampaignOptions {
  ttlSeconds: number;
  log: Logger;
}

/**
 * One candidate in an etcd election (the lowest create revision under the prefix leads).
 *
 * Leadership is fenced locally: `isLeader` is true only while this candidate's key is first
 * AND its lease is confirmed (see KeptLease). A candidate cut off from etcd therefore steps
 * down within TTL/2, before its lease can expire on the server and another candidate can be
 * elected: two leaders never act at the same time.
 *
 * Events: 'elected' and 'deposed' (reason) on every change of isLeader; 'change' on every
 * change of isLeader or heldFirstPlace.
 */
export class Campaign extends EventEmitter {
  private readonly lease: KeptLease;
  private readonly throttled: ThrottledLog;
  private watcher: Watcher | undefined;
  private ownKey: string | undefined;
  private first = false;
  private reportedFirstPlace = false;
  private leading = false;
  private stopped = false;
  private evaluating: Promise<void> | undefined;
  private evaluateAgain = false;

  constructor(
    private readonly client: Etcd3,
    private readonly prefix: string,
    private value: string,
    private readonly opts: CampaignOptions,
  ) {
    super();
    this.throttled = new ThrottledLog(opts.log);
    this.lease = new KeptLease(client, opts.ttlSeconds, opts.log);
    this.lease.on('granted', () => this.requestEvaluation());
    this.lease.on('confirmed', () => this.requestEvaluation());
    this.lease.on('unconfirmed', () => this.update('lease not confirmed by etcd'));
    this.lease.on('lost', () => {
      this.ownKey = undefined;
      this.first = false;
      this.update('lease expired');
    });
  }

  get isLeader(): boolean {
    return this.leading && this.lease.confirmed && !this.stopped;
  }

  /**
   * True when the last answer etcd gave put this candidate first, even if the lease is not
   * confirmed right now: "fenced", as opposed to "someone else leads". While etcd is
   * unreachable nobody can tell a partition from a lost quorum; callers use this to keep
   * serving what needs no exclusive right (existing streams) while refusing what does.
   */
  get heldFirstPlace(): boolean {
    return this.first && !this.stopped;
  }

  start(): void {
    this.lease.start();
    void this.watch();
  }

  /** Changes the announced value (e.g. new addresses) without losing the place in the queue. */
  async proclaim(value: string): Promise<void> {
    this.value = value;
    if (this.ownKey && this.lease.handle) await this.lease.handle.put(this.ownKey).value(value).exec();
  }

  private async watch(): Promise<void> {
    while (!this.stopped && !this.watcher) {
      try {
        const watcher = await this.client.watch().prefix(this.prefix).create();
        if (this.stopped) {
          await watcher.cancel();
          return;
        }
        watcher.on('data', () => this.requestEvaluation());
        watcher.on('connected', () => this.requestEvaluation());
        watcher.on('disconnected', () => this.requestEvaluation());
        watcher.on('error', (err) => {
          // Compaction or a cancelled watch: start a new one and re-read.
          this.opts.log.warn({ err: errorMessage(err), prefix: this.prefix }, 'election watch failed; restarting');
          this.watcher = undefined;
          void this.watch();
        });
        this.watcher = watcher;
        this.requestEvaluation();
      } catch (err) {
        this.throttled.warn('watch', { err: errorMessage(err) }, 'cannot watch election; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private requestEvaluation(): void {
    if (this.stopped) return;
    if (this.evaluating) {
      this.evaluateAgain = true;
      return;
    }
    this.evaluating = this.evaluate().finally(() => {
      this.evaluating = undefined;
      if (this.evaluateAgain) {
        this.evaluateAgain = false;
        this.requestEvaluation();
      }
    });
  }

  /** Makes sure our key exists under the current lease, then checks whether it is first. */
  private async evaluate(): Promise<void> {
    const lease = this.lease.handle;
    const leaseId = this.lease.id;
    if (!lease || !leaseId) return;
    try {
      const key = `${this.prefix}${BigInt(leaseId).toString(16)}`;
      if (this.ownKey !== key) {
        // Create only if absent: a retried put must not move us to the back of the queue.
        await this.client
          .if(key, 'Create', '==', 0)
          .then(lease.put(key).value(this.value))
          .commit();
        this.ownKey = key;
      }
      const res = await this.client.getAll().prefix(this.prefix).sort('Create', 'Ascend').limit(1).exec();
      const leader = res.kvs[0]?.key.toString();
      if (leader === undefined || (leader !== key && !(await this.keyExists(key)))) {
        // Our key vanished (deleted by hand, or the lease expired meanwhile): recreate it.
        this.ownKey = undefined;
        this.first = false;
        this.update('candidate key disappeared');
        this.requestEvaluationLater();
        return;
      }
      this.first = leader === key;
      this.throttled.clear('evaluate');
      this.update(this.first ? 'elected' : `${leader} leads`);
    } catch (err) {
      this.throttled.warn('evaluate', { err: errorMessage(err), prefix: this.prefix }, 'election check failed');
      this.requestEvaluationLater();
    }
  }

  private async keyExists(key: string): Promise<boolean> {
    return (await this.client.get(key).exec()).kvs.length > 0;
  }

  private requestEvaluationLater(): void {
    setTimeout(() => this.requestEvaluation(), 250).unref();
  }

  private update(reason: string): void {
    const now = this.first && this.lease.confirmed && !this.stopped;
    const place = this.heldFirstPlace;
    if (place !== this.reportedFirstPlace) {
      this.reportedFirstPlace = place;
      if (now === this.leading) this.emit('change');
    }
    if (now === this.leading) return;
    this.leading = now;
    if (now) {
      this.opts.log.info({ prefix: this.prefix }, 'elected');
      this.emit('elected');
    } else {
      this.opts.log.info({ prefix: this.prefix, reason }, 'deposed');
      this.emit('deposed', reason);
    }
    this.emit('change');
  }

  /** Steps down at once and removes the candidacy, so the next candidate takes over within milliseconds. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.first = false;
    if (this.leading) {
      this.leading = false;
      this.emit('deposed', 'stopped');
      this.emit('change');
    }
    const watcher = this.watcher;
    this.watcher = undefined;
    await watcher?.cancel().catch(() => {});
    if (this.ownKey) await this.client.delete().key(this.ownKey).exec().catch(() => {});
    await this.lease.stop();
  }
}
