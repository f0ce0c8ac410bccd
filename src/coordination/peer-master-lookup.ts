import http from 'node:http';
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import { errorMessage } from '../common/errors.js';
import type { ClusterState } from './cluster-state.js';
import { followState, type ClusterStateSource } from './cluster-view.js';
import { isLoaded } from './cluster-state.js';
import { reachableAddress } from './host-port.js';
import { monotonicNow } from './clock.js';
import { MASTER_REPORT_MAX_BYTES, MASTER_REPORT_PATH, parseMasterReport } from './master-report.js';
import { choosePeerMaster, type PeerAnswer, type PeerMaster } from './peer-master-choice.js';

/** Pause between rounds of questions while this node is cut from etcd. */
const ASK_EVERY_MS = 500;
/** One peer's answer must come within this, or that peer is left out of the round. */
const ASK_TIMEOUT_MS = 800;
/**
 * A master learned from peers is followed this long after the last round that confirmed it;
 * then, with no peer in touch with etcd answering, this node falls back to its own last view.
 */
const FOLLOW_FOR_MS = 3000;

/*
 * States (the own view's `connected` flag drives the first two transitions):
 *
 *   idle       | the own view loses etcd                   | asking
 *   asking,    | the own view is in touch with etcd again  | idle (etcd's word is the truth)
 *     following|                                           |
 *   asking     | a round brings a believable report        | following
 *   following  | a round brings a believable report        | following (refreshed)
 *              | no believable report for FOLLOW_FOR_MS    | asking
 *   any        | stop()                                    | stopped
 */
type State =
  | { name: 'idle' }
  | { name: 'asking'; timer: NodeJS.Timeout }
  | { name: 'following'; timer: NodeJS.Timeout; chosen: PeerMaster; confirmedAt: number }
  | { name: 'stopped' };

export interface PeerMasterLookupOptions {
  view: ClusterStateSource;
  nodeName: string;
  ownAddresses: readonly string[];
  /** The front door's port, the same on every node. */
  httpPort: number;
  log: Logger;
  metrics: Metrics;
  /** Asks one peer; injectable for tests. The signal fires when the lookup stops. */
  ask?: (address: string, port: number, signal: AbortSignal) => Promise<string>;
}

/**
 * While this node's view is cut from etcd (a partition that leaves its peers and listeners
 * reachable), asks the peers' front doors who the master is. A master cut from etcd but not from
 * its sources would otherwise keep them on its fenced Icecast until the partition heals, while
 * the rest of the cluster, which elected a new master, hears silence all that time; and its own
 * Icecast would not relay the new master. redirectord follows the answer with the sources and
 * relays it holds, radiod with the relays it renders (peer-informed-view.ts); the election never
 * does: it stays etcd's alone.
 */
export class PeerMasterLookup {
  #state: State = { name: 'idle' };
  #roundOut = false;
  readonly #listeners = new Set<() => void>();
  readonly #ask: (address: string, port: number, signal: AbortSignal) => Promise<string>;
  /** Aborts every question still out when the lookup stops. */
  readonly #stopping = new AbortController();
  #unfollowView: (() => void) | undefined;

  constructor(private readonly o: PeerMasterLookupOptions) {
    this.#ask = o.ask ?? askPeer;
  }

  start(): void {
    this.#unfollowView = followState(this.o.view, () => this.#onView(this.o.view.current()));
  }

  stop(): void {
    this.#unfollowView?.();
    this.#enter({ name: 'stopped' });
    this.#stopping.abort();
  }

  /** The master the peers report, while one is followed; undefined otherwise (the own view stands). */
  current(): PeerMaster | undefined {
    return this.#state.name === 'following' ? this.#state.chosen : undefined;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #onView(state: ClusterState): void {
    const cut = isLoaded(state) && !state.connected;
    if (!cut && (this.#state.name === 'asking' || this.#state.name === 'following')) {
      this.o.log.info('etcd answers again: the master is etcd\'s word again, not the peers\'');
      this.#enter({ name: 'idle' });
    } else if (cut && this.#state.name === 'idle') {
      this.o.log.warn('etcd unreachable: asking the peers who the master is');
      this.#enter({ name: 'asking', timer: this.#schedule(0) });
    }
  }

  #schedule(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => void this.#runRound(), delayMs);
    timer.unref();
    return timer;
  }

  async #runRound(): Promise<void> {
    // A round still out (the view flapped) schedules the next one when it ends.
    if (this.#roundOut) return;
    this.#roundOut = true;
    const answers = await this.#askEveryPeer().finally(() => (this.#roundOut = false));
    const st = this.#state;
    if (st.name !== 'asking' && st.name !== 'following') return;
    const chosen = choosePeerMaster(answers, this.o.view.current());
    // Monotonic: a wall clock stepped during a partition neither ends nor prolongs the following.
    const t = monotonicNow();
    const timer = this.#schedule(ASK_EVERY_MS);
    const fresh = st.name === 'following' && t - st.confirmedAt < FOLLOW_FOR_MS;
    if (chosen && fresh && chosen.revision < st.chosen.revision) {
      // A lagging peer answered where the fresher one did not: what is followed stays, unconfirmed.
      this.#enter({ ...st, timer });
    } else if (chosen) {
      this.#enter({ name: 'following', timer, chosen, confirmedAt: t });
    } else if (fresh) {
      this.#enter({ ...st, timer });
    } else {
      this.#enter({ name: 'asking', timer });
    }
  }

  async #askEveryPeer(): Promise<PeerAnswer[]> {
    const state = this.o.view.current();
    const peers = [...state.nodes.values()].filter((n) => n.name !== this.o.nodeName);
    const answers = await Promise.all(
      peers.map(async (peer): Promise<PeerAnswer | undefined> => {
        const address = reachableAddress(peer.addresses, this.o.ownAddresses);
        if (address === undefined) return undefined;
        try {
          return { asked: peer.name, report: parseMasterReport(await this.#ask(address, this.o.httpPort, this.#stopping.signal)) };
        } catch (err) {
          this.o.log.debug({ peer: peer.name, err: errorMessage(err) }, 'peer did not say who the master is');
          return undefined;
        }
      }),
    );
    return answers.filter((a): a is PeerAnswer => a !== undefined);
  }

  #enter(next: State): void {
    const prev = this.#state;
    if (prev.name === 'asking' || prev.name === 'following') {
      if (!('timer' in next) || next.timer !== prev.timer) clearTimeout(prev.timer);
    }
    this.#state = next;
    if (next.name === 'following' && !sameChoice(prev, next.chosen)) {
      this.o.metrics.increment('peer_master.followed');
      this.o.log.warn(
        { master: next.chosen.master?.name ?? null, from: next.chosen.from, revision: String(next.chosen.revision) },
        'etcd unreachable: following the master that peers in touch with etcd report',
      );
    }
    if (followedMaster(prev) !== followedMaster(next)) for (const l of this.#listeners) l();
  }
}

function followedMaster(st: State): string | undefined {
  return st.name === 'following' ? JSON.stringify(st.chosen.master ?? null) : undefined;
}

function sameChoice(prev: State, chosen: PeerMaster): boolean {
  return prev.name === 'following' && JSON.stringify(prev.chosen.master ?? null) === JSON.stringify(chosen.master ?? null);
}

/**
 * One GET of a peer's report, bounded in time and size, on a connection of its own: a peer that
 * accepts and never answers must not leave a socket behind once the question is given up (a
 * pooled client kept such sockets open seconds after the abort).
 */
function askPeer(address: string, port: number, stopping: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: address, port, path: MASTER_REPORT_PATH, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        giveUp(new Error(`answered ${res.statusCode ?? 'nothing'}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MASTER_REPORT_MAX_BYTES) giveUp(new Error(`answer over ${MASTER_REPORT_MAX_BYTES} bytes`));
        else chunks.push(chunk);
      });
      res.on('end', () => {
        settle();
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      res.on('error', giveUp);
    });
    // A plain timer, not AbortSignal.timeout: combined with AbortSignal.any, Node 20 may collect
    // the timeout signal before it fires, and the question then hangs as long as the peer does.
    const timer = setTimeout(() => giveUp(new Error(`no answer within ${ASK_TIMEOUT_MS} ms`)), ASK_TIMEOUT_MS);
    const onStop = (): void => giveUp(new Error('lookup stopped'));
    stopping.addEventListener('abort', onStop, { once: true });
    if (stopping.aborted) onStop();
    req.on('error', giveUp);
    function settle(): void {
      clearTimeout(timer);
      stopping.removeEventListener('abort', onStop);
    }
    function giveUp(err: Error): void {
      settle();
      req.destroy();
      reject(err);
    }
  });
}
