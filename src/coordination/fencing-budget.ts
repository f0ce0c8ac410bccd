/**
 * The time budget that keeps two leaders from acting at once, as a pure function of the lease
 * TTL (seconds).
 *
 * A keepalive sent at monotonic time s and answered by etcd proves the lease lives on the
 * server until at least s + TTL (the server restarts the TTL when the keepalive arrives, which
 * is after s; its expiry check only adds up to 0.5 s). No other candidate can be elected before
 * that moment. The leader trusts that proof for a confirmation window W after s, then fences
 * itself, and fencing needs time to take effect:
 *
 *   W + FENCE_TAKES_EFFECT_MS <= TTL
 *
 * FENCE_TAKES_EFFECT_MS covers the slowest fencing action in radiod: the master's locked source
 * passwords, which Icecast runs 0.8-1.6 s after the SIGHUP (its config thread wakes once a
 * second), plus the watchdog firing late, the render and fsync'd write, and the signal.
 * A transcoder's fencing (SIGTERM to liquidsoap) takes effect at once; a second transcoder would
 * be refused by Icecast anyway ("mountpoint in use").
 */

/** HUP to Icecast running the new config: 0.8-1.6 s measured, budgeted 2 s. */
export const ICECAST_APPLIES_CONFIG_MS = 2000;
/** Watchdog lateness, render, fsync'd write, pid lookup and signal: tens of ms measured, budgeted 0.5 s. */
export const FENCE_REACTION_MS = 500;
export const FENCE_TAKES_EFFECT_MS = ICECAST_APPLIES_CONFIG_MS + FENCE_REACTION_MS;

/** Keepalives sent per confirmation window: one slow or lost answer must not close it. */
export const KEEPALIVES_PER_WINDOW = 3;
/** Below this a window holds too few keepalive round trips on a loaded etcd and would flap. */
export const MIN_CONFIRMATION_WINDOW_MS = 1500;

/** The smallest TTL whose window still fits the budget: (1500 + 2500) / 1000 = 4 s. */
export const MIN_LEASE_TTL_SECONDS = Math.ceil((MIN_CONFIRMATION_WINDOW_MS + FENCE_TAKES_EFFECT_MS) / 1000);
export const MAX_LEASE_TTL_SECONDS = 300;

export interface FencingBudget {
  ttlMs: number;
  /** How long after a confirmed keepalive was sent the lease counts as alive here. */
  confirmationWindowMs: number;
  keepaliveIntervalMs: number;
  /** Latest moment (after the last confirmed send) fencing has taken effect. */
  fencedByMs: number;
  /** ttlMs - fencedByMs: never negative for an allowed TTL. */
  marginMs: number;
}

/**
 * The window is TTL/2 for long TTLs (half the lease to spare), and TTL minus the fencing time
 * when that is shorter. Below the minimum TTL nothing can be fenced in time; a lease that fences
 * nothing (presence) may still be that short and keeps half its TTL (marginMs is then negative).
 */
export function fencingBudget(ttlSeconds: number): FencingBudget {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError(`lease TTL must be positive, got ${ttlSeconds}`);
  const ttlMs = ttlSeconds * 1000;
  const fencesInTime = ttlSeconds >= MIN_LEASE_TTL_SECONDS;
  const confirmationWindowMs = fencesInTime ? Math.min(ttlMs / 2, ttlMs - FENCE_TAKES_EFFECT_MS) : ttlMs / 2;
  const fencedByMs = confirmationWindowMs + FENCE_TAKES_EFFECT_MS;
  return {
    ttlMs,
    confirmationWindowMs,
    keepaliveIntervalMs: Math.floor(confirmationWindowMs / KEEPALIVES_PER_WINDOW),
    fencedByMs,
    marginMs: ttlMs - fencedByMs,
  };
}

/** The budget of a lease whose holder fences itself (elections): refuses a TTL too short for it. */
export function requireFencingBudget(ttlSeconds: number): FencingBudget {
  if (!(ttlSeconds >= MIN_LEASE_TTL_SECONDS)) {
    throw new RangeError(`lease TTL must be at least ${MIN_LEASE_TTL_SECONDS} s for fencing to take effect in time, got ${ttlSeconds}`);
  }
  return fencingBudget(ttlSeconds);
}
