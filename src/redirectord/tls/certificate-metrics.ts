import type { PrometheusRegistry } from '../../common/prometheus.js';
import type { Certificate } from './certificate.js';

export const EXPIRY_GAUGE = 'autoradio_tls_certificate_expiry_seconds';

/**
 * Seconds until the HTTPS certificate in use expires, computed at every scrape (an alert on
 * it needs no clock of its own). Absent while HTTPS has no certificate.
 */
export function registerCertificateGauge(
  registry: PrometheusRegistry,
  certificate: () => Certificate | undefined,
  now: () => number = Date.now,
): () => void {
  registry.describe(EXPIRY_GAUGE, 'gauge', 'Seconds until the HTTPS certificate in use expires (negative: expired)');
  return registry.addCollector(() => {
    registry.reset(EXPIRY_GAUGE);
    const cert = certificate();
    if (cert) registry.set(EXPIRY_GAUGE, Math.floor((cert.notAfter.getTime() - now()) / 1000));
  });
}
