import type { Certificate } from './certificate.js';

/**
 * Which certificate HTTPS serves: the operator's files win once they held a good pair (an
 * operator who gives --tls-cert means it; a later bad pair keeps their last good one); the
 * cluster's ACME certificate serves until then, e.g. while the files are missing or bad. Pure.
 */
export function preferredCertificate(operator: Certificate | undefined, cluster: Certificate | undefined): Certificate | undefined {
  return operator ?? cluster;
}
