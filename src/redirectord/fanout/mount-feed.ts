import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { sameHostPort, type HostPort } from '../../coordination/host-port.js';
import type { ConnectGate } from '../http/connect-gate.js';
import { IcecastAttempt, type AttemptEvents } from '../http/icecast-attempt.js';
import { reattachAnswer } from '../http/reattach-answer.js';
import { ReattachHold } from '../http/reattach-hold.js';
import { parseMetaint } from '../http/icy-reframer.js';
import { plainResponse, withCorsHeaders, type ResponseHead } from '../http/stream-response.js';
import { BurstBuffer } from './burst-buffer.js';
import { ChunkCoalescer } from './chunk-coalescer.js';
import { createFrameSplitter, frameFormat, type FrameSplitter } from './frame-splitter.js';
import { IcyDeframer } from './icy-deframer.js';
import { AudioTail, ReplayTrimmer } from './replay.js';
import { feedRequest } from './listener-head.js';

/** What a feed tells each of its listeners. */
export interface FeedSubscriber {
  /** The upstream answered 200: write the head, then `burst` (Ogg: header pages first). */
  onStart(start: FeedStart): void;
  /** Whole frames (or a new Ogg chain's header pages), in stream order; `metadata` is the current title block. */
  onAudio(bytes: Buffer, metadata: Buffer | undefined): void;
  /** No stream for this listener: `answer` is the complete reply (Icecast's 404, a 502, a 503). */
  onRefused(answer: Buffer): void;
  /** The feed gave up after it had started (its upstream did not come back in time). */
  onEnded(reason: string): void;
}

export interface FeedStart {
  /** Icecast's response head, as received (with icy-metaint). */
  rawHead: Buffer;
  /** Icecast's metaint: the interval a listener asking for metadata gets. */
  metaint: number | undefined;
  burst: readonly Buffer[];
  metadata: Buffer | undefined;
}

export interface MountFeedOptions {
  upstream: HostPort;
  /**
   * The master's Icecast while another node is master (undefined otherwise). Held listeners are
   * fed from it while the local Icecast has nothing to give (a former master whose relay is not
   * started yet, a local Icecast restarting), then moved back to the local Icecast.
   */
  bridge?: () => HostPort | undefined;
  log: Logger;
  metrics: Metrics;
  gate?: ConnectGate;
  headTimeoutMs: number;
  maxHeadBytes: number;
  /**
   * An upstream whose body stays silent this long is lost (re-attached, then given up): a hung
   * Icecast keeps its connections open. Longer than Icecast's own source timeout (10 s), which
   * ends a silent source's listeners first. 15 s.
   */
  bodyIdleTimeoutMs?: number;
  /** How long listeners are held while the upstream is re-established; 0: they are closed at once. */
  reattachWaitMs: number;
  reattachIntervalMs: number;
  retryAfterSeconds: number;
  burstBytes?: number;
  /** Audio is gathered up to this many bytes before it goes to the listeners. 8 KiB. */
  chunkBytes?: number;
  /** ... or for at most this long. 250 ms. */
  chunkDelayMs?: number;
}

/**
 * A feed's life:
 *
 * | state       | meaning                                                       | next                                     |
 * | ----------- | ------------------------------------------------------------- | ---------------------------------------- |
 * | connecting  | first upstream connect (retried on a reset); listeners wait    | streaming (200), refusing (other status), closed (502/503) |
 * | refusing    | Icecast answered non-200: its body is collected for everyone  | closed (when the upstream closes)          |
 * | streaming   | audio flows: deframed, split into frames, kept for the burst  | reattaching (upstream lost), closed       |
 * | reattaching | listeners held without an upstream while `hold` allows; attempts | streaming (same format), closed         |
 * |             | alternate between the local Icecast and the bridge, if any    |                                          |
 * | closed      | no upstream, no listener; the registry forgets the feed        | -                                        |
 *
 * Streaming from the bridge (`via: 'bridge'`), the local Icecast is asked again every second
 * (`homecoming`); its first 200 of the same format takes over, the replay trimmed as after a
 * re-attach, and the bridge connection is closed.
 */
type FeedState =
  | { kind: 'connecting'; attempts: number }
  | { kind: 'refusing'; head: Buffer; body: Buffer[]; bytes: number }
  | { kind: 'streaming'; deframer: IcyDeframer; splitter: FrameSplitter; trimmer: ReplayTrimmer | undefined; via: 'local' | 'bridge' }
  | { kind: 'reattaching'; nextVia: 'local' | 'bridge' }
  | { kind: 'closed' };

const FIRST_CONNECT_ATTEMPTS = 3;
/**
 * After a re-attach, how long audio is held from its first byte while it may be Icecast's
 * replayed burst. The burst comes in one go once it starts (64 KiB on loopback); a fresh mount
 * sends less and waits this long.
 */
const REPLAY_SEARCH_MS = 150;
const MAX_REFUSAL_BODY = 16_384;
/**
 * How long a held feed waits for its local Icecast's answer while a bridge is there to ask next
 * (Icecast answers a listener in milliseconds; a hung one never does).
 */
const LOCAL_ANSWER_WHILE_BRIDGEABLE_MS = 1000;
/** While fed from the bridge, how often the local Icecast is asked whether it has the mount again. */
const HOMECOMING_EVERY_MS = 1000;

/**
 * One upstream connection to the local Icecast for one mount, fanned out to every listener of
 * that mount on this node: Icecast serves one connection, and each listener costs one write per
 * chunk. Everything a listener needs to join at any moment is kept here: the upstream head, the
 * current title and a burst of recent audio starting on a frame boundary.
 */
export class MountFeed implements AttemptEvents {
  private state: FeedState = { kind: 'connecting', attempts: 0 };
  private readonly subscribers = new Set<FeedSubscriber>();
  private attempt: IcecastAttempt | undefined;
  /** The master's Icecast that `attempt` asks when it goes through the bridge; undefined: the local one. */
  private attemptBridge: HostPort | undefined;
  /** While fed from the bridge: the attempt asking the local Icecast again, or its timer. */
  private homecoming: IcecastAttempt | undefined;
  private homecomingTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly hold: ReattachHold;
  private begun = false;
  private readonly burst: BurstBuffer;
  private readonly coalescer: ChunkCoalescer;
  private flushTimer: NodeJS.Timeout | undefined;
  /** The end of what the listeners got, to recognise it in a re-attached upstream's burst. */
  private readonly sentTail = new AudioTail();
  private replayTimer: NodeJS.Timeout | undefined;
  /** When audio last went to the listeners (monotonic ms). */
  private lastSentAt = 0;
  private readonly chunkDelayMs: number;
  /** Set by the first 200: what every listener of this feed is told. */
  private start: Omit<FeedStart, 'burst' | 'metadata'> | undefined;
  private contentType: string | undefined;
  private splitterHeaders: readonly Buffer[] = [];
  private metadata: Buffer | undefined;
  private readonly log: Logger;
  private readonly request: Buffer;
  /** Told once, when the feed closes. */
  onClosed: () => void = () => {};

  constructor(
    readonly mount: string,
    private readonly opts: MountFeedOptions,
  ) {
    this.log = opts.log.child({ feed: mount });
    this.burst = new BurstBuffer(opts.burstBytes);
    this.coalescer = new ChunkCoalescer(opts.chunkBytes ?? 8192);
    this.chunkDelayMs = opts.chunkDelayMs ?? 250;
    this.hold = new ReattachHold(opts.reattachWaitMs, opts.reattachIntervalMs);
    this.request = feedRequest(mount, opts.upstream.host, opts.upstream.port);
  }

  get listeners(): number {
    return this.subscribers.size;
  }

  get closed(): boolean {
    return this.state.kind === 'closed';
  }

  subscribe(s: FeedSubscriber): void {
    if (this.state.kind === 'closed') throw new Error('subscribe to a closed feed');
    this.subscribers.add(s);
    if (!this.begun) {
      // Connected on the first listener, not on construction: a refusal reaches it.
      this.begun = true;
      this.connect();
      return;
    }
    if (this.start && this.state.kind !== 'connecting' && this.state.kind !== 'refusing') s.onStart(this.startFor());
  }

  unsubscribe(s: FeedSubscriber): void {
    this.subscribers.delete(s);
  }

  /** Closes the upstream; listeners still subscribed are ended. */
  close(reason: string): void {
    if (this.state.kind === 'closed') return;
    this.log.debug({ reason }, 'feed closed');
    this.stop();
    for (const s of this.takeSubscribers()) s.onEnded(reason);
  }

  private startFor(): FeedStart {
    return { ...this.start!, burst: [...this.splitterHeaders, ...this.burst.contents()], metadata: this.metadata };
  }

  private connect(): void {
    this.retryTimer = undefined;
    const state = this.state;
    if (state.kind === 'closed') return;
    if (state.kind === 'connecting') state.attempts++;
    const timeoutMs = state.kind === 'reattaching' ? this.hold.attemptTimeout(this.opts.headTimeoutMs) : this.opts.headTimeoutMs;
    const bridge = state.kind === 'reattaching' && state.nextVia === 'bridge' ? this.opts.bridge?.() : undefined;
    // A hung local Icecast must not keep a held feed from its bridge for a whole head timeout.
    const localTimeoutMs =
      state.kind === 'reattaching' && this.opts.bridge?.() !== undefined ? Math.min(timeoutMs, LOCAL_ANSWER_WHILE_BRIDGEABLE_MS) : timeoutMs;
    if (state.kind === 'reattaching') state.nextVia = state.nextVia === 'local' && this.opts.bridge ? 'bridge' : 'local';
    this.attemptBridge = bridge;
    this.attempt = bridge ? this.bridgeAttempt(bridge, timeoutMs) : this.localAttempt(localTimeoutMs);
    this.attempt.start();
  }

  private localAttempt(headTimeoutMs: number): IcecastAttempt {
    return new IcecastAttempt(
      this.opts.upstream,
      this.request,
      { headTimeoutMs, maxHeadBytes: this.opts.maxHeadBytes, gate: this.opts.gate, bodyIdleTimeoutMs: this.opts.bodyIdleTimeoutMs ?? 15_000 },
      this,
    );
  }

  /** Not through the connect gate: it queues connections to the local Icecast only. */
  private bridgeAttempt(to: HostPort, headTimeoutMs: number): IcecastAttempt {
    return new IcecastAttempt(
      to,
      feedRequest(this.mount, to.host, to.port),
      { headTimeoutMs, maxHeadBytes: this.opts.maxHeadBytes, bodyIdleTimeoutMs: this.opts.bodyIdleTimeoutMs ?? 15_000 },
      this,
    );
  }

  /**
   * The master may have moved: a feed fed by the bridge, or asking it, leaves a master that no
   * longer is at once (held, re-attached: the local Icecast first, then the new bridge). A master
   * cut off by a partition sends nothing and closes nothing; the feed would otherwise hold its
   * listeners on silence for an idle or head timeout.
   */
  masterMoved(reason: string): void {
    const attempt = this.attempt;
    if (attempt === undefined || this.attemptBridge === undefined) return;
    if (sameHostPort(this.attemptBridge, this.opts.bridge?.())) return;
    attempt.close();
    this.onFailed(attempt, reason, 'error');
  }

  onHead(attempt: IcecastAttempt, res: ResponseHead, raw: Buffer, rest: Buffer): void {
    if (attempt === this.homecoming) {
      this.homecomingAnswered(attempt, res, rest);
      return;
    }
    if (attempt !== this.attempt) return;
    const state = this.state;
    if (state.kind === 'connecting') {
      if (res.status !== 200) this.state = { kind: 'refusing', head: raw, body: [], bytes: 0 };
      else this.started(res, raw);
    } else if (state.kind === 'reattaching' && !this.reattached(attempt, res)) {
      return;
    }
    if (rest.length > 0) this.onBody(attempt, rest);
  }

  onBody(attempt: IcecastAttempt, chunk: Buffer): void {
    if (attempt !== this.attempt) return;
    const state = this.state;
    if (state.kind === 'streaming') this.ingest(state, chunk);
    else if (state.kind === 'refusing' && state.bytes < MAX_REFUSAL_BODY) {
      state.body.push(chunk.subarray(0, MAX_REFUSAL_BODY - state.bytes));
      state.bytes += chunk.length;
    }
  }

  onFailed(attempt: IcecastAttempt, reason: string, kind: 'timeout' | 'refused' | 'error'): void {
    if (attempt === this.homecoming) {
      this.homecoming = undefined;
      this.scheduleHomecoming();
      return;
    }
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    const state = this.state;
    if (state.kind === 'connecting') this.connectFailed(state.attempts, reason, kind);
    else if (state.kind === 'refusing') this.refuseAll(Buffer.concat([withCorsHeaders(state.head), ...state.body]));
    else if (state.kind === 'streaming') this.upstreamLost(reason);
    else if (state.kind === 'reattaching') this.retryLater(reason);
  }

  private started(res: ResponseHead, raw: Buffer): void {
    this.contentType = res.headers.get('content-type');
    const metaint = parseMetaint(res.headers.get('icy-metaint'));
    this.start = { rawHead: raw, metaint };
    this.state = this.streamingState(metaint);
    this.log.info({ contentType: this.contentType }, 'feed started');
    for (const s of this.subscribers) s.onStart(this.startFor());
  }

  private streamingState(metaint: number | undefined, trimmer?: ReplayTrimmer, via: 'local' | 'bridge' = 'local'): FeedState & { kind: 'streaming' } {
    return { kind: 'streaming', deframer: new IcyDeframer(metaint), splitter: createFrameSplitter(frameFormat(this.contentType)), trimmer, via };
  }

  /** Upstream body in: audio split into frames goes to the burst and every listener. */
  private ingest(state: FeedState & { kind: 'streaming' }, chunk: Buffer): void {
    const { audio, metadata } = state.deframer.push(chunk);
    for (const block of metadata) {
      if (this.metadata === undefined || !block.equals(this.metadata)) this.metadata = block;
    }
    for (const piece of audio) {
      if (!state.trimmer) this.split(state, piece);
      else {
        this.replayTimer ??= setTimeout(() => this.state === state && this.replayChecked(state), REPLAY_SEARCH_MS);
        for (const fresh of state.trimmer.push(piece)) this.split(state, fresh);
        if (!state.trimmer.searching) this.replayChecked(state);
      }
    }
  }

  private split(state: FeedState & { kind: 'streaming' }, piece: Buffer): void {
    for (const out of state.splitter.push(piece)) {
      if (out.kind === 'headers') {
        // A new Ogg chain: what came before goes first; its headers replace the old ones for
        // new listeners, and the burst of the old chain would decode against the wrong headers.
        this.flush();
        this.burst.clear();
        this.sentTail.clear();
        this.splitterHeaders = state.splitter.headers;
        this.dispatch(out.bytes);
        continue;
      }
      this.sentTail.push(out.bytes);
      const chunk = this.coalescer.push(out.bytes);
      if (chunk) this.send(chunk);
      // Audio after a quiet spell (a failover, a source's return) goes out at once: gathering it
      // would add the flush interval to a silence the listeners are already hearing.
      else if (performance.now() - this.lastSentAt > this.chunkDelayMs) this.flush();
      else this.flushTimer ??= setTimeout(() => this.flush(), this.chunkDelayMs);
    }
  }

  /** The re-attached upstream is past any replay: audio goes straight to the splitter again. */
  private replayChecked(state: FeedState & { kind: 'streaming' }): void {
    const trimmer = state.trimmer;
    if (!trimmer) return;
    state.trimmer = undefined;
    clearTimeout(this.replayTimer);
    this.replayTimer = undefined;
    for (const fresh of trimmer.release()) this.split(state, fresh);
    if (trimmer.replayedBytes > 0) this.log.info({ bytes: trimmer.replayedBytes }, "dropped Icecast's replay of audio the listeners had");
  }

  /** Sends what the coalescer gathered, if anything. */
  private flush(): void {
    const chunk = this.coalescer.take();
    if (chunk) this.send(chunk);
    else this.clearFlush();
  }

  private send(chunk: Buffer): void {
    this.lastSentAt = performance.now();
    // Audio gathered before a loss and flushed during the hold is not audio flowing again.
    if (this.state.kind === 'streaming') this.hold.audioFlowed();
    this.clearFlush();
    this.burst.push(chunk);
    this.dispatch(chunk);
  }

  private dispatch(bytes: Buffer): void {
    for (const s of this.subscribers) s.onAudio(bytes, this.metadata);
  }

  private clearFlush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** A re-attach answered: the same format continues, on a frame boundary (a fresh splitter). */
  private reattached(attempt: IcecastAttempt, res: ResponseHead): boolean {
    const verdict = reattachAnswer(res, this.contentType);
    if (verdict.kind !== 'continue') {
      attempt.close();
      // Only the local Icecast's answer may end the stream: the bridge is a stopgap.
      if (verdict.kind === 'retry' || this.attemptBridge !== undefined) this.onFailed(attempt, verdict.reason, 'error');
      else this.giveUp(verdict.reason);
      return false;
    }
    const via = this.attemptBridge ? 'bridge' : 'local';
    this.streamFrom(parseMetaint(res.headers.get('icy-metaint')), via);
    this.opts.metrics.increment('stream_proxy.reattach');
    if (via === 'bridge') {
      this.opts.metrics.increment('stream_proxy.bridged');
      this.log.info({ listeners: this.subscribers.size }, "feed bridged to the master's Icecast while the local one has nothing");
      this.scheduleHomecoming();
    } else {
      this.log.info({ listeners: this.subscribers.size }, 'feed re-attached to its upstream');
    }
    return true;
  }

  /** A new upstream continues the stream: a fresh frame splitter, Icecast's replay trimmed. */
  private streamFrom(metaint: number | undefined, via: 'local' | 'bridge'): void {
    this.state = this.streamingState(metaint, new ReplayTrimmer(this.sentTail.value), via);
    clearTimeout(this.replayTimer);
    this.replayTimer = undefined;
  }

  private scheduleHomecoming(): void {
    if (this.state.kind !== 'streaming' || this.state.via !== 'bridge' || this.homecoming || this.homecomingTimer) return;
    this.homecomingTimer = setTimeout(() => {
      this.homecomingTimer = undefined;
      if (this.state.kind !== 'streaming' || this.state.via !== 'bridge') return;
      this.homecoming = this.localAttempt(this.opts.headTimeoutMs);
      this.homecoming.start();
    }, HOMECOMING_EVERY_MS);
  }

  /** The local Icecast answered while the bridge feeds the listeners: back home on a 200 of the same format. */
  private homecomingAnswered(probe: IcecastAttempt, res: ResponseHead, rest: Buffer): void {
    this.homecoming = undefined;
    const state = this.state;
    if (state.kind !== 'streaming' || state.via !== 'bridge' || reattachAnswer(res, this.contentType).kind !== 'continue') {
      probe.close();
      this.scheduleHomecoming();
      return;
    }
    this.attempt?.close();
    this.attempt = probe;
    this.attemptBridge = undefined;
    this.streamFrom(parseMetaint(res.headers.get('icy-metaint')), 'local');
    this.log.info({ listeners: this.subscribers.size }, 'feed back on the local Icecast');
    if (rest.length > 0) this.onBody(probe, rest);
  }

  private dropHomecoming(): void {
    clearTimeout(this.homecomingTimer);
    this.homecomingTimer = undefined;
    this.homecoming?.close();
    this.homecoming = undefined;
  }

  private connectFailed(attempts: number, reason: string, kind: 'timeout' | 'refused' | 'error'): void {
    if (kind === 'refused') {
      this.opts.metrics.increment('stream_proxy.queue_refused', this.subscribers.size);
      this.log.warn({ reason }, 'feed refused: the connect queue to Icecast is full or too slow');
      this.refuseAll(
        plainResponse(503, 'The stream server is busy; try again shortly.', [`Retry-After: ${this.opts.retryAfterSeconds}`, ...CORS]),
      );
      return;
    }
    if (kind === 'error' && attempts < FIRST_CONNECT_ATTEMPTS) {
      // Icecast listens with a backlog of 5: a connection can be reset before it is accepted.
      this.retryTimer = setTimeout(() => this.connect(), 100 * attempts);
      return;
    }
    this.opts.metrics.increment('stream_proxy.upstream_error');
    this.log.warn({ reason }, 'local Icecast unreachable for a feed');
    this.refuseAll(plainResponse(502, 'The stream server is unreachable.', CORS));
  }

  private upstreamLost(reason: string): void {
    if (!this.hold.enabled) {
      this.giveUp(reason);
      return;
    }
    // The bridge is gone: a homecoming question still open would hold a connection to the local
    // Icecast (and a connect-gate slot) for a head timeout, next to the re-attach's own.
    this.dropHomecoming();
    // Audio gathered from the lost upstream goes out now, while it still counts as flowing: left
    // for the flush timer, it would go out after a quick re-attach and restart the wait.
    this.flush();
    this.hold.begin();
    this.state = { kind: 'reattaching', nextVia: 'local' };
    this.log.info({ reason, listeners: this.subscribers.size }, 'upstream lost; holding the listeners while re-attaching');
    this.retryLater(reason);
  }

  private retryLater(reason: string): void {
    if (!this.hold.mayRetry()) {
      this.giveUp(reason);
      return;
    }
    // The local Icecast just said no: the bridge is asked at once, the pause comes after the pair.
    const state = this.state;
    const bridgeNext = state.kind === 'reattaching' && state.nextVia === 'bridge' && this.opts.bridge?.() !== undefined;
    this.retryTimer = setTimeout(() => this.connect(), bridgeNext ? 0 : this.hold.intervalMs);
  }

  private giveUp(reason: string): void {
    this.opts.metrics.increment('stream_proxy.reattach_failed');
    this.log.info({ reason }, 'no upstream came back; closing the feed and its listeners');
    this.close(reason);
  }

  private refuseAll(answer: Buffer): void {
    this.stop();
    for (const s of this.takeSubscribers()) s.onRefused(answer);
  }

  private takeSubscribers(): FeedSubscriber[] {
    const all = [...this.subscribers];
    this.subscribers.clear();
    return all;
  }

  private stop(): void {
    if (this.state.kind === 'closed') return;
    this.state = { kind: 'closed' };
    clearTimeout(this.retryTimer);
    clearTimeout(this.replayTimer);
    this.dropHomecoming();
    this.clearFlush();
    this.coalescer.take();
    this.attempt?.close();
    this.attempt = undefined;
    this.burst.clear();
    this.onClosed();
  }
}

const CORS = ['Access-Control-Allow-Origin: *'];
