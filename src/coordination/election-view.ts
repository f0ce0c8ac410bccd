import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { ThrottledLog, type Logger } from '../common/logger.js';
import { errorMessage } from '../common/errors.js';
import { ELECTION_ROOT } from './keys.js';
import { ElectionTable, type CandidateChange } from './election-table.js';

/**
 * The watched, in-memory candidates of every election in the cluster, for all of this
 * process's campaigns: one read of the election root, then one watch from the read's revision
 * + 1. While idle it costs etcd nothing (no reads, one quiet watch stream), however many
 * elections there are. When the watch fails (compaction), everything is read again.
 */
export class ElectionView {
  private readonly table = new ElectionTable();
  private readonly throttled: ThrottledLog;
  private readonly listeners = new Set<(elections: ReadonlySet<string>) => void>();
  private watcher: Watcher | undefined;
  private syncing: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly log: Logger,
  ) {
    this.throttled = new ThrottledLog(log);
  }

  get revision(): bigint {
    return this.table.revision;
  }

  leader(election: string): string | undefined {
    return this.table.leader(election);
  }

  has(key: string): boolean {
    return this.table.has(key);
  }

  candidateCount(election: string): number {
    return this.table.candidateCount(election);
  }

  /** Called with the elections whose candidates may have changed. */
  onChange(listener: (elections: ReadonlySet<string>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    void this.resync();
  }

  private resync(): Promise<void> {
    this.syncing ??= this.resyncLoop().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  private async resyncLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.cancelWatcher();
        const res = await this.client.getAll().prefix(ELECTION_ROOT).exec();
        const revision = BigInt(res.header.revision);
        const touched = this.table.reset(res.kvs.map((kv) => toChange('put', kv)), revision);
        await this.watchFrom(revision + 1n);
        this.throttled.clear('resync');
        this.notify(touched);
        return;
      } catch (err) {
        this.throttled.warn('resync', { err: errorMessage(err) }, 'cannot read the elections from etcd; retrying');
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  private async watchFrom(revision: bigint): Promise<void> {
    const watcher = await this.client.watch().prefix(ELECTION_ROOT).startRevision(revision.toString()).create();
    if (this.stopped) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('data', (res) => {
      const changes = res.events.map((e) => toChange(e.type === 'Delete' ? 'delete' : 'put', e.kv));
      this.notify(this.table.apply(changes, BigInt(res.header.revision)));
    });
    watcher.on('error', (err) => {
      if (watcher !== this.watcher) return;
      this.log.warn({ err: errorMessage(err) }, 'election watch failed (compacted?); reading the elections again');
      this.watcher = undefined;
      void this.resync();
    });
  }

  private notify(elections: ReadonlySet<string>): void {
    if (elections.size === 0 || this.stopped) return;
    for (const l of this.listeners) {
      try {
        l(elections);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'election listener failed');
      }
    }
  }

  private async cancelWatcher(): Promise<void> {
    const w = this.watcher;
    this.watcher = undefined;
    await w?.cancel().catch(() => {});
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.cancelWatcher();
  }
}

function toChange(type: 'put' | 'delete', kv: IKeyValue): CandidateChange {
  return { type, key: kv.key.toString(), createRevision: kv.create_revision };
}
