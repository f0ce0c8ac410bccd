import { X509Certificate } from 'node:crypto';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import type { ClusterState } from '../../coordination/cluster-state.js';
import { parseStoredBackoff, type StoredBackoff, type StoredCertificate } from '../../coordination/acme.js';
import { ACME_BACKOFF_KEY, ACME_CERTIFICATE_KEY, ACME_ELECTION_PREFIX } from '../../coordination/keys.js';
import { checkCertificate, checkNamesZone } from './certificate.js';
import type { Campaign } from '../../coordination/election.js';
import type { Elector } from '../../coordination/elector.js';
import { orderCertificate } from './acme-order.js';
import { decideOrder, type HeldCertificate } from './renewal.js';

export interface AcmeOrdererOptions {
  directory: string;
  email?: string;
  domain: string;
  nodeName: string;
  client: Etcd3;
  elector: Elector;
  view: { current(): ClusterState; onChange(listener: (state: ClusterState) => void): () => void };
  log: Logger;
  metrics: Metrics;
  /** See AcmeOrderContext.propagationMs. 2 s. */
  propagationMs?: number;
  /** First retry wait after a failed order (renewal.ts). */
  retryFirstMs?: number;
}

/**
 * Where this node stands in ordering the cluster's certificate. Transitions:
 *   following -> waiting | ordering   (elected: decideOrder)
 *   waiting -> ordering               (the renewal or retry time came)
 *   waiting -> waiting                (the stored certificate changed: decide again)
 *   ordering -> waiting               (the order ended, stored or failed; a failure counts for the backoff)
 *   waiting | ordering -> following   (no longer first in the election: an order in flight stops at its next step)
 *   any -> stopped                    (stop)
 */
type OrdererState =
  | { kind: 'following' }
  | { kind: 'waiting'; timer: NodeJS.Timeout; at: number }
  | { kind: 'ordering'; attempt: number }
  | { kind: 'stopped' };

/** Longest single timer: node's limit is 2^31 - 1 ms, a renewal may be two months away. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A view that has not shown our own store after this long shows something newer instead. */
const OWN_STORE_TRUST_MS = 30_000;

class Deposed extends Error {}

/**
 * A stored certificate's validity; undefined when the front doors would refuse it (corrupt,
 * a foreign key, expired, a leaf for other names: certificate.ts), so that a good one is ordered in its place.
 */
function validity(stored: StoredCertificate, domain: string): HeldCertificate | undefined {
  try {
    const { notAfter } = checkCertificate(stored.cert, stored.key, `etcd key ${ACME_CERTIFICATE_KEY}`);
    checkNamesZone(stored.cert, domain, `etcd key ${ACME_CERTIFICATE_KEY}`);
    return { notBefore: new Date(new X509Certificate(stored.cert).validFrom).getTime(), notAfter: notAfter.getTime() };
  } catch {
    return undefined;
  }
}

/**
 * One node of the cluster, elected like the master (its own election under ACME_ELECTION_PREFIX,
 * on the elector's lease), orders the certificate for DOMAIN and *.DOMAIN and renews it; every
 * other node only waits for it in etcd. So 50 nodes starting at once make one order, and an
 * orderer that dies mid-order leaves the election (its lease expires, with its challenge keys)
 * to a node that starts the order again with the same account.
 */
/** The backoff is at its cap long before this; the schema refuses more. */
const MAX_STORED_FAILURES = 1000;

export class AcmeOrderer {
  private state: OrdererState = { kind: 'following' };
  private readonly campaign: Campaign;
  private failures = 0;
  private lastFailureAt: number | undefined;
  private attempts = 0;
  private heldFrom: { stored: StoredCertificate; held: HeldCertificate | undefined } | undefined;
  /** What this node stored last, until the view shows it (at most OWN_STORE_TRUST_MS). */
  private ownStored: { stored: StoredCertificate; held: HeldCertificate | undefined; until: number } | undefined;
  private readonly unsubscribe: () => void;

  constructor(private readonly opts: AcmeOrdererOptions) {
    this.campaign = opts.elector.campaign(ACME_ELECTION_PREFIX, JSON.stringify({ name: opts.nodeName }), opts.log);
    // The cluster's backoff first: an orderer that takes over must not order sooner than the
    // one before it would have.
    this.campaign.on('elected', () => void this.loadBackoff().then(() => this.decide()));
    // An order needs no fencing as strict as a master's: a moment without a confirmed lease (a
    // slow keepalive) does not abandon it; losing first place (the lease is gone) does. Two
    // orders at once cost the CA one more order; the store is a transaction (acme-order.ts).
    this.campaign.on('change', () => this.campaign.heldFirstPlace || this.follow('another node leads'));
    this.unsubscribe = opts.view.onChange(() => {
      if (this.state.kind === 'waiting') this.decide();
    });
  }

  start(): void {
    this.campaign.start();
  }

  get stateKind(): OrdererState['kind'] {
    return this.state.kind;
  }

  async stop(): Promise<void> {
    this.leave();
    this.state = { kind: 'stopped' };
    this.unsubscribe();
    await this.campaign.stop();
  }

  private leave(): void {
    if (this.state.kind === 'waiting') clearTimeout(this.state.timer);
  }

  private follow(reason: string): void {
    if (this.state.kind === 'stopped' || this.state.kind === 'following') return;
    this.opts.log.info({ reason }, 'no longer the ACME orderer');
    this.leave();
    this.state = { kind: 'following' };
  }

  /**
   * The validity of the certificate in the view, if it is for our domain and usable. Right after
   * this node stored one, until the view shows it, the stored one counts (else the old one in
   * the view would look due and be ordered again); a view that shows something else for long
   * holds a newer value (another orderer's, or an operator's edit), which is judged instead.
   */
  private held(): HeldCertificate | undefined {
    const stored = this.opts.view.current().acme?.certificate;
    const own = this.ownStored;
    if (own && stored?.cert !== own.stored.cert && Date.now() < own.until) return own.held;
    this.ownStored = undefined;
    if (!stored || stored.domain !== this.opts.domain) return undefined;
    if (this.heldFrom?.stored !== stored) this.heldFrom = { stored, held: validity(stored, this.opts.domain) };
    return this.heldFrom.held;
  }

  private decide(): void {
    if (this.state.kind === 'stopped' || this.state.kind === 'ordering' || !this.campaign.isLeader) return;
    const decision = decideOrder({
      now: Date.now(),
      held: this.held(),
      failures: this.failures,
      lastFailureAt: this.lastFailureAt,
      ...(this.opts.retryFirstMs !== undefined ? { retryFirstMs: this.opts.retryFirstMs } : {}),
    });
    this.leave();
    if (decision.kind === 'wait') {
      if (this.state.kind !== 'waiting' || this.state.at !== decision.at) {
        this.opts.log.info({ until: new Date(decision.at).toISOString(), reason: decision.reason }, 'ACME orderer waiting');
      }
      const timer = setTimeout(() => this.decide(), Math.min(MAX_TIMER_MS, Math.max(0, decision.at - Date.now())));
      this.state = { kind: 'waiting', timer, at: decision.at };
      return;
    }
    const attempt = ++this.attempts;
    this.state = { kind: 'ordering', attempt };
    this.opts.log.info({ reason: decision.reason, attempt }, 'ordering the cluster certificate');
    void this.order(attempt);
  }

  private async order(attempt: number): Promise<void> {
    const { log, metrics } = this.opts;
    const current = () => this.state.kind === 'ordering' && this.state.attempt === attempt;
    try {
      const stored = await orderCertificate({
        directory: this.opts.directory,
        ...(this.opts.email ? { email: this.opts.email } : {}),
        domain: this.opts.domain,
        nodeName: this.opts.nodeName,
        client: this.opts.client,
        lease: () => this.opts.elector.lease.handle,
        visible: (values) => this.visible(values),
        stillLeading: () => {
          if (!current() || !this.campaign.heldFirstPlace) throw new Deposed('no longer the ACME orderer');
        },
        propagationMs: this.opts.propagationMs ?? 2000,
        log,
      });
      this.failures = 0;
      await this.saveBackoff(undefined);
      // The view may show the stored key a moment later: until then this is what we hold.
      this.ownStored = { stored, held: validity(stored, this.opts.domain), until: Date.now() + OWN_STORE_TRUST_MS };
      metrics.increment('acme.orders', 1, { result: 'issued' });
      log.info({ domain: stored.domain }, 'cluster certificate ordered and stored in etcd');
    } catch (err) {
      if (err instanceof Deposed) return void log.info('ACME order abandoned: no longer the orderer');
      this.failures++;
      this.lastFailureAt = Date.now();
      await this.saveBackoff({ failures: Math.min(this.failures, MAX_STORED_FAILURES), lastFailureAt: this.lastFailureAt, by: this.opts.nodeName });
      metrics.increment('acme.orders', 1, { result: 'failed' });
      log.error({ err: errorMessage(err), failures: this.failures }, 'ACME order failed; backing off');
    }
    if (!current()) return;
    this.state = { kind: 'following' };
    this.decide();
  }

  /** Adopts the cluster's backoff when it is further along than this node's own count. */
  private async loadBackoff(): Promise<void> {
    try {
      const text = await this.opts.client.get(ACME_BACKOFF_KEY).string();
      if (text === null) return;
      const stored = parseStoredBackoff(text);
      if (stored.failures > this.failures || (stored.failures === this.failures && stored.lastFailureAt > (this.lastFailureAt ?? 0))) {
        this.failures = stored.failures;
        this.lastFailureAt = Math.min(stored.lastFailureAt, Date.now());
      }
    } catch (err) {
      // Unreadable or malformed: this node's own count stands (a fresh orderer: none).
      this.opts.log.warn({ err: errorMessage(err), key: ACME_BACKOFF_KEY }, 'cannot read the cluster ACME backoff');
    }
  }

  /** Writes the cluster's backoff after an order (undefined: it succeeded, nothing to wait for). */
  private async saveBackoff(backoff: StoredBackoff | undefined): Promise<void> {
    try {
      if (backoff) await this.opts.client.put(ACME_BACKOFF_KEY).value(JSON.stringify(backoff)).exec();
      else await this.opts.client.delete().key(ACME_BACKOFF_KEY).exec();
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err), key: ACME_BACKOFF_KEY }, 'cannot store the cluster ACME backoff');
    }
  }

  private visible(values: readonly string[]): Promise<void> {
    const shows = (s: ClusterState) => values.every((v) => s.acme?.challenges.includes(v));
    if (shows(this.opts.view.current())) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => (off(), reject(new Error('the challenge values did not reach the cluster view within 10 s'))), 10_000);
      const off = this.opts.view.onChange((s) => {
        if (shows(s)) (clearTimeout(timer), off(), resolve());
      });
    });
  }
}
