import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { AutoradioError, ErrorCode, errorMessage } from '../../common/errors.js';

/** A certificate chain and its key that belong together and are usable now. */
export interface Certificate {
  /** PEM: the leaf first, then any intermediates. */
  cert: string;
  key: string;
  /** The leaf's names (subjectAltName as X509Certificate prints it). */
  names: string;
  notAfter: Date;
}

/**
 * Checks a certificate chain and key before they replace the ones in use: both are PEM, the key
 * is the leaf's, the leaf is valid at `now`, and OpenSSL accepts the pair. `source` names where
 * they came from in the error. Pure apart from the crypto calls.
 */
export function checkCertificate(certPem: string, keyPem: string, source: string, now = new Date()): Certificate {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (err) {
    throw refused(source, `the certificate is not a PEM X.509 certificate (${errorMessage(err)})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw refused(source, `the key is not a PEM private key, or is encrypted (${errorMessage(err)})`);
  }
  if (!leaf.checkPrivateKey(key)) throw refused(source, 'the key does not match the certificate');
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now.getTime()) throw refused(source, `the certificate expired on ${notAfter.toISOString()}`);
  try {
    createSecureContext({ cert: certPem, key: keyPem });
  } catch (err) {
    throw refused(source, `OpenSSL refuses the pair (${errorMessage(err)})`);
  }
  return { cert: certPem, key: keyPem, names: leaf.subjectAltName ?? leaf.subject, notAfter };
}

/**
 * Throws unless the leaf names both `domain` and its subdomains (the cluster's certificate serves
 * the apex and every node name): a `domain` field in etcd says what a certificate was ordered
 * for, only the leaf says what browsers will accept it for.
 */
export function checkNamesZone(certPem: string, domain: string, source: string): void {
  const leaf = new X509Certificate(certPem);
  const names = leaf.subjectAltName ?? leaf.subject;
  if (leaf.checkHost(domain) === undefined || leaf.checkHost(`node.${domain}`) === undefined) {
    throw refused(source, `it names ${names}, not ${domain} and *.${domain}`);
  }
}

function refused(source: string, why: string): AutoradioError {
  return new AutoradioError(ErrorCode.invalidCertificate, `certificate from ${source} refused: ${why}; the last good one stays in use`);
}
