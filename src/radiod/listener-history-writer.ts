import type { Etcd3 } from 'etcd3';
import type { ThrottledLog } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import type { ClusterStateSource } from '../coordination/cluster-view.js';
import { summarizeCluster } from '../coordination/cluster-summary.js';
import { LISTENER_HISTORY_KEY } from '../coordination/keys.js';
import { appendSample, MINUTE_MS } from '../coordination/listener-history.js';

/**
 * Once a minute, on the master only, adds the cluster's listeners per mount to the 24 h
 * history in etcd: one write per minute per cluster, by the one node every other already
 * follows. The previous history comes from the watched view, so a new master (after a
 * failover or a restart) continues the same series; a minute without a master stays a gap.
 */
export class ListenerHistoryWriter {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly deps: {
      client: Etcd3;
      view: ClusterStateSource;
      isMaster: () => boolean;
      throttled: ThrottledLog;
      now?: () => number;
    },
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Fires a few seconds into each minute, after the nodes' reports of the minute's end. */
  private schedule(): void {
    if (this.stopped) return;
    const now = this.now();
    const wait = MINUTE_MS - (now % MINUTE_MS) + 5_000;
    this.timer = setTimeout(() => void this.tick(), wait % MINUTE_MS || MINUTE_MS);
  }

  private async tick(): Promise<void> {
    const state = this.deps.view.current();
    if (this.deps.isMaster() && state.connected) {
      const perMount: Record<string, number> = {};
      for (const m of summarizeCluster(state).mounts) perMount[m.path] = m.listeners;
      const next = appendSample(state.history, this.now(), perMount);
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
