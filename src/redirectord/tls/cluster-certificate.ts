import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { AutoradioError, ErrorCode, errorMessage } from '../../common/errors.js';
import type { ClusterState } from '../../coordination/cluster-state.js';
import type { StoredCertificate } from '../../coordination/acme.js';
import { ACME_CERTIFICATE_KEY } from '../../coordination/keys.js';
import { checkCertificate, checkNamesZone, type Certificate } from './certificate.js';

export interface ClusterCertificateOptions {
  domain: string;
  log: Logger;
  metrics: Metrics;
  /** Called with each new good certificate from etcd. */
  onCertificate: (cert: Certificate) => void;
}

/**
 * The cluster's ACME certificate as the watched view delivers it, through the same checks as the
 * operator's files (certificate.ts): a corrupt chain, a foreign key or an expired certificate in
 * etcd is refused with AR_INVALID_CERTIFICATE, once per stored value, and the last good one
 * stays in use. A certificate for another domain is refused too (it would not name this zone),
 * whether its `domain` field says so or only its leaf does.
 */
export class ClusterCertificate {
  private current: Certificate | undefined;
  /** The stored value last checked, good or bad: a view change elsewhere costs nothing. */
  private lastTried: StoredCertificate | undefined;

  constructor(private readonly opts: ClusterCertificateOptions) {}

  get certificate(): Certificate | undefined {
    return this.current;
  }

  /** Feeds one cluster state; call on every view change. */
  update(state: ClusterState): void {
    const stored = state.acme?.certificate;
    if (!stored || stored === this.lastTried) return;
    const last = this.lastTried;
    if (last && stored.cert === last.cert && stored.key === last.key && stored.domain === last.domain) return;
    this.lastTried = stored;
    const { log, metrics } = this.opts;
    try {
      if (stored.domain !== this.opts.domain) {
        throw new AutoradioError(ErrorCode.invalidCertificate, `certificate from etcd key ${ACME_CERTIFICATE_KEY} refused: it was ordered for ${stored.domain}, not ${this.opts.domain}; the last good one stays in use`);
      }
      const cert = checkCertificate(stored.cert, stored.key, `etcd key ${ACME_CERTIFICATE_KEY}`);
      checkNamesZone(stored.cert, this.opts.domain, `etcd key ${ACME_CERTIFICATE_KEY}`);
      this.current = cert;
      metrics.increment('tls.certificate_loaded');
      log.info({ names: cert.names, notAfter: cert.notAfter.toISOString(), orderedBy: stored.orderedBy }, 'TLS certificate loaded from etcd');
      this.opts.onCertificate(cert);
    } catch (err) {
      metrics.increment('tls.certificate_refused');
      const code = err instanceof AutoradioError ? err.code : undefined;
      log.error({ err: errorMessage(err), code, key: ACME_CERTIFICATE_KEY }, 'TLS certificate refused');
    }
  }
}
