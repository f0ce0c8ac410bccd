import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { emptyClusterState, type ClusterState } from './cluster-state.js';
import { ClusterStateBuilder, type KeyChange } from './cluster-state-builder.js';
import { ICECAST_SECRETS_KEY, ROOT } from './keys.js';

/** Anything that hands out the current ClusterState and tells when it changes. */
export interface ClusterStateSource {
  current(): ClusterState;
  onChange(listener: (state: ClusterState) => void): () => void;
}

/** Changes within this window are delivered as one snapshot (a burst of watch events). */
const COALESCE_MS = 20;
const PROBE_INTERVAL_MS = 2000;

/**
 * The watched, in-memory view of the cluster: mounts, live nodes and the master.
 *
 * A full read gives a consistent snapshot at revision R; the watch then continues from R + 1,
 * so no change is missed. The etcd3 watcher replays missed events across plain disconnects;
 * when etcd compacted past our revision it fails instead, and we read everything again.
 * While etcd is unreachable the last known state stays in force (with connected = false): a
 * cluster keeps streaming through an etcd outage.
 */
export class ClusterView implements ClusterStateSource {
  private readonly builder: ClusterStateBuilder;
  private readonly throttled: ThrottledLog;
  private readonly listeners = new Set<(s: ClusterState) => void>();
  private state: ClusterState = emptyClusterState();
  private watcher: Watcher | undefined;
  private connected = false;
  private stopped = false;
  private emitTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private resyncing: Promise<void> | undefined;

  constructor(
    private readonly client: Etcd3,
    private readonly log: Logger,
  ) {
    this.throttled = new ThrottledLog(log);
    this.builder = new ClusterStateBuilder((key, problem) =>
      this.throttled.warn(`invalid:${key}`, { key, problem }, 'ignoring invalid value in etcd'),
    );
  }

  current(): ClusterState {
    return this.state;
  }

  /** True once a full read succeeded: before that, the state is empty, not "no mounts". */
  get loaded(): boolean {
    return this.state.revision !== '0';
  }

  onChange(listener: (state: ClusterState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves after the first full read, or after `timeoutMs` if etcd is unreachable (syncing goes on). */
  async start(timeoutMs = 5000): Promise<void> {
    const first = this.resync();
    this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
    await Promise.race([first, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  private resync(): Promise<void> {
    this.resyncing ??= this.resyncLoop().finally(() => {
      this.resyncing = undefined;
    });
    return this.resyncing;
  }

  private async resyncLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.cancelWatcher();
        const res = await this.client.getAll().prefix(ROOT).exec();
        const revision = res.header.revision;
        this.builder.reset(res.kvs.map((kv) => toChange('put', kv)), revision);
        this.setConnected(true);
        await this.watchFrom(BigInt(revision) + 1n);
        this.throttled.clear('resync');
        this.scheduleEmit();
        return;
      } catch (err) {
        this.setConnected(false);
        this.throttled.warn('resync', { err: errorMessage(err) }, 'cannot read cluster state from etcd; keeping the last known state');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async watchFrom(revision: bigint): Promise<void> {
    const watcher = await this.client.watch().prefix(ROOT).startRevision(revision.toString()).create();
    if (this.stopped) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('data', (res) => {
      const changes = res.events.map((e) => toChange(e.type === 'Delete' ? 'delete' : 'put', e.kv));
      if (changes.length === 0) return;
      this.builder.apply(changes, res.header.revision);
      this.scheduleEmit();
    });
    watcher.on('connected', () => this.setConnected(true));
    watcher.on('disconnected', () => this.setConnected(false));
    watcher.on('error', (err) => {
      if (watcher !== this.watcher) return;
      this.log.warn({ err: errorMessage(err) }, 'cluster watch failed (compacted?); reading everything again');
      this.watcher = undefined;
      void this.resync();
    });
  }

  /** A blackholed etcd never fails a watch; a cheap read with a deadline notices it. */
  private async probe(): Promise<void> {
    if (this.stopped || this.resyncing) return;
    try {
      await this.client.get(ICECAST_SECRETS_KEY).exec();
      this.setConnected(this.watcher !== undefined);
    } catch {
      this.setConnected(false);
    }
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    if (connected) this.log.info('connected to etcd');
    else this.log.warn('etcd unreachable; serving the last known cluster state');
    this.scheduleEmit();
  }

  private scheduleEmit(): void {
    if (this.emitTimer || this.stopped) return;
    this.emitTimer = setTimeout(() => {
      this.emitTimer = undefined;
      if (this.stopped || this.builder.currentRevision === '0') return;
      this.state = this.builder.snapshot(this.connected);
      for (const l of this.listeners) {
        try {
          l(this.state);
        } catch (err) {
          this.log.error({ err: errorMessage(err) }, 'cluster state listener failed');
        }
      }
    }, COALESCE_MS);
  }

  private async cancelWatcher(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.emitTimer);
    clearInterval(this.probeTimer);
    await this.cancelWatcher();
  }
}

/** A one-shot read of the whole cluster state (for radioctl status and tools). */
export async function readClusterState(
  client: Etcd3,
  onInvalid: (key: string, problem: string) => void = () => {},
): Promise<ClusterState> {
  const res = await client.getAll().prefix(ROOT).exec();
  const builder = new ClusterStateBuilder(onInvalid);
  builder.reset(res.kvs.map((kv) => toChange('put', kv)), res.header.revision);
  return builder.snapshot(true);
}

function toChange(type: 'put' | 'delete', kv: IKeyValue): KeyChange {
  return {
    type,
    key: kv.key.toString(),
    value: kv.value.toString(),
    createRevision: kv.create_revision,
    modRevision: kv.mod_revision,
  };
}
