/**
 * The time budget that keeps two leaders from acting at once, as a pure function of the lease
 * TTL (seconds).
 *
 * A keepalive sent at monotonic time s and answered by etcd proves the lease lives on the
 * server until at least s + TTL (the server restarts the TTL when the keepalive arrives, which
 * is after s; its expiry check only adds up to 0.5 s), unless someone revokes it. The leader
 * trusts that proof for a confirmation window W after s, then fences itself, and fencing needs
 * a moment to take effect. So:
 *
 * - a lease that expires: its holder is fenced by s + W + FENCE_TAKES_EFFECT_MS <= s + TTL, the
 *   earliest moment another candidate can be elected;
 * - a lease revoked by peers (a master they all see dead, see deposition.ts) at time r: the last
 *   keepalive its holder saw answered was sent before r, so the holder is fenced by
 *   r + W + FENCE_TAKES_EFFECT_MS. Its successor waits that long (`takeoverWaitMs`) after it
 *   saw the revocation, which is after r.
 *
 * Fencing takes effect almost at once because Icecast asks radiod about every source
 * (radiod/source-auth): radiod answers from the lease's state at that very moment, with no
 * config reload in between. What is left: an "allowed" answer already on its way to Icecast,
 * the watchdog firing late for a transcoder's SIGTERM, and a busy event loop.
 */

/** An allowed source answer in flight, and Icecast's auth thread starting the source: ms measured. */
export const SOURCE_AUTH_SETTLES_MS = 250;
/**
 * Watchdog lateness and a busy event loop (transcoder SIGTERM, locked-config write): tens of ms
 * measured. Source answers need none of it: they read the lease's state when asked.
 */
export const FENCE_REACTION_MS = 150;
export const FENCE_TAKES_EFFECT_MS = SOURCE_AUTH_SETTLES_MS + FENCE_REACTION_MS;

/** Keepalives sent per confirmation window: one slow or lost answer must not close it. */
export const KEEPALIVES_PER_WINDOW = 4;
/**
 * The window, whatever the TTL: a deposed master's successor sits it out before taking sources,
 * so it is part of every failover's silence. Four keepalives in it (every 175 ms) leave 525 ms
 * for a slow etcd answer before the leader fences itself (and keeps its streams; see
 * candidacy.ts): more than two TCP retransmissions (200 ms minimum RTO) or a raft leader
 * transfer, which the steady-fault runs put under 200 ms.
 */
export const CONFIRMATION_WINDOW_MS = 700;

/**
 * A TTL also bounds how long etcd may stall (a raft election, a slow disk) before every node's
 * presence and candidacy vanish: below 4 s an ordinary raft election would look like a dead cluster.
 */
export const MIN_LEASE_TTL_SECONDS = 4;
export const MAX_LEASE_TTL_SECONDS = 300;

export interface FencingBudget {
  ttlMs: number;
  /** How long after a confirmed keepalive was sent the lease counts as alive here. */
  confirmationWindowMs: number;
  keepaliveIntervalMs: number;
  /** Latest moment (after the last confirmed send) fencing has taken effect. */
  fencedByMs: number;
  /** ttlMs - fencedByMs: how early the holder is fenced before its lease can expire. */
  marginMs: number;
  /** How long a successor waits after seeing its predecessor's lease revoked by peers. */
  takeoverWaitMs: number;
}

/**
 * Elections: the fixed window (shorter for tiny TTLs, so it always fits). Presence fences
 * nothing and keeps half its TTL as window (`presenceBudget`), with fewer keepalives.
 */
export function fencingBudget(ttlSeconds: number): FencingBudget {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError(`lease TTL must be positive, got ${ttlSeconds}`);
  const ttlMs = ttlSeconds * 1000;
  const confirmationWindowMs = Math.min(CONFIRMATION_WINDOW_MS, ttlMs / 2);
  return budgetOf(ttlMs, confirmationWindowMs, KEEPALIVES_PER_WINDOW);
}

/** A lease that only keeps keys alive (presence): half its TTL as window, three keepalives in it. */
export function presenceBudget(ttlSeconds: number): FencingBudget {
  if (!Number.isFinite(ttlSeconds) || ttlSeconds <= 0) throw new RangeError(`lease TTL must be positive, got ${ttlSeconds}`);
  const ttlMs = ttlSeconds * 1000;
  return budgetOf(ttlMs, ttlMs / 2, 3);
}

function budgetOf(ttlMs: number, confirmationWindowMs: number, keepalives: number): FencingBudget {
  const fencedByMs = confirmationWindowMs + FENCE_TAKES_EFFECT_MS;
  return {
    ttlMs,
    confirmationWindowMs,
    keepaliveIntervalMs: Math.floor(confirmationWindowMs / keepalives),
    fencedByMs,
    marginMs: ttlMs - fencedByMs,
    takeoverWaitMs: fencedByMs,
  };
}

/** The budget of a lease whose holder fences itself (elections): refuses a TTL too short for it. */
export function requireFencingBudget(ttlSeconds: number): FencingBudget {
  if (!(ttlSeconds >= MIN_LEASE_TTL_SECONDS)) {
    throw new RangeError(`lease TTL must be at least ${MIN_LEASE_TTL_SECONDS} s for elections, got ${ttlSeconds}`);
  }
  return fencingBudget(ttlSeconds);
}
