import type { Etcd3 } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { KeptLease } from './lease.js';
import { presenceBudget } from './fencing-budget.js';
import { nodeKey } from './keys.js';
import type { NodeStatus } from './node-status.js';
import { publishDue } from './status-publish-policy.js';

/**
 * This node's status in etcd, attached to a lease: if the process dies, the key expires with
 * the lease and every balancer stops sending listeners here within one TTL.
 */
export class Presence {
  private readonly lease: KeptLease;
  private readonly throttled: ThrottledLog;
  private latest: NodeStatus | undefined;
  /** `at` is on the monotonic clock: a wall clock stepped back would hold writes back as long. */
  private written: { status: NodeStatus; at: number; leaseId: string } | undefined;
  private writing = false;
  private dirty = false;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly name: string,
    private readonly opts: { ttlSeconds: number; log: Logger },
  ) {
    this.throttled = new ThrottledLog(opts.log);
    this.lease = new KeptLease(client, presenceBudget(opts.ttlSeconds), opts.log);
    // A new lease means the old key is gone (or going): write the status again at once.
    this.lease.on('granted', () => this.flush());
  }

  start(): void {
    this.lease.start();
  }

  /**
   * Records the latest status and writes it when the publish policy says so (health at once,
   * load and detail rate-limited; see status-publish-policy.ts). It is called on every poll, so
   * a deferred change goes out at the first poll after it is due; writes never pile up, only
   * the newest counts.
   */
  publish(status: NodeStatus): void {
    this.latest = status;
    const w = this.written;
    const current = w !== undefined && w.leaseId === this.lease.id ? w : undefined;
    if (publishDue(current, status, performance.now())) this.flush();
  }

  private flush(): void {
    if (this.stopped || !this.latest) return;
    if (this.writing) {
      this.dirty = true;
      return;
    }
    const lease = this.lease.handle;
    const leaseId = this.lease.id;
    if (!lease || !leaseId) return;
    this.writing = true;
    this.dirty = false;
    const status = this.latest;
    lease
      .put(nodeKey(this.name))
      .value(JSON.stringify(status))
      .exec()
      .then(
        () => {
          this.written = { status, at: performance.now(), leaseId };
          this.throttled.clear('publish');
        },
        (err: unknown) => this.throttled.warn('publish', { err: errorMessage(err) }, 'cannot publish node status'),
      )
      .finally(() => {
        this.writing = false;
        if (this.dirty) this.flush();
      });
  }

  /** Revokes the lease: the node disappears from every view at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.lease.stop();
  }
}
