import type { Etcd3 } from 'etcd3';
import type { ThrottledLog } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { ClusterStateSource } from '../coordination/cluster-view.js';
import { summarizeCluster } from '../coordination/cluster-summary.js';
import { LISTENER_HISTORY_KEY } from '../coordination/keys.js';
import { appendSample, MINUTE_MS } from '../coordination/listener-history.js';

/**
 * Wall-clock time and the timer the writer runs on. The real ones by default; a test passes a
 * clock whose minutes last a second, so the whole cycle runs against real etcd in seconds.
 */
export interface HistoryClock {
  /** Milliseconds since the epoch: which minute a sample belongs to. */
  now(): number;
  /** Calls `fn` after `ms` of this clock's time; returns a function that cancels it. */
  after(ms: number, fn: () => void): () => void;
}

export const SYSTEM_CLOCK: HistoryClock = {
  now: () => Date.now(),
  after: (ms, fn) => {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/** Into each minute by then, the nodes have reported the minute's end (they report every 30 s at most). */
export const DEFAULT_SAMPLE_OFFSET_MS = 5_000;

/**
 * Once a minute, on the master only, adds the cluster's listeners per mount to the 24 h
 * history in etcd: one write per minute per cluster, by the one node every other already
 * follows. The previous history comes from the watched view, so a new master (after a
 * failover or a restart) continues the same series; a minute without a master stays a gap.
 */
export class ListenerHistoryWriter {
  private cancelTimer: (() => void) | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      client: Etcd3;
      view: ClusterStateSource;
      isMaster: () => boolean;
      throttled: ThrottledLog;
      clock?: HistoryClock;
      /** How far into each minute the sample is taken. */
      sampleOffsetMs?: number;
    },
  ) {}

  private get clock(): HistoryClock {
    return this.deps.clock ?? SYSTEM_CLOCK;
  }

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.cancelTimer?.();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancelTimer = this.clock.after(nextSampleInMs(this.clock.now(), this.deps.sampleOffsetMs ?? DEFAULT_SAMPLE_OFFSET_MS), () => void this.tick());
  }

  private async tick(): Promise<void> {
    const state = this.deps.view.current();
    if (this.deps.isMaster() && state.connected) {
      const perMount: Record<string, number> = {};
      for (const m of summarizeCluster(state).mounts) perMount[m.path] = m.listeners;
      const next = appendSample(state.history, this.clock.now(), perMount);
      try {
        await this.deps.client.put(LISTENER_HISTORY_KEY).value(JSON.stringify(next));
        this.deps.throttled.clear('listener-history');
      } catch (err) {
        this.deps.throttled.warn('listener-history', { err: errorMessage(err) }, 'listener history not written');
      }
    }
    this.schedule();
  }
}

/** Time until the next sample, `offsetMs` into a minute; never 0, so one minute gets one sample. */
export function nextSampleInMs(now: number, offsetMs: number): number {
  const wait = (MINUTE_MS - (now % MINUTE_MS) + offsetMs) % MINUTE_MS;
  return wait === 0 ? MINUTE_MS : wait;
}
