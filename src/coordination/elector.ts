import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { monotonicNow, type MonotonicClock } from './clock.js';
import { Campaign, type CampaignContext } from './election.js';
import { ElectionView } from './election-view.js';
import { KeptLease } from './lease.js';
import { requireFencingBudget } from './fencing-budget.js';

export interface ElectorOptions {
  ttlSeconds: number;
  log: Logger;
  clock?: MonotonicClock;
}

/**
 * All of one process's candidacies (master and every transcoder election) on one lease and one
 * watch. Idle cost for etcd: one keepalive per keepalive interval and a quiet watch stream,
 * whatever the number of elections; no reads. The lease carries only candidate keys (presence
 * keeps its own, see presence.ts), so it is revoked when the process stops campaigning for good.
 */
export class Elector {
  readonly lease: KeptLease;
  private readonly view: ElectionView;
  private readonly campaigns = new Set<Campaign>();
  private readonly withdrawals = new Map<string, Promise<void>>();
  private readonly context: CampaignContext;
  private started = false;

  constructor(
    private readonly client: Etcd3,
    private readonly opts: ElectorOptions,
  ) {
    const budget = requireFencingBudget(opts.ttlSeconds);
    const clock = opts.clock ?? monotonicNow;
    this.lease = new KeptLease(client, budget, opts.log.child({ component: 'election-lease' }), clock);
    this.view = new ElectionView(client, opts.log.child({ component: 'election-view' }));
    this.context = {
      client,
      lease: this.lease,
      view: this.view,
      withdrawn: (prefix) => this.withdrawals.get(prefix) ?? Promise.resolve(),
      withdrawing: (prefix, done) => {
        const settled = done.catch(() => {}).finally(() => {
          if (this.withdrawals.get(prefix) === settled) this.withdrawals.delete(prefix);
        });
        this.withdrawals.set(prefix, settled);
      },
      forget: (campaign) => this.campaigns.delete(campaign),
      clock,
      takeoverWaitMs: budget.takeoverWaitMs,
    };
    this.lease.on('granted', () => this.each((c) => c.leaseGranted()));
    this.lease.on('lost', () => this.each((c) => c.leaseLost()));
    this.lease.on('confirmed', () => this.each((c) => c.refresh()));
    this.lease.on('unconfirmed', () => this.each((c) => c.refresh()));
    this.view.onChange((elections) => this.each((c) => elections.has(c.prefix) && c.refresh()));
  }

  get ttlSeconds(): number {
    return this.opts.ttlSeconds;
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.lease.start();
    this.view.start();
  }

  /** A new candidacy in the election under `prefix` (it campaigns once started). */
  campaign(prefix: string, value: string, log: Logger = this.opts.log): Campaign {
    const campaign = new Campaign(this.context, prefix, value, log);
    this.campaigns.add(campaign);
    return campaign;
  }

  private each(fn: (c: Campaign) => void): void {
    for (const c of [...this.campaigns]) fn(c);
  }

  /** Steps down everywhere and revokes the lease: every candidate key of this process vanishes at once. */
  async stop(): Promise<void> {
    await Promise.all([...this.campaigns].map((c) => c.stop()));
    await this.view.stop();
    await this.lease.stop();
  }
}
