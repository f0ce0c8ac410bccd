import type { NodeStatus } from './node-status.js';

/**
 * When a node rewrites its status in etcd. Every write is a new etcd revision of the whole
 * value, kept until compaction, and every reader folds it; at 50 nodes, writing on every 1 s
 * poll (listener counts move all the time) made 50 revisions/s, over 1 MB/s, and outgrew
 * etcd's 2 GB quota within the README's 1 h compaction window. Pure.
 *
 * - health (Icecast up or down, addresses, port, limits, or any field a later version adds):
 *   written at once, balancers must react within a poll;
 * - load (listeners or bandwidth moved by more than the hysteresis, or any move while near a
 *   limit): at most every LOAD_MIN_INTERVAL_MS;
 * - on air (on the master: a source connected or left, a new title): at most every
 *   ON_AIR_MIN_INTERVAL_MS, so a title that changes every second (or a flapping source) costs
 *   at most one write per interval, and a change shows within that interval;
 * - detail (per-mount counts, small moves) and plain refreshes: every REFRESH_MS.
 *
 * Between two reports the balancers count their own redirects on top (PredictiveLoad), so a
 * coarse listener count never lets a node be filled past its limit.
 */
export const LOAD_MIN_INTERVAL_MS = 10_000;
/** Fastest rate at which what is on air (sources, titles) is rewritten. */
export const ON_AIR_MIN_INTERVAL_MS = 2_000;
/** An unchanged or slightly changed status is still rewritten this often, so readers see its report time move. */
export const REFRESH_MS = 30_000;
/** Listener moves below 10 % of the count (and at least one) are detail: a small node's every move is load. */
export const LISTENER_STEP_FRACTION = 0.1;
/** Bandwidth moves below this (or 10 %, if more) are detail: bandwidth wobbles with every poll. */
export const BANDWIDTH_STEP_KBPS = 1024;
/** From this fraction of a limit on, every move counts as load. */
export const NEAR_LIMIT = 0.9;

export type StatusChange = 'none' | 'detail' | 'on-air' | 'load' | 'health';

/** The fields that are not load: a difference in any of them is a health change. */
function healthFields(s: NodeStatus): string {
  const { mounts: _m, listeners: _l, bandwidthKbps: _b, reportedAt: _r, onAir: _o, ...rest } = s;
  return JSON.stringify(rest, Object.keys(rest).sort());
}

function movedPast(previous: number, next: number, step: number): boolean {
  return Math.abs(next - previous) >= Math.max(step, previous * LISTENER_STEP_FRACTION);
}

function nearLimit(value: number, limit: number): boolean {
  return limit > 0 && value >= limit * NEAR_LIMIT;
}

function sameMounts(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => a[k] === b[k]);
}

/** What `next` tells the cluster that `previous` (the status etcd holds) did not. */
export function classifyStatusChange(previous: NodeStatus | undefined, next: NodeStatus): StatusChange {
  if (!previous || healthFields(previous) !== healthFields(next)) return 'health';
  const near =
    nearLimit(previous.listeners, previous.maxListeners) ||
    nearLimit(next.listeners, next.maxListeners) ||
    nearLimit(next.bandwidthKbps, next.maxBandwidthKbps);
  const listenersMoved = previous.listeners !== next.listeners;
  // Near a limit, anything over the poll-to-poll noise of a single stream counts.
  const bandwidthMoved = near
    ? Math.abs(next.bandwidthKbps - previous.bandwidthKbps) >= 64
    : movedPast(previous.bandwidthKbps, next.bandwidthKbps, BANDWIDTH_STEP_KBPS);
  if ((near && (listenersMoved || bandwidthMoved)) || movedPast(previous.listeners, next.listeners, 1) || bandwidthMoved) {
    return 'load';
  }
  if (onAirChanged(previous, next)) return 'on-air';
  if (listenersMoved || previous.bandwidthKbps !== next.bandwidthKbps || !sameMounts(previous.mounts, next.mounts)) return 'detail';
  return 'none';
}

function onAirChanged(previous: NodeStatus, next: NodeStatus): boolean {
  return JSON.stringify(previous.onAir ?? {}) !== JSON.stringify(next.onAir ?? {});
}

/** Whether `next` is to be written now, given what was last written and when. */
export function publishDue(written: { status: NodeStatus; at: number } | undefined, next: NodeStatus, now: number): boolean {
  if (!written) return true;
  const age = now - written.at;
  switch (classifyStatusChange(written.status, next)) {
    case 'health':
      return true;
    case 'load':
      return age >= LOAD_MIN_INTERVAL_MS || (onAirChanged(written.status, next) && age >= ON_AIR_MIN_INTERVAL_MS);
    case 'on-air':
      return age >= ON_AIR_MIN_INTERVAL_MS;
    case 'detail':
    case 'none':
      return age >= REFRESH_MS;
  }
}
