import { connect } from 'node:net';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { errorMessage } from '../common/errors.js';
import { isLoaded, type ClusterState } from '../coordination/cluster-state.js';
import { masterIcecast, type HostPort } from '../coordination/host-port.js';
import type { Deposition } from '../coordination/deposition.js';
import { ProbeStreak, type ProbeVerdict } from './probe-streak.js';

export interface MasterWatchOptions {
  current: () => ClusterState;
  deposition: Deposition;
  /** True while this node is master or holds first place: it never judges itself. */
  leadsOrLed: () => boolean;
  nodeName: string;
  ownAddresses: readonly string[];
  log: Logger;
  metrics: Metrics;
  /** Pause between probes while the master answers. 200 ms. */
  intervalMs?: number;
  /** A probe that takes longer failed. 250 ms (a connect on a LAN takes well under 1 ms). */
  timeoutMs?: number;
  /** Failed probes in a row that make the master dead from here. 2. */
  failuresToSuspect?: number;
}

/**
 * Probes the master's Icecast from this node (a TCP connect, refused or unanswered is a
 * failure) and, when it looks dead from here, says so through the Deposition, which revokes the
 * master's lease once a majority agrees. The probe does not touch etcd, so etcd's own hiccups
 * (slow answers, a raft election) never make a live master look dead; a master that only its
 * peers cannot reach is worthless to their relays anyway.
 */
export class MasterWatch {
  private readonly streak: ProbeStreak;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly intervalMs: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: MasterWatchOptions) {
    this.streak = new ProbeStreak(opts.failuresToSuspect ?? 2);
    this.intervalMs = opts.intervalMs ?? 200;
    this.timeoutMs = opts.timeoutMs ?? 250;
  }

  start(): void {
    this.schedule(this.intervalMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.opts.deposition.withdraw();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.tick()
        // A failed probe is checked again at once: every pause spent doubting is silence for
        // the listeners if the master really is dead, and a second connect is cheap.
        .then((verdict) => this.schedule(verdict === 'doubtful' ? 0 : this.intervalMs))
        .catch((err: unknown) => {
          this.opts.log.warn({ err: errorMessage(err) }, 'master probe failed unexpectedly');
          this.schedule(this.intervalMs);
        });
    }, ms);
  }

  private async tick(): Promise<ProbeVerdict | undefined> {
    const target = this.target();
    if (this.streak.follow(target?.key)) await this.opts.deposition.withdraw();
    if (!target) return undefined;
    const answer = await probe(target.at, this.timeoutMs);
    if (this.stopped || answer === 'inconclusive') return undefined;
    const verdict = this.streak.record(answer === 'up');
    if (verdict === 'healthy') {
      await this.opts.deposition.withdraw();
      return verdict;
    }
    this.opts.metrics.increment('master_probe.failed');
    if (verdict !== 'dead') return verdict;
    try {
      const state = this.opts.current();
      const outcome = await this.opts.deposition.suspect(target.key, target.name, new Set(state.nodes.keys()));
      if (outcome === 'deposed') this.opts.metrics.increment('master_deposed');
    } catch (err) {
      this.opts.log.warn({ err: errorMessage(err) }, 'cannot report the master dead to etcd');
    }
    return verdict;
  }

  /** The master to probe, unless this node leads, or its view is not live enough to act on. */
  private target(): { key: string; name: string; at: HostPort } | undefined {
    const state = this.opts.current();
    if (!isLoaded(state) || !state.connected || this.opts.leadsOrLed()) return undefined;
    const { master, masterKey } = state;
    if (!master || !masterKey || master.name === this.opts.nodeName) return undefined;
    const at = masterIcecast(master, this.opts.ownAddresses);
    return at ? { key: masterKey, name: master.name, at } : undefined;
  }
}

/**
 * A TCP connect: up once established, down if refused, failed or not done within `timeoutMs`.
 * Inconclusive when this process itself was stalled (the timer fired far too late): the connect
 * may well have succeeded meanwhile, and a busy node must not call a healthy master dead.
 */
function probe(at: HostPort, timeoutMs: number): Promise<'up' | 'down' | 'inconclusive'> {
  return new Promise((resolve) => {
    const startedAt = performance.now();
    const socket = connect({ host: at.host, port: at.port });
    const done = (answer: 'up' | 'down' | 'inconclusive') => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => done(performance.now() - startedAt > timeoutMs * 1.5 ? 'inconclusive' : 'down'), timeoutMs);
    socket.once('connect', () => done('up'));
    socket.once('error', () => done('down'));
  });
}
