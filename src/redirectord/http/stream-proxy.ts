import { connect, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { isContinuable } from './classify.js';
import type { ConnectGate } from './connect-gate.js';
import { IcyReframer, parseMetaint } from './icy-reframer.js';
import type { RequestHead } from './request-head.js';
import type { HostPort } from '../../coordination/host-port.js';
import { answerAndClose } from './sockets.js';
import { parseResponseHead, plainResponse, withCorsHeaders, type ResponseHead } from './stream-response.js';

export interface StreamProxyOptions {
  /** The local Icecast. */
  upstream: HostPort;
  log: Logger;
  metrics: Metrics;
  /** Upstream connect plus response head; 10 s. */
  headTimeoutMs?: number;
  maxHeadBytes?: number;
  /** How long a listener is held open while its upstream is re-established; 0 disables. 20 s. */
  reattachWaitMs?: number;
  /** Pause between re-attach attempts; 250 ms. */
  reattachIntervalMs?: number;
  /** Shared by every listener of the upstream: connects queue here rather than overflow its backlog. */
  connectGate?: ConnectGate;
}

export interface StreamSession {
  /** Closes the listener and its upstream. */
  close(reason: string): void;
  readonly closed: Promise<void>;
}

/**
 * The request bytes for Icecast: the listener's head with only the request-target changed
 * (`/_stream/x.mp3?q` -> `/x.mp3?q`). Host, Icy-MetaData, Range and the rest stay as sent:
 * Icecast builds playlist URLs from Host and adds icy-metaint only when asked.
 */
export function upstreamRequest(request: Buffer, head: RequestHead, upstreamTarget: string): Buffer {
  return Buffer.concat([
    request.subarray(0, head.targetStart),
    Buffer.from(upstreamTarget, 'latin1'),
    request.subarray(head.targetEnd, head.headEnd),
  ]);
}

/**
 * Raw listener proxy to the local Icecast: Icecast's response head gets CORS headers, the
 * close-delimited body (with any ICY metadata) flows through with socket backpressure only.
 * When Icecast drops an MP3/Ogg listener (its relay lost the master) the listener is kept
 * and re-attached to a fresh upstream response, re-framed to its original metadata cycle.
 */
export function proxyStream(
  client: Socket,
  request: Buffer,
  head: RequestHead,
  upstreamTarget: string,
  opts: StreamProxyOptions,
): StreamSession {
  const headTimeoutMs = opts.headTimeoutMs ?? 10_000;
  const maxHeadBytes = opts.maxHeadBytes ?? 16_384;
  const reattachWaitMs = opts.reattachWaitMs ?? 20_000;
  const reattachIntervalMs = opts.reattachIntervalMs ?? 250;
  const reqBytes = upstreamRequest(request, head, upstreamTarget);
  const log = opts.log.child({ stream: upstreamTarget });

  let done = false;
  let upstream: Socket | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let headTimer: NodeJS.Timeout | undefined;
  /** Set once the listener got a response head; later upstreams only contribute body bytes. */
  let answered = false;
  let continuable = false;
  let contentType: string | undefined;
  let reframer: IcyReframer | undefined;
  let reattachDeadline = 0;
  let firstAttempts = 0;
  let leaveGate: (() => void) | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  client.setNoDelay(true);
  client.setKeepAlive(true, 60_000);
  // The listener sends nothing after its head; EOF or an error means it left.
  client.on('end', () => finish('listener left'));
  client.on('error', () => finish('listener error'));
  client.once('close', () => finish('listener left'));
  client.on('drain', () => upstream?.resume());
  // Reading keeps EOF detectable; any further bytes (a pipelined request) are ignored.
  client.on('data', () => {});
  client.resume();

  attempt();

  function attempt(): void {
    retryTimer = undefined;
    if (done) return;
    if (!answered) firstAttempts++;
    if (opts.connectGate) leaveGate = opts.connectGate.enter(connectUpstream);
    else connectUpstream(() => {});
  }

  /** `release`: the connect slot, given back once Icecast answered or the attempt failed. */
  function connectUpstream(release: () => void): void {
    if (done) {
      release();
      return;
    }
    const sock = connect({ host: opts.upstream.host, port: opts.upstream.port });
    upstream = sock;
    sock.once('close', release);
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    let gotHead = false;
    const limit = answered ? Math.max(500, Math.min(headTimeoutMs, reattachDeadline - Date.now())) : headTimeoutMs;
    headTimer = setTimeout(() => {
      sock.destroy();
      upstreamFailed(sock, 'upstream head timeout');
    }, limit);

    sock.on('connect', () => sock.write(reqBytes));
    sock.on('data', (chunk: Buffer) => {
      if (done || upstream !== sock) return;
      if (gotHead) {
        forward(chunk, sock);
        return;
      }
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const parsed = parseResponseHead(buf);
      if (parsed.kind === 'incomplete') {
        if (buf.length > maxHeadBytes) {
          sock.destroy();
          upstreamFailed(sock, 'upstream head too large');
        }
        return;
      }
      clearTimeout(headTimer);
      release();
      if (parsed.kind === 'invalid') {
        sock.destroy();
        upstreamFailed(sock, `upstream answer unreadable: ${parsed.reason}`);
        return;
      }
      gotHead = true;
      onHead(parsed.head, buf, sock);
    });
    sock.on('error', (err) => upstreamFailed(sock, `upstream error: ${errorMessage(err)}`));
    sock.on('close', () => upstreamFailed(sock, 'upstream closed'));
  }

  function onHead(resHead: ResponseHead, buf: Buffer, sock: Socket): void {
    const rest = buf.subarray(resHead.headEnd);
    if (!answered) {
      answered = true;
      contentType = resHead.headers.get('content-type');
      continuable =
        reattachWaitMs > 0 && head.method === 'GET' && resHead.status === 200 && isContinuable(contentType);
      const metaint = resHead.status === 200 ? parseMetaint(resHead.headers.get('icy-metaint')) : undefined;
      // Without reconnects the metadata cycle never shifts, so nothing needs re-framing.
      if (continuable && metaint !== undefined) reframer = new IcyReframer(metaint);
      client.write(withCorsHeaders(buf.subarray(0, resHead.headEnd)));
      if (rest.length > 0) forward(rest, sock);
      return;
    }
    // A re-attach: the listener already has its head, so only the body continues.
    if (resHead.status !== 200) {
      sock.destroy();
      upstreamFailed(sock, `upstream answered ${resHead.status}`);
      return;
    }
    if (mediaType(resHead.headers.get('content-type')) !== mediaType(contentType)) {
      sock.destroy();
      giveUp('the stream changed format');
      return;
    }
    reframer?.restartUpstream(parseMetaint(resHead.headers.get('icy-metaint')));
    // The next drop starts a fresh wait.
    reattachDeadline = 0;
    opts.metrics.increment('stream_proxy.reattach');
    log.info('listener re-attached to a new upstream');
    if (rest.length > 0) forward(rest, sock);
  }

  function forward(chunk: Buffer, sock: Socket): void {
    const out = reframer ? reframer.push(chunk) : [chunk];
    let ok = true;
    for (const b of out) if (b.length > 0) ok = client.write(b) && ok;
    if (!ok) sock.pause();
  }

  function upstreamFailed(sock: Socket, reason: string): void {
    if (upstream !== sock) return;
    clearTimeout(headTimer);
    upstream = undefined;
    sock.destroy();
    if (done) return;
    if (!answered && firstAttempts < FIRST_CONNECT_ATTEMPTS && reason !== 'upstream head timeout') {
      // Icecast listens with a backlog of 5: in a crowd of arrivals a connection can be
      // reset before Icecast accepts it. A short retry beats a 502.
      retryTimer = setTimeout(attempt, 100 * firstAttempts);
      return;
    }
    if (!answered) {
      opts.metrics.increment('stream_proxy.upstream_error');
      log.warn({ reason }, 'local Icecast unreachable for a listener');
      done = true;
      answerAndClose(client, plainResponse(502, 'The stream server is unreachable.', corsLines()));
      cleanup();
      return;
    }
    // A listener whose own socket is backed up was most likely dropped by Icecast for being
    // too slow: holding it would only keep a dead connection around.
    if (!continuable || client.writableNeedDrain) {
      finishGracefully(reason);
      return;
    }
    const now = Date.now();
    if (reattachDeadline === 0) {
      reattachDeadline = now + reattachWaitMs;
      log.info({ reason }, 'upstream lost; holding the listener while re-attaching');
    }
    if (now + reattachIntervalMs > reattachDeadline) {
      giveUp(reason);
      return;
    }
    retryTimer = setTimeout(attempt, reattachIntervalMs);
  }

  function giveUp(reason: string): void {
    opts.metrics.increment('stream_proxy.reattach_failed');
    log.info({ reason }, 'no upstream came back; closing the listener');
    finishGracefully(reason);
  }

  /** Ends the listener after its pending bytes are flushed. */
  function finishGracefully(reason: string): void {
    if (done) return;
    done = true;
    log.debug({ reason }, 'stream ended');
    cleanup();
    client.end();
    const t = setTimeout(() => client.destroy(), 5000);
    t.unref();
    client.once('close', () => clearTimeout(t));
  }

  function finish(reason: string): void {
    if (!done) {
      done = true;
      log.debug({ reason }, 'stream ended');
      cleanup();
    }
    client.destroy();
  }

  function cleanup(): void {
    leaveGate?.();
    clearTimeout(retryTimer);
    clearTimeout(headTimer);
    upstream?.destroy();
    upstream = undefined;
    if (client.destroyed) resolveClosed();
    else client.once('close', () => resolveClosed());
  }

  return {
    closed,
    close(reason: string) {
      finish(reason);
    },
  };
}

/** Connection attempts for a listener's first upstream before it is answered 502. */
const FIRST_CONNECT_ATTEMPTS = 3;

function mediaType(ct: string | undefined): string {
  return (ct ?? '').split(';')[0]!.trim().toLowerCase();
}

function corsLines(): string[] {
  return ['Access-Control-Allow-Origin: *'];
}
