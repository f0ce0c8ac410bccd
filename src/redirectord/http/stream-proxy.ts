import type { Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { isContinuable } from './classify.js';
import { IcecastAttempt, type AttemptEvents } from './icecast-attempt.js';
import { reattachAnswer } from './reattach-answer.js';
import { ReattachHold } from './reattach-hold.js';
import { IcyReframer, parseMetaint } from './icy-reframer.js';
import type { RequestHead } from './request-head.js';
import { sameHostPort, type HostPort } from '../../coordination/host-port.js';
import { answerAndClose } from './sockets.js';
import { plainResponse, withCorsHeaders, type ResponseHead } from './stream-response.js';

export interface StreamProxyOptions {
  /**
   * Where the stream comes from: the local Icecast, or (for a relay) whichever Icecast holds the
   * mount right now, asked again at every (re)connect; undefined while there is none.
   */
  upstream: HostPort | (() => HostPort | undefined);
  log: Logger;
  metrics: Metrics;
  /** Upstream connect plus response head; 10 s. */
  headTimeoutMs?: number;
  maxHeadBytes?: number;
  /** How long a listener is held open while its upstream is re-established; 0 disables. 20 s. */
  reattachWaitMs?: number;
  /** Pause between re-attach attempts; 250 ms. */
  reattachIntervalMs?: number;
}

/** Headers that claim who the client is: only this proxy may say that, never the client. */
const FORWARDING_HEADERS = new Set(['x-forwarded-for', 'forwarded', 'x-real-ip']);

/**
 * The request bytes for Icecast: the listener's head with the request-target changed
 * (`/_stream/x.mp3?q` -> `/x.mp3?q`), any forwarding header the listener sent dropped, and
 * `X-Forwarded-For` set to the listener's own address when it is known. Host, Icy-MetaData, Range
 * and the rest stay as sent: Icecast builds playlist URLs from Host and adds icy-metaint only
 * when asked. (Debian's Icecast 2.4.4 ignores X-Forwarded-For; redirectord's access log records
 * the address. An Icecast that honours it gets the truth, never the listener's claim.)
 */
export function upstreamRequest(request: Buffer, head: RequestHead, upstreamTarget: string, clientAddress?: string): Buffer {
  const firstLineEnd = head.fields[0]?.start ?? request.indexOf(0x0a, head.targetEnd) + 1;
  const lastLineEnd = head.fields.at(-1)?.end ?? firstLineEnd;
  const kept = head.fields.filter((f) => !FORWARDING_HEADERS.has(f.name)).map((f) => request.subarray(f.start, f.end));
  const forwarded = clientAddress ? [Buffer.from(`X-Forwarded-For: ${plainAddress(clientAddress)}\r\n`, 'latin1')] : [];
  return Buffer.concat([
    request.subarray(0, head.targetStart),
    Buffer.from(upstreamTarget, 'latin1'),
    request.subarray(head.targetEnd, firstLineEnd),
    ...kept,
    ...forwarded,
    request.subarray(lastLineEnd, head.headEnd),
  ]);
}

/** `::ffff:192.0.2.1` -> `192.0.2.1`: how logs and Icecast write an IPv4 client. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * A listener's life on the stream proxy:
 *
 * | state       | meaning                                                         | next                                  |
 * | ----------- | --------------------------------------------------------------- | ------------------------------------- |
 * | connecting  | no answer yet: queued, connecting, or retrying a failed connect  | streaming (head), ended (502, 503, error) |
 * | streaming   | the listener has its head; the body flows from `attempt`        | reattaching (upstream lost, continuable), ended |
 * | reattaching | held without an upstream while `hold` allows, retrying every interval | streaming (same format), ended        |
 * | ended       | the listener is being closed or is gone                         | -                                     |
 *
 * The listener's own socket: its FIN only says it has nothing more to send (a request sent
 * with a half-close still gets the stream); it is gone when a write fails or the socket closes.
 */
type State =
  | { kind: 'connecting'; attempts: number }
  | { kind: 'streaming' }
  | { kind: 'reattaching' }
  | { kind: 'ended' };

/** Connection attempts for a listener's first upstream before it is answered 502. */
const FIRST_CONNECT_ATTEMPTS = 3;

/**
 * Raw proxy of one Icecast relay connection (`/_relay<mount>`, the local Icecast pulling from
 * the master; listeners are fanned out by src/redirectord/fanout instead): Icecast's response
 * head gets CORS headers, the close-delimited body (with any ICY metadata) flows through with
 * socket backpressure only.
 * When Icecast drops an MP3/Ogg listener (its relay lost the master) the listener is kept
 * and re-attached to a fresh upstream response, re-framed to its original metadata cycle.
 */
export class StreamSession implements AttemptEvents {
  readonly closed: Promise<void>;
  private state: State = { kind: 'connecting', attempts: 0 };
  private attempt: IcecastAttempt | undefined;
  /** Where `attempt` connects. */
  private attemptTarget: HostPort | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private continuable = false;
  private contentType: string | undefined;
  private reframer: IcyReframer | undefined;
  private resolveClosed!: () => void;
  private readonly request: Buffer;
  private readonly log: Logger;
  private readonly headTimeoutMs: number;
  private readonly hold: ReattachHold;

  constructor(
    private readonly client: Socket,
    request: Buffer,
    private readonly head: RequestHead,
    upstreamTarget: string,
    private readonly opts: StreamProxyOptions,
  ) {
    this.closed = new Promise<void>((r) => (this.resolveClosed = r));
    this.request = upstreamRequest(request, head, upstreamTarget, client.remoteAddress);
    this.log = opts.log.child({ stream: upstreamTarget });
    this.headTimeoutMs = opts.headTimeoutMs ?? 10_000;
    this.hold = new ReattachHold(opts.reattachWaitMs ?? 20_000, opts.reattachIntervalMs ?? 250);
    client.setNoDelay(true);
    client.setKeepAlive(true, 60_000);
    client.on('end', () => this.log.debug('listener half-closed; streaming on'));
    client.on('error', () => this.finish('listener error'));
    client.once('close', () => this.finish('listener left'));
    client.on('drain', () => this.attempt?.resume());
    // Reading keeps EOF and resets detectable; any further bytes (a pipelined request) are ignored.
    client.on('data', () => {});
    client.resume();
    this.connect();
  }

  /** Closes the listener and its upstream. */
  close(reason: string): void {
    this.finish(reason);
  }

  /**
   * The upstream may have moved (a new master): a body still flowing from the old one is
   * abandoned for the new one, with the listener held as for a lost upstream. A master cut off
   * by a partition sends nothing and closes nothing, so waiting for its connection to end
   * would hold the listener for a whole TCP timeout. So does an attempt still waiting for the
   * old master's answer (a first connect, or a re-attach begun before the change): its head
   * timeout (10 s) would pass before the new master is tried, so it starts over there at once.
   */
  upstreamMoved(reason: string): void {
    const attempt = this.attempt;
    const state = this.state;
    if (state.kind === 'ended' || attempt === undefined) return;
    if (sameHostPort(this.attemptTarget, this.resolveUpstream())) return;
    attempt.close();
    if (state.kind === 'streaming') {
      this.onFailed(attempt, reason, 'error');
      return;
    }
    this.log.info({ reason }, 'upstream moved while waiting for its answer; asking the new one');
    this.attempt = undefined;
    // The abandoned attempt was not the upstream's fault: it does not count as a failed one.
    if (state.kind === 'connecting') state.attempts--;
    this.connect();
  }

  private resolveUpstream(): HostPort | undefined {
    const upstream = this.opts.upstream;
    return typeof upstream === 'function' ? upstream() : upstream;
  }

  private connect(): void {
    this.retryTimer = undefined;
    const state = this.state;
    if (state.kind === 'ended') return;
    const target = this.resolveUpstream();
    if (target === undefined) {
      this.noUpstream(state);
      return;
    }
    if (state.kind === 'connecting') state.attempts++;
    const timeoutMs = state.kind === 'reattaching' ? this.hold.attemptTimeout(this.headTimeoutMs) : this.headTimeoutMs;
    this.attemptTarget = target;
    this.attempt = new IcecastAttempt(
      target,
      this.request,
      { headTimeoutMs: timeoutMs, maxHeadBytes: this.opts.maxHeadBytes ?? 16_384 },
      this,
    );
    this.attempt.start();
  }

  onHead(attempt: IcecastAttempt, res: ResponseHead, raw: Buffer, rest: Buffer): void {
    if (attempt !== this.attempt) return;
    const state = this.state;
    if (state.kind === 'connecting') this.answer(res, raw);
    else if (state.kind === 'reattaching' && !this.reattached(attempt, res)) return;
    if (rest.length > 0) this.onBody(attempt, rest);
  }

  onBody(attempt: IcecastAttempt, chunk: Buffer): void {
    if (attempt !== this.attempt || this.state.kind !== 'streaming') return;
    const out = this.reframer ? this.reframer.push(chunk) : [chunk];
    let ok = true;
    for (const b of out) if (b.length > 0) ok = this.client.write(b) && ok;
    if (chunk.length > 0) this.hold.audioFlowed();
    if (!ok) attempt.pause();
  }

  onFailed(attempt: IcecastAttempt, reason: string, kind: 'timeout' | 'refused' | 'error'): void {
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    const state = this.state;
    if (state.kind === 'connecting') this.connectFailed(state.attempts, reason, kind);
    else if (state.kind === 'streaming') this.upstreamLost(reason);
    else if (state.kind === 'reattaching') this.retryLater(reason);
  }

  /** Nowhere to connect to: a new listener is told at once, a held one keeps waiting. */
  private noUpstream(state: Exclude<State, { kind: 'ended' }>): void {
    if (state.kind === 'reattaching') {
      this.retryLater('no upstream known');
      return;
    }
    this.opts.metrics.increment('stream_proxy.no_upstream');
    this.end(plainResponse(503, 'No server holds this stream right now; try again shortly.', ['Retry-After: 2', ...corsLines()]));
  }

  /** The first answer: the listener gets Icecast's head with CORS added. */
  private answer(res: ResponseHead, raw: Buffer): void {
    this.state = { kind: 'streaming' };
    this.contentType = res.headers.get('content-type');
    this.continuable =
      this.hold.enabled && this.head.method === 'GET' && res.status === 200 && isContinuable(this.contentType);
    const metaint = res.status === 200 ? parseMetaint(res.headers.get('icy-metaint')) : undefined;
    // Without reconnects the metadata cycle never shifts, so nothing needs re-framing.
    if (this.continuable && metaint !== undefined) this.reframer = new IcyReframer(metaint);
    this.client.write(withCorsHeaders(raw));
  }

  /** A re-attach answered: the listener already has its head, so only the body continues. */
  private reattached(attempt: IcecastAttempt, res: ResponseHead): boolean {
    const verdict = reattachAnswer(res, this.contentType);
    if (verdict.kind !== 'continue') {
      attempt.close();
      if (verdict.kind === 'retry') this.onFailed(attempt, verdict.reason, 'error');
      else this.giveUp(verdict.reason);
      return false;
    }
    this.reframer?.restartUpstream(parseMetaint(res.headers.get('icy-metaint')));
    this.state = { kind: 'streaming' };
    this.opts.metrics.increment('stream_proxy.reattach');
    this.log.info('listener re-attached to a new upstream');
    return true;
  }

  private connectFailed(attempts: number, reason: string, kind: 'timeout' | 'refused' | 'error'): void {
    if (kind === 'error' && attempts < FIRST_CONNECT_ATTEMPTS) {
      // Icecast listens with a backlog of 5: in a crowd of arrivals a connection can be
      // reset before Icecast accepts it. A short retry beats a 502.
      this.retryTimer = setTimeout(() => this.connect(), 100 * attempts);
      return;
    }
    this.opts.metrics.increment('stream_proxy.upstream_error');
    this.log.warn({ reason }, 'local Icecast unreachable for a listener');
    this.end(plainResponse(502, 'The stream server is unreachable.', corsLines()));
  }

  private upstreamLost(reason: string): void {
    // A listener whose own socket is backed up was most likely dropped by Icecast for being
    // too slow: holding it would only keep a dead connection around.
    if (!this.continuable || this.client.writableNeedDrain) {
      this.finishGracefully(reason);
      return;
    }
    this.hold.begin();
    this.state = { kind: 'reattaching' };
    this.log.info({ reason }, 'upstream lost; holding the listener while re-attaching');
    this.retryLater(reason);
  }

  private retryLater(reason: string): void {
    if (!this.hold.mayRetry()) {
      this.giveUp(reason);
      return;
    }
    this.retryTimer = setTimeout(() => this.connect(), this.hold.intervalMs);
  }

  private giveUp(reason: string): void {
    this.opts.metrics.increment('stream_proxy.reattach_failed');
    this.log.info({ reason }, 'no upstream came back; closing the listener');
    this.finishGracefully(reason);
  }

  /** A final answer before any head was sent. */
  private end(answer: Buffer): void {
    this.stop();
    answerAndClose(this.client, answer);
  }

  /** Ends the listener after its pending bytes are flushed. */
  private finishGracefully(reason: string): void {
    if (this.state.kind === 'ended') return;
    this.log.debug({ reason }, 'stream ended');
    this.stop();
    const client = this.client;
    client.end();
    const t = setTimeout(() => client.destroy(), 5000);
    t.unref();
    client.once('close', () => clearTimeout(t));
  }

  private finish(reason: string): void {
    if (this.state.kind !== 'ended') {
      this.log.debug({ reason }, 'stream ended');
      this.stop();
    }
    this.client.destroy();
  }

  /** Leaves every state for `ended`: no timer, no upstream; `closed` resolves with the socket. */
  private stop(): void {
    this.state = { kind: 'ended' };
    clearTimeout(this.retryTimer);
    this.attempt?.close();
    this.attempt = undefined;
    this.attemptTarget = undefined;
    if (this.client.destroyed) this.resolveClosed();
    else this.client.once('close', () => this.resolveClosed());
  }
}

/** The stream proxy for one listener (see StreamSession). */
export function proxyStream(
  client: Socket,
  request: Buffer,
  head: RequestHead,
  upstreamTarget: string,
  opts: StreamProxyOptions,
): StreamSession {
  return new StreamSession(client, request, head, upstreamTarget, opts);
}


function corsLines(): string[] {
  return ['Access-Control-Allow-Origin: *'];
}
