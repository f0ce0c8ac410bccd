/**
 * When the elected orderer orders the cluster's certificate: pure, times in epoch milliseconds.
 */

const DAY_MS = 86_400_000;
/** Let's Encrypt's advice: renew 30 days before expiry (a third of a 90-day certificate). */
export const RENEW_BEFORE_EXPIRY_MS = 30 * DAY_MS;
/** First wait after a failed order; doubled per failure (a CA's rate limits punish quick retries). */
export const RETRY_FIRST_MS = 60_000;
export const RETRY_MAX_MS = 6 * 3_600_000;

/** What the orderer knows about the certificate in etcd (undefined: none, or not for our domain). */
export interface HeldCertificate {
  notBefore: number;
  notAfter: number;
}

/**
 * When a certificate valid from `notBefore` to `notAfter` is renewed: 30 days before expiry, or
 * at two thirds of its lifetime when it lives less than 90 days (short-lived certificates).
 */
export function renewalTime(cert: HeldCertificate): number {
  const lifetime = Math.max(0, cert.notAfter - cert.notBefore);
  return cert.notAfter - Math.min(RENEW_BEFORE_EXPIRY_MS, lifetime / 3);
}

/** The wait after `failures` consecutive failed orders (1 = the first failure). */
export function retryDelayMs(failures: number, firstMs = RETRY_FIRST_MS, maxMs = RETRY_MAX_MS): number {
  if (failures <= 0) return 0;
  return Math.min(maxMs, firstMs * 2 ** Math.min(failures - 1, 30));
}

export interface OrderInputs {
  now: number;
  held: HeldCertificate | undefined;
  /** Consecutive failed orders, and when the last one failed. */
  failures: number;
  lastFailureAt?: number;
  retryFirstMs?: number;
}

/** Order now, or wake up at `at` and decide again. */
export type OrderDecision = { kind: 'order'; reason: string } | { kind: 'wait'; at: number; reason: string };

export function decideOrder(i: OrderInputs): OrderDecision {
  if (i.failures > 0 && i.lastFailureAt !== undefined) {
    const retryAt = i.lastFailureAt + retryDelayMs(i.failures, i.retryFirstMs);
    if (retryAt > i.now) return { kind: 'wait', at: retryAt, reason: `backing off after ${i.failures} failed order(s)` };
  }
  if (!i.held) return { kind: 'order', reason: 'no certificate for the domain in etcd' };
  const renewAt = renewalTime(i.held);
  if (renewAt <= i.now) return { kind: 'order', reason: 'the certificate is due for renewal' };
  return { kind: 'wait', at: renewAt, reason: 'the certificate is good until its renewal time' };
}
