import type { Etcd3 } from 'etcd3';
import type { Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { KeptLease } from './lease.js';
import { DEPOSED_PREFIX, SUSPICIONS_PREFIX, candidateLeaseHex, leaseHex, leaseIdOfHex } from './keys.js';
import { mayDepose } from './deposition-quorum.js';
import { MAX_LEASE_TTL_SECONDS } from './fencing-budget.js';

/**
 * How long a marker outlives its revocation. A candidate that never sees it (its view re-read
 * after the marker was gone) comes first at least this long after the revocation, by which time
 * the deposed holder fenced itself (its takeover wait is 1.1 s): so anything above that is safe,
 * and every election after it (a planned stop, say) waits for nothing.
 */
const MARKER_KEPT_MS = 3000;
/** Pause before deleting a marker again after etcd did not answer. */
const MARKER_RETRY_MS = 1000;

export interface DepositionOptions {
  nodeName: string;
  /** This process's election lease: suspicions and markers vanish with it. */
  lease: KeptLease;
  log: Logger;
}

/** What a suspicion led to. */
export type SuspicionOutcome = 'waiting for a majority' | 'deposed' | 'already gone' | 'no lease';

/**
 * Peers revoking a dead leader's lease, so that a new leader is elected in about a second
 * instead of after the lease's TTL (and not after a second TTL when the dead node also held
 * etcd's raft leadership, whose change extends every lease).
 *
 * Each node that sees the leader dead writes `suspicions/<lease>/<node>` under its own election
 * lease, then counts; the one that completes a majority (deposition-quorum.ts) writes
 * `election/deposed/<lease>` in a transaction that requires the leader's key to still exist,
 * and revokes the lease. Revocation is linearizable: the holder's keepalives fail from then on,
 * so the last keepalive it saw answered was sent before the revocation. The next candidate sees
 * the marker and waits out the holder's confirmation window (Campaign.startTakeover), after
 * which a holder that is alive but cut off has fenced itself.
 */
export class Deposition {
  private written: string | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly opts: DepositionOptions,
  ) {}

  /**
   * This node sees the leader holding `candidateKey` (on `leaderNode`) dead. Idempotent: called
   * again at every failed probe, it re-counts, so the last node to agree completes the majority.
   */
  async suspect(candidateKey: string, leaderNode: string, liveNodes: ReadonlySet<string>): Promise<SuspicionOutcome> {
    const lease = this.opts.lease.handle;
    if (!lease || !this.opts.lease.confirmed) return 'no lease';
    const hex = candidateLeaseHex(candidateKey);
    const own = `${SUSPICIONS_PREFIX}${hex}/${this.opts.nodeName}`;
    if (this.written !== own) {
      await this.withdraw();
      await lease.put(own).value(JSON.stringify({ leader: leaderNode })).exec();
      this.written = own;
      this.opts.log.warn({ leader: leaderNode, lease: hex }, 'the leader looks dead from here');
    }
    const keys = await this.client.getAll().prefix(`${SUSPICIONS_PREFIX}${hex}/`).keys();
    const suspecters = keys.map((k) => k.slice(k.lastIndexOf('/') + 1));
    if (!mayDepose(suspecters, liveNodes, leaderNode)) return 'waiting for a majority';
    return this.depose(candidateKey, hex, leaderNode, suspecters);
  }

  private async depose(candidateKey: string, hex: string, leaderNode: string, suspecters: string[]): Promise<SuspicionOutcome> {
    const lease = this.opts.lease.handle;
    if (!lease) return 'no lease';
    const marker = `${DEPOSED_PREFIX}${hex}`;
    // The marker lands only while the leader's key exists, so it always precedes the key's deletion.
    const txn = await this.client
      .if(candidateKey, 'Version', '>', 0)
      .then(lease.put(marker).value(JSON.stringify({ by: this.opts.nodeName, leader: leaderNode, suspecters })))
      .commit();
    if (!txn.succeeded) return 'already gone';
    const id = leaseIdOfHex(hex);
    let keepMs = MARKER_KEPT_MS;
    try {
      await this.client.leaseClient.leaseRevoke({ ID: id });
    } catch (err) {
      // Expired meanwhile or revoked by another deposer, or not answered: then the revocation
      // may still be applied later, and its successor must still find the marker then.
      keepMs = await this.markerLifeAfterFailedRevoke(id);
      this.opts.log.debug({ err: errorMessage(err), lease: hex, keepMs }, 'lease revoke answered with an error');
    }
    this.opts.log.warn({ leader: leaderNode, lease: hex, suspecters }, 'deposed a dead leader: its lease is revoked');
    this.removeMarkerLater(marker, keepMs);
    return 'deposed';
  }

  /**
   * This process's predecessor on this node (a radiod killed or crashed before it could revoke
   * its lease) still holds candidacies that would last a whole TTL. Revoked like a deposition,
   * marker first, so that whoever leads next waits out the window of a predecessor that might,
   * misconfigured, still be running.
   */
  async revokePredecessor(leaseId: string): Promise<boolean> {
    const lease = this.opts.lease.handle;
    const own = this.opts.lease.id;
    if (!lease || own === leaseId) return false;
    const hex = leaseHex(leaseId);
    // After a clean stop the lease is gone already: no marker, so no election waits for nothing.
    const alive = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
    if (Number(alive.TTL) <= 0) return false;
    const marker = `${DEPOSED_PREFIX}${hex}`;
    await lease.put(marker).value(JSON.stringify({ by: this.opts.nodeName, predecessor: true })).exec();
    try {
      await this.client.leaseClient.leaseRevoke({ ID: leaseId });
    } catch (err) {
      // Expired meanwhile, or not answered (then it may still be applied later: see depose).
      const keepMs = await this.markerLifeAfterFailedRevoke(leaseId);
      this.opts.log.debug({ err: errorMessage(err), lease: hex, keepMs }, 'predecessor lease not revoked');
      this.removeMarkerLater(marker, keepMs);
      return false;
    }
    this.opts.log.warn({ lease: hex }, "revoked the lease of this node's previous radiod");
    this.removeMarkerLater(marker, MARKER_KEPT_MS);
    return true;
  }

  /**
   * A lease still alive may yet be revoked by the unanswered request: keep the marker until the
   * lease has expired, plus the usual margin. Gone: it went at some moment before now. Unknown:
   * as long as any lease can live.
   */
  private async markerLifeAfterFailedRevoke(id: string): Promise<number> {
    try {
      const left = Number((await this.client.leaseClient.leaseTimeToLive({ ID: id })).TTL);
      return left > 0 ? left * 1000 + MARKER_KEPT_MS : MARKER_KEPT_MS;
    } catch {
      return MAX_LEASE_TTL_SECONDS * 1000 + MARKER_KEPT_MS;
    }
  }

  /**
   * The marker is only needed until the next leader has seen it. It lives on this process's
   * election lease, which may last for months: a delete that failed is tried again, or every
   * later election (a planned stop, say) would wait out a takeover.
   */
  private removeMarkerLater(marker: string, delayMs: number): void {
    const attempt = () => {
      this.client.delete().key(marker).exec().catch((err: unknown) => {
        this.opts.log.debug({ err: errorMessage(err), marker }, 'cannot delete the deposition marker yet');
        setTimeout(attempt, MARKER_RETRY_MS).unref();
      });
    };
    setTimeout(attempt, delayMs).unref();
  }

  /**
   * The leader answers again, or another leads: take the suspicion back. A failed delete is
   * tried again at the next call (every healthy probe): the suspicion lives on this process's
   * election lease, so left behind it would count towards deposing a healthy leader the next
   * time one other node has a blip.
   */
  async withdraw(): Promise<void> {
    const key = this.written;
    if (key === undefined) return;
    try {
      await this.client.delete().key(key).exec();
      if (this.written === key) this.written = undefined;
    } catch (err) {
      this.opts.log.debug({ err: errorMessage(err) }, 'cannot delete the suspicion yet; tried again at the next healthy probe');
    }
  }
}
