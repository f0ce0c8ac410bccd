import type { Certificate } from './certificate.js';

/**
 * Which certificate HTTPS serves: the operator's files win once they held a good pair (an
 * operator who gives --tls-cert means it; a later bad pair keeps their last good one), as long
 * as that pair has not expired; the cluster's ACME certificate serves until then (files missing
 * or bad) and from then on (the operator forgot to renew), whenever it is itself still valid.
 * Pure.
 */
export function preferredCertificate(operator: Certificate | undefined, cluster: Certificate | undefined, now = new Date()): Certificate | undefined {
  const valid = (c: Certificate | undefined) => c !== undefined && c.notAfter.getTime() > now.getTime();
  if (valid(operator)) return operator;
  if (valid(cluster)) return cluster;
  return operator ?? cluster;
}
