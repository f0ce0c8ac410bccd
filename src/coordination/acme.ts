import { Ajv } from 'ajv';
import { X509Certificate } from 'node:crypto';

/**
 * What the cluster keeps in etcd for HTTPS by ACME (keys.ts: ACME_*), and how the DNS names a
 * DNS-01 challenge. Pure: schemas and names only.
 */

/** The cluster's certificate as the elected orderer stores it under ACME_CERTIFICATE_KEY. */
export interface StoredCertificate {
  /** The zone it was ordered for: it names `domain` and `*.domain`. */
  domain: string;
  /** PEM chain, leaf first. */
  cert: string;
  /** PEM private key of the leaf. */
  key: string;
  /** The node that ordered it, and when (ISO 8601): for people. */
  orderedBy: string;
  storedAt: string;
}

/** The ACME account every orderer uses, so a new orderer reuses the account of the last one. */
export interface StoredAccount {
  /** The directory URL the account was created at: another directory needs another account. */
  directory: string;
  /** PEM private key of the account. */
  accountKey: string;
}

/**
 * Failed orders in a row and when the last failed (epoch ms), under ACME_BACKOFF_KEY: the
 * backoff belongs to the cluster, not to one orderer, so a takeover or a restart does not
 * start it over (the CA's rate limits count the cluster's orders).
 */
export interface StoredBackoff {
  failures: number;
  lastFailureAt: number;
  by: string;
}

/** The ACME part of the cluster state. */
export interface AcmeState {
  /** TXT values to answer at `_acme-challenge.DOMAIN`, sorted (the answer is the same on every node). */
  challenges: readonly string[];
  certificate?: StoredCertificate;
}

const ajv = new Ajv();

const validateCertificate = ajv.compile<StoredCertificate>({
  type: 'object',
  required: ['domain', 'cert', 'key', 'orderedBy', 'storedAt'],
  properties: {
    domain: { type: 'string', minLength: 1, maxLength: 253 },
    cert: { type: 'string', minLength: 1, maxLength: 65536 },
    key: { type: 'string', minLength: 1, maxLength: 16384 },
    orderedBy: { type: 'string', maxLength: 253 },
    storedAt: { type: 'string', maxLength: 64 },
  },
});

const validateAccount = ajv.compile<StoredAccount>({
  type: 'object',
  required: ['directory', 'accountKey'],
  properties: {
    directory: { type: 'string', minLength: 1, maxLength: 2048 },
    accountKey: { type: 'string', minLength: 1, maxLength: 16384 },
  },
});

const validateBackoff = ajv.compile<StoredBackoff>({
  type: 'object',
  required: ['failures', 'lastFailureAt', 'by'],
  properties: {
    failures: { type: 'integer', minimum: 0, maximum: 1000 },
    lastFailureAt: { type: 'number', minimum: 0 },
    by: { type: 'string', maxLength: 253 },
  },
});

function parseWith<T>(validate: ((v: unknown) => v is T) & { errors?: unknown }, text: string, what: string): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${what} is not JSON`);
  }
  if (!validate(value)) throw new Error(`${what} does not match its schema: ${ajv.errorsText(validate.errors as never)}`);
  return value;
}

/** Schema check only: whether the PEM inside is a usable pair is the TLS side's business (certificate.ts). */
export function parseStoredCertificate(text: string): StoredCertificate {
  return parseWith(validateCertificate, text, 'the stored certificate');
}

export function parseStoredAccount(text: string): StoredAccount {
  return parseWith(validateAccount, text, 'the stored ACME account');
}

export function parseStoredBackoff(text: string): StoredBackoff {
  return parseWith(validateBackoff, text, 'the stored ACME backoff');
}

/** A DNS-01 value is the base64url SHA-256 of the key authorization: 43 characters. */
export function isChallengeValue(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}

/** The name a CA queries for DNS-01 for both DOMAIN and *.DOMAIN (RFC 8555, section 8.4). */
export function challengeRecordName(domain: string): string {
  return `_acme-challenge.${domain}`;
}

/** The cluster certificate as `radioctl status` shows it (never the key). */
export interface CertificateSummary {
  domain: string;
  names: string;
  notAfter: string;
  expiresInSeconds: number;
  orderedBy: string;
  storedAt: string;
}

/** Undefined without a stored certificate; `names` says so when the stored chain is unreadable. */
export function summarizeCertificate(stored: StoredCertificate | undefined, now: number): CertificateSummary | undefined {
  if (!stored) return undefined;
  let names = '(unreadable certificate)';
  let notAfter = Number.NaN;
  try {
    const leaf = new X509Certificate(stored.cert);
    names = leaf.subjectAltName ?? leaf.subject;
    notAfter = new Date(leaf.validTo).getTime();
  } catch {
    // Shown as unreadable: the front doors refuse it too and keep their last good one.
  }
  return {
    domain: stored.domain,
    names,
    notAfter: Number.isNaN(notAfter) ? 'unknown' : new Date(notAfter).toISOString(),
    expiresInSeconds: Number.isNaN(notAfter) ? 0 : Math.floor((notAfter - now) / 1000),
    orderedBy: stored.orderedBy,
    storedAt: stored.storedAt,
  };
}
