import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { emptyClusterState, isLoaded, type ClusterState } from './cluster-state.js';
import { ClusterStateBuilder, type KeyChange } from './cluster-state-builder.js';
import { ICECAST_SECRETS_KEY, ROOT } from './keys.js';
import { readPrefix } from './prefix-read.js';

/** Anything that hands out the current ClusterState and tells when it changes. */
export interface ClusterStateSource {
  current(): ClusterState;
  onChange(listener: (state: ClusterState) => void): () => void;
}

/** Calls `check` now and at every change of `source`; returns the unsubscribe function. */
export function followState(source: ClusterStateSource, check: () => void): () => void {
  const unsubscribe = source.onChange(check);
  check();
  return unsubscribe;
}

/** Changes within this window are delivered as one snapshot (a burst of watch events). */
const COALESCE_MS = 20;
const PROBE_INTERVAL_MS = 2000;
/** A watch that etcd has not confirmed by then is given up and the read starts over. */
const WATCH_CREATE_DEADLINE_MS = 5000;
const RETRY_MS = 500;

/**
 * Where the view's data comes from. `reading`: a full read (and the watch after it, until etcd
 * confirms it: `confirming`) is under way or being retried; the last state stays in force. `watching`: a watch created right after
 * a full read at revision R, from R + 1, delivers every change since. `stopped`: for good.
 *
 * Only one transition leads into `watching`: a successful full read followed by a confirmed
 * watch. Any doubt about the watch (it disconnected, etcd cancelled it, or a probe could not
 * reach etcd) leads back to `reading`. The etcd3 library would resume a broken watch by
 * itself, but from the revision in the last response header, which is etcd's current revision
 * while etcd may still be sending a catch-up in batches; a catch-up over the gRPC message
 * limit fails and the library resumes past it. Events are lost silently either way, so the
 * view never lets the library resume: it reads everything again.
 */
type Phase = { kind: 'reading'; confirming?: Watcher } | { kind: 'watching'; watcher: Watcher } | { kind: 'stopped' };

/**
 * The watched, in-memory view of the cluster: mounts, live nodes and the master.
 * While etcd is unreachable the last known state stays in force (with connected = false): a
 * cluster keeps streaming through an etcd outage. A state is only ever published from a
 * complete read (and the changes after it), never from a partial or empty one.
 */
export class ClusterView implements ClusterStateSource {
  private readonly builder: ClusterStateBuilder;
  private readonly throttled: ThrottledLog;
  private readonly listeners = new Set<(s: ClusterState) => void>();
  private state: ClusterState = emptyClusterState();
  private phase: Phase = { kind: 'reading' };
  private connected = false;
  /** A probe failed: whatever the watch says, the next successful probe reads everything again. */
  private probeFailed = false;
  private emitTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private resyncing: Promise<void> | undefined;
  private resyncRequested = false;

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

  /** A getter, so that checks after an await see a stop() that happened meanwhile. */
  private get stopped(): boolean {
    return this.phase.kind === 'stopped';
  }

  /** True once a full read succeeded: before that, the state is empty, not "no mounts". */
  get loaded(): boolean {
    return isLoaded(this.state);
  }

  onChange(listener: (state: ClusterState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves after the first full read, or after `timeoutMs` if etcd is unreachable (syncing goes on). */
  async start(timeoutMs = 5000): Promise<void> {
    const first = this.resync('start');
    this.probeTimer = setInterval(() => void this.probe(), PROBE_INTERVAL_MS);
    this.probeTimer.unref();
    await Promise.race([first, new Promise((r) => setTimeout(r, timeoutMs).unref())]);
  }

  /** Reads everything again and watches from there; requests during a read cause one more. */
  private resync(reason: string): Promise<void> {
    this.resyncRequested = true;
    this.resyncing ??= (async () => {
      while (this.resyncRequested && this.phase.kind !== 'stopped') {
        this.resyncRequested = false;
        this.log.debug({ reason }, 'reading the whole cluster state');
        await this.readAndWatch();
      }
    })().finally(() => {
      this.resyncing = undefined;
    });
    return this.resyncing;
  }

  /** Retries until a full read and the watch after it both succeed (or the view stops). */
  private async readAndWatch(): Promise<void> {
    while (this.phase.kind !== 'stopped') {
      this.enterReading();
      try {
        const snapshot = await readPrefix(this.client, ROOT);
        if (this.stopped) return;
        this.builder.reset(snapshot.kvs.map((kv) => toChange('put', kv)), snapshot.revision);
        const watcher = await this.watchFrom(BigInt(snapshot.revision) + 1n);
        if (this.stopped) {
          abandon(watcher);
          return;
        }
        this.phase = { kind: 'watching', watcher };
        this.probeFailed = false;
        this.throttled.clear('resync');
        this.setConnected(true);
        // Published at once, not after the coalescing delay: whoever awaited start() reads it next.
        this.emitNow();
        return;
      } catch (err) {
        this.setConnected(false);
        this.throttled.warn('resync', { err: errorMessage(err) }, 'cannot read cluster state from etcd; keeping the last known state');
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    }
  }

  /**
   * A watch from `revision`, confirmed by etcd. Its listeners are attached before it is sent,
   * so no response can slip by; any sign of trouble sends the view back to a full read.
   */
  private async watchFrom(revision: bigint): Promise<Watcher> {
    const watcher = this.client.watch().prefix(ROOT).startRevision(revision.toString()).watcher();
    this.phase = { kind: 'reading', confirming: watcher };
    // Only the newest watcher counts: an abandoned one may still deliver old events.
    const isCurrent = () =>
      (this.phase.kind === 'watching' && this.phase.watcher === watcher) ||
      (this.phase.kind === 'reading' && this.phase.confirming === watcher);
    watcher.on('data', (res) => {
      if (!isCurrent()) return;
      const changes = res.events.map((e) => toChange(e.type === 'Delete' ? 'delete' : 'put', e.kv));
      if (changes.length === 0) return;
      this.builder.apply(changes, res.header.revision);
      this.scheduleEmit();
    });
    watcher.on('disconnected', (err: unknown) => {
      if (!isCurrent()) return;
      this.log.warn({ err: errorMessage(err) }, 'cluster watch disconnected; reading everything again');
      this.setConnected(false);
      void this.resync('watch disconnected');
    });
    watcher.on('error', (err: unknown) => {
      if (!isCurrent()) return;
      this.log.warn({ err: errorMessage(err) }, 'cluster watch failed (compacted?); reading everything again');
      void this.resync('watch failed');
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('etcd did not confirm the watch in time')), WATCH_CREATE_DEADLINE_MS);
        const settle = (err?: unknown) => {
          clearTimeout(timer);
          watcher.off('connected', onConnected).off('disconnected', onFailed).off('error', onFailed);
          if (err === undefined) resolve();
          else reject(err instanceof Error ? err : new Error(errorMessage(err)));
        };
        const onConnected = () => settle();
        const onFailed = (err: unknown) => settle(err ?? new Error('watch failed'));
        watcher.on('connected', onConnected).on('disconnected', onFailed).on('error', onFailed);
      });
    } catch (err) {
      if (this.phase.kind === 'reading' && this.phase.confirming === watcher) this.phase = { kind: 'reading' };
      abandon(watcher);
      throw err;
    }
    return watcher;
  }

  /** A blackholed etcd never fails a watch; a cheap read with a deadline notices it. */
  private async probe(): Promise<void> {
    if (this.phase.kind !== 'watching' || this.resyncing) return;
    try {
      await this.client.get(ICECAST_SECRETS_KEY).exec();
      // Silent for a while: events may have been lost with the stream; don't trust it.
      if (this.probeFailed) void this.resync('etcd answers again');
    } catch {
      this.probeFailed = true;
      this.setConnected(false);
    }
  }

  private enterReading(): void {
    if (this.phase.kind === 'watching') abandon(this.phase.watcher);
    if (this.phase.kind === 'reading' && this.phase.confirming) abandon(this.phase.confirming);
    if (this.phase.kind !== 'stopped') this.phase = { kind: 'reading' };
  }

  private setConnected(connected: boolean): void {
    if (connected === this.connected) return;
    this.connected = connected;
    if (connected) this.log.info('connected to etcd');
    else this.log.warn('etcd unreachable; serving the last known cluster state');
    this.scheduleEmit();
  }

  private scheduleEmit(): void {
    if (this.emitTimer || this.phase.kind === 'stopped') return;
    this.emitTimer = setTimeout(() => this.emitNow(), COALESCE_MS);
  }

  private emitNow(): void {
    clearTimeout(this.emitTimer);
    this.emitTimer = undefined;
    if (this.phase.kind === 'stopped' || this.builder.currentRevision === '0') return;
    this.state = this.builder.snapshot(this.connected);
    for (const l of this.listeners) {
      try {
        l(this.state);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'cluster state listener failed');
      }
    }
  }

  async stop(): Promise<void> {
    const phase = this.phase;
    this.phase = { kind: 'stopped' };
    clearTimeout(this.emitTimer);
    clearInterval(this.probeTimer);
    if (phase.kind === 'watching') await phase.watcher.cancel().catch(() => {});
    if (phase.kind === 'reading' && phase.confirming) abandon(phase.confirming);
  }
}

/**
 * Stops a watcher without waiting: on a silent path its cancellation would never be answered.
 * Its events are ignored from now on (the view checks which watcher is current).
 */
function abandon(watcher: Watcher): void {
  void watcher.cancel().catch(() => {});
}

/** A one-shot read of the whole cluster state (for radioctl status and tools). */
export async function readClusterState(
  client: Etcd3,
  onInvalid: (key: string, problem: string) => void = () => {},
): Promise<ClusterState> {
  const res = await readPrefix(client, ROOT);
  const builder = new ClusterStateBuilder(onInvalid);
  builder.reset(res.kvs.map((kv) => toChange('put', kv)), res.revision);
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
