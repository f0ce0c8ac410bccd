import type { Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { ListenerSession } from '../access/access-log-line.js';
import type { CurrentListener } from '../access/listclients.js';
import { headerText, type RequestHead } from '../http/request-head.js';
import { answerAndClose } from '../http/sockets.js';
import { plainAddress } from '../http/stream-proxy.js';
import type { FeedStart, FeedSubscriber } from './mount-feed.js';
import { IcyFramer } from './icy-framer.js';
import { asksForMetadata, listenerHead } from './listener-head.js';
import { chunkVerdict, type SlowPolicy } from './slow-listener.js';
import { monotonicNow } from '../../coordination/clock.js';

export interface FanoutListenerOptions {
  /** The mount it listens to (a path, no query). */
  mount: string;
  log: Logger;
  metrics: Metrics;
  slow: SlowPolicy;
  /** Told once, when the session ended (the access log). */
  onSessionEnd?: (session: ListenerSession) => void;
  /** Told once, when the listener is gone: it leaves its feed. */
  onGone: (listener: FanoutListener) => void;
}

/**
 * One listener of a mount's feed:
 *
 * | state     | meaning                                                     | next                          |
 * | --------- | ----------------------------------------------------------- | ----------------------------- |
 * | waiting   | subscribed, the feed has no upstream answer yet             | streaming, ended (refused)    |
 * | streaming | head and burst written; every chunk of the feed follows     | ended                         |
 * | ended     | closed or closing; the feed no longer knows it              | -                             |
 *
 * Its FIN only says it has nothing more to send (a request sent with a half-close still gets
 * the stream); it is gone when a write fails or the socket closes. `skippingSince` is set while
 * it is too slow for the stream (see slow-listener.ts).
 */
type ListenerState =
  | { kind: 'waiting' }
  | { kind: 'streaming'; framer: IcyFramer | undefined; skippingSince: number | undefined }
  | { kind: 'ended' };

/** Ids for listclients, unique in this process (Icecast numbers its clients the same way). */
let lastListenerId = 0;

export class FanoutListener implements FeedSubscriber {
  readonly closed: Promise<void>;
  readonly id = ++lastListenerId;
  private state: ListenerState = { kind: 'waiting' };
  private resolveClosed!: () => void;
  private readonly startedAt = Date.now();
  private status = 0;
  private readonly wantsMetadata: boolean;
  /** Read as UTF-8 once, not on every listclients request (28,000 heads of 16 KiB each). */
  private readonly userAgent: string | undefined;
  private readonly referer: string | undefined;

  constructor(
    private readonly client: Socket,
    private readonly head: RequestHead,
    private readonly target: string,
    private readonly opts: FanoutListenerOptions,
  ) {
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
    this.wantsMetadata = head.method === 'GET' && asksForMetadata(head.headers.get('icy-metadata'));
    this.userAgent = headerText(head.headers.get('user-agent'));
    this.referer = headerText(head.headers.get('referer'));
    if (opts.onSessionEnd) void this.closed.then(() => this.reportEnd());
    client.setNoDelay(true);
    client.setKeepAlive(true, 60_000);
    client.on('error', () => this.finish());
    client.once('close', () => this.finish());
    // Reading keeps EOF and resets detectable; further bytes (a pipelined request) are ignored.
    client.on('data', () => {});
    client.resume();
  }

  close(_reason?: string): void {
    this.finish();
  }

  /** The listener as listclients shows it; undefined until its stream started (and once it ended). */
  current(): CurrentListener | undefined {
    if (this.state.kind !== 'streaming') return undefined;
    return {
      id: this.id,
      mount: this.opts.mount,
      address: plainAddress(this.client.remoteAddress ?? '-'),
      userAgent: this.userAgent,
      referer: this.referer,
      since: this.startedAt,
      bytes: this.client.bytesWritten,
    };
  }

  onStart(start: FeedStart): void {
    if (this.state.kind !== 'waiting') return;
    this.status = 200;
    const framer = this.wantsMetadata && start.metaint !== undefined ? new IcyFramer(start.metaint) : undefined;
    this.client.write(listenerHead(start.rawHead, framer !== undefined));
    if (this.head.method === 'HEAD') {
      this.endGracefully();
      return;
    }
    this.state = { kind: 'streaming', framer, skippingSince: undefined };
    this.client.cork();
    for (const chunk of start.burst) this.write(chunk, start.metadata);
    this.client.uncork();
  }

  onAudio(bytes: Buffer, metadata: Buffer | undefined): void {
    const state = this.state;
    if (state.kind !== 'streaming') return;
    const verdict = chunkVerdict(this.opts.slow, this.client.writableLength, state.skippingSince, monotonicNow());
    if (verdict.kind === 'drop') {
      this.opts.metrics.increment('stream_proxy.slow_dropped');
      this.opts.log.info({ queued: this.client.writableLength }, 'listener dropped: it could not keep up');
      this.finish();
      return;
    }
    if (verdict.kind === 'skip') {
      if (state.skippingSince === undefined) this.opts.metrics.increment('stream_proxy.slow_skipped');
      state.skippingSince = verdict.since;
      return;
    }
    state.skippingSince = undefined;
    this.write(bytes, metadata);
  }

  onRefused(answer: Buffer): void {
    if (this.state.kind === 'ended') return;
    this.status = Number(answer.subarray(9, 12).toString('latin1')) || 0;
    this.state = { kind: 'ended' };
    this.settle();
    answerAndClose(this.client, answer);
  }

  onEnded(reason: string): void {
    if (this.state.kind === 'ended') return;
    this.opts.log.debug({ reason }, 'stream ended');
    this.endGracefully();
  }

  private write(bytes: Buffer, metadata: Buffer | undefined): void {
    const framer = (this.state as ListenerState & { kind: 'streaming' }).framer;
    if (framer === undefined) {
      this.client.write(bytes);
      return;
    }
    const pieces = framer.frame(bytes, metadata);
    if (pieces.length === 1) {
      this.client.write(pieces[0]!);
      return;
    }
    this.client.cork();
    for (const p of pieces) this.client.write(p);
    this.client.uncork();
  }

  /** Ends the listener after its pending bytes are flushed (5 s at most). */
  private endGracefully(): void {
    if (this.state.kind === 'ended') return;
    this.state = { kind: 'ended' };
    this.opts.onGone(this);
    this.settle();
    const client = this.client;
    client.end();
    const t = setTimeout(() => client.destroy(), 5000);
    t.unref();
  }

  private finish(): void {
    if (this.state.kind !== 'ended') {
      this.state = { kind: 'ended' };
      this.opts.onGone(this);
      this.settle();
    }
    this.client.destroy();
  }

  /** `closed` resolves with the socket's close. */
  private settle(): void {
    if (this.client.destroyed) this.resolveClosed();
    else this.client.once('close', () => this.resolveClosed());
  }

  private reportEnd(): void {
    this.opts.onSessionEnd?.({
      address: plainAddress(this.client.remoteAddress ?? '-'),
      method: this.head.method,
      target: this.target,
      version: this.head.version,
      status: this.status,
      bytes: this.client.bytesWritten,
      referer: this.referer,
      userAgent: this.userAgent,
      startedAt: this.startedAt,
      endedAt: Date.now(),
    });
  }
}
