import type { Certificate } from './certificate.js';

/**
 * Which certificate HTTPS serves: the operator's files win whenever they hold a good pair (an
 * operator who gives --tls-cert means it); the cluster's ACME certificate serves otherwise,
 * e.g. while the files are missing or bad. Pure.
 */
export function preferredCertificate(operator: Certificate | undefined, cluster: Certificate | undefined): Certificate | undefined {
  return operator ?? cluster;
}
