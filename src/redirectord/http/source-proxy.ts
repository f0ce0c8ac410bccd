import { connect, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { sameHostPort, type HostPort } from '../../coordination/host-port.js';
import type { RequestHead } from './request-head.js';
import { isHoldableSourceRequest, readSourceReply } from './source-reply.js';
import { plainResponse } from './stream-response.js';
import { answerAndClose } from './sockets.js';


export interface SourceProxyOptions {
  log: Logger;
  metrics: Metrics;
  /** How long to wait for the master's Icecast to accept the TCP connection. */
  connectTimeoutMs?: number;
  /** Grace for flushing the last bytes to one side once the other has gone. */
  lingerMs?: number;
  /** The client's first request head (parsed from `buffered`); with `master`, enables holding. */
  head?: RequestHead;
  /** The current master's Icecast, read again on every re-attach attempt. */
  master?: () => HostPort | undefined;
  /** Longest hold of a streaming client while no master takes its audio; 30 s. 0 disables. */
  holdMs?: number;
  /** Pause between re-attach attempts; 300 ms. */
  reattachIntervalMs?: number;
  /** Connect timeout of one re-attach attempt (the master may be gone or not yet known); 1 s. */
  reattachConnectTimeoutMs?: number;
  /** Time Icecast gets to answer one re-attach attempt once connected; 3 s. */
  reattachReplyTimeoutMs?: number;
}

export interface SourceSession {
  /** The Icecast that gets (or last got) the client's audio. */
  readonly target: HostPort;
  /** Closes both sides at once. */
  close(reason: string): void;
  /**
   * The master is no longer `target`. A streaming MP3/AAC session keeps its client and moves
   * its audio to the new master; any other session is closed (its client reconnects).
   */
  masterMoved(reason: string): void;
  /** Resolves once the client socket is gone (upstreams are destroyed with it). */
  readonly closed: Promise<void>;
}

/** A source that sent nothing for this long is gone (Icecast's own source timeout is 10 s). */
const CLIENT_SILENCE_MS = 5000;

/**
 * Splices a source client to the master's Icecast byte for byte. Icecast runs the whole
 * dialogue (401 challenge, 100 Continue, 200) itself: the proxy never answers for it, because
 * every source client reacts differently to anything but Icecast's exact replies.
 * `buffered` is everything read from the client so far (head and any audio behind it).
 *
 * Continuity: once Icecast has answered 200 to an MP3/AAC SOURCE/PUT, losing that Icecast (it
 * died, or the master moved) does not close the client. Many source clients cope badly with a
 * close (darkice exits, libshout fails while the new master's mount is not live yet), so the
 * client is held instead: its audio is read and dropped, so it never blocks and stays live, while
 * its original request head is replayed to the current master until one answers 200; the
 * splice then resumes at the next chunk (MP3/AAC decoders resync on the next frame). Nothing is
 * ever written to a held client. After `holdMs` without success it is closed as before.
 */
export function proxySource(
  client: Socket,
  buffered: Buffer,
  initialTarget: HostPort,
  opts: SourceProxyOptions,
): SourceSession {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const lingerMs = opts.lingerMs ?? 5000;
  const holdMs = opts.holdMs ?? 30_000;
  const intervalMs = opts.reattachIntervalMs ?? 300;
  const attemptConnectMs = opts.reattachConnectTimeoutMs ?? 1000;
  const attemptReplyMs = opts.reattachReplyTimeoutMs ?? 3000;
  const { log, metrics, master } = opts;
  // The head exactly as the client sent it, credentials included: what every new master gets.
  const replayHead =
    master && holdMs > 0 && opts.head && isHoldableSourceRequest(opts.head)
      ? Buffer.from(buffered.subarray(0, opts.head.headEnd))
      : undefined;

  let target = initialTarget;
  /** The Icecast receiving the client's audio; undefined while held. */
  let upstream: Socket | undefined;
  let finished = false;
  /** The client has Icecast's 200 and sends a resumable format: an upstream loss is held. */
  let streaming = false;
  /** Icecast's first answer as read so far, while the session may still become holdable. */
  let reply: Buffer | undefined = replayHead ? Buffer.alloc(0) : undefined;
  let connectTimer: NodeJS.Timeout | undefined;
  let lingerTimer: NodeJS.Timeout | undefined;

  let holdStart = 0;
  /** When the last re-attachment happened, and the hold it ended. */
  let attachedAt = 0;
  let endedHoldStart = 0;
  let discarded = 0;
  let attempts = 0;
  let attempt: Socket | undefined;
  let attemptTarget: HostPort | undefined;
  let attemptTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;

  /** A client that stopped sending was dropped by Icecast's source timeout: nothing to hold. */
  let lastClientDataAt = Date.now();

  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));

  client.on('data', (chunk: Buffer) => {
    lastClientDataAt = Date.now();
    if (upstream && !upstream.destroyed) {
      if (!upstream.write(chunk)) client.pause();
    } else if (holdStart !== 0) {
      discarded += chunk.length;
    }
  });
  client.on('end', () => {
    if (finished) return;
    // The client is done: nothing left to hold for.
    streaming = false;
    if (holdStart !== 0 || !upstream) {
      finish('source client left');
      return;
    }
    if (!upstream.destroyed) upstream.end();
    lingerThenDestroy();
  });
  client.on('error', () => finish('client error'));
  client.once('close', () => {
    finish('client closed');
    resolveClosed();
  });

  const first = connect({ host: target.host, port: target.port });
  upstream = first;
  client.on('drain', () => first.resume());
  let connected = false;
  connectTimer = setTimeout(() => fail(new Error('connect timeout')), connectTimeoutMs);

  first.once('connect', () => {
    clearTimeout(connectTimer);
    if (finished) return;
    connected = true;
    first.setNoDelay(true);
    client.setNoDelay(true);
    first.write(buffered);
    client.resume();
  });
  first.on('data', (chunk: Buffer) => {
    // Icecast's dialogue goes back to the client exactly as sent.
    if (!client.destroyed && !client.write(chunk)) first.pause();
    if (reply) watchFirstReply(chunk);
  });
  first.on('drain', () => {
    if (upstream === first) client.resume();
  });
  first.on('end', () => upstreamLost(first, 'upstream closed', true));
  first.on('error', (err) => {
    if (!connected) fail(err);
    else upstreamLost(first, `upstream error: ${errorMessage(err)}`, true);
  });
  first.on('close', () => {
    if (connected) upstreamLost(first, 'upstream closed', false);
  });

  function watchFirstReply(chunk: Buffer): void {
    reply = Buffer.concat([reply!, chunk]);
    const r = readSourceReply(reply);
    if (r.kind === 'incomplete') return;
    reply = undefined;
    if (r.kind === 'final' && r.status === 200) {
      streaming = true;
      log.debug({ target }, 'source streaming; it will be held across a master change');
    }
  }

  function fail(err: Error): void {
    if (finished) return;
    finished = true;
    clearTimeout(connectTimer);
    first.destroy();
    metrics.increment('source_proxy.upstream_error');
    log.warn({ target, err: err.message }, 'master Icecast unreachable for a source client');
    answerAndClose(client, plainResponse(503, 'The master Icecast server is unreachable; try again shortly.'));
  }

  /** The attached upstream ended, failed or closed. */
  function upstreamLost(sock: Socket, reason: string, forwardEnd: boolean): void {
    if (sock !== upstream || finished) return;
    if (streaming && clientIsSending()) {
      hold(reason, false);
      return;
    }
    // Not holdable: as a plain splice, the client gets Icecast's FIN once its bytes are flushed.
    log.debug({ target, reason }, 'source connection ended');
    if (forwardEnd && !client.destroyed) client.end();
    lingerThenDestroy();
  }

  /** Detaches the lost upstream and starts re-attaching; the client is read and never answered. */
  function hold(reason: string, masterMoved: boolean): void {
    const old = upstream;
    upstream = undefined;
    old?.destroy();
    client.resume();
    clearTimeout(retryTimer);
    discarded = 0;
    if (!masterMoved && attachedAt !== 0 && Date.now() - attachedAt < STABLE_ATTACH_MS) {
      // An Icecast that takes the source and drops it at once neither restarts the clock nor
      // gets hammered: the earlier hold goes on at its usual pace.
      holdStart = endedHoldStart;
      log.debug({ target, reason }, 'source upstream lost right after re-attaching; still holding');
      retryLater(reason);
      return;
    }
    holdStart = Date.now();
    attempts = 0;
    metrics.increment('source_proxy.hold');
    log.info({ target, reason, holdMs }, 'source upstream lost; holding the client while re-attaching');
    reattach();
  }


  function reattach(): void {
    retryTimer = undefined;
    if (finished || holdStart === 0 || attempt) return;
    const to = master?.();
    if (!to) {
      retryLater('no master known');
      return;
    }
    attempts++;
    const sock = connect({ host: to.host, port: to.port });
    attempt = sock;
    attemptTarget = to;
    let answer = Buffer.alloc(0);
    attemptTimer = setTimeout(() => attemptFailed(sock, 'connect timeout'), boundedByHold(attemptConnectMs));
    sock.once('connect', () => {
      if (sock !== attempt) return;
      clearTimeout(attemptTimer);
      attemptTimer = setTimeout(() => attemptFailed(sock, 'no answer'), boundedByHold(attemptReplyMs));
      sock.setNoDelay(true);
      sock.write(replayHead!);
    });
    sock.on('data', (chunk: Buffer) => {
      // Once attached, whatever Icecast says is dropped: the client already had its answer.
      if (sock !== attempt) return;
      answer = Buffer.concat([answer, chunk]);
      const r = readSourceReply(answer);
      if (r.kind === 'incomplete') return;
      if (r.kind === 'final' && r.status === 200) attach(sock, to);
      else attemptFailed(sock, r.kind === 'final' ? `answered ${r.status}` : `unreadable answer: ${r.reason}`);
    });
    sock.on('drain', () => {
      if (sock === upstream) client.resume();
    });
    const lostOrFailed = (why: string) => (sock === attempt ? attemptFailed(sock, why) : upstreamLost(sock, why, true));
    sock.on('end', () => lostOrFailed('upstream closed'));
    sock.on('error', (err) => lostOrFailed(`upstream error: ${errorMessage(err)}`));
    sock.on('close', () => lostOrFailed('upstream closed'));
  }

  function boundedByHold(ms: number): number {
    return Math.max(100, Math.min(ms, holdStart + holdMs - Date.now()));
  }

  function attach(sock: Socket, to: HostPort): void {
    clearTimeout(attemptTimer);
    attempt = undefined;
    upstream = sock;
    target = to;
    const heldMs = Date.now() - holdStart;
    attachedAt = Date.now();
    endedHoldStart = holdStart;
    holdStart = 0;
    metrics.increment('source_proxy.reattach');
    metrics.increment('source_proxy.discarded_bytes', discarded);
    metrics.timing('source_proxy.hold', heldMs);
    log.info({ target: to, heldMs, discardedBytes: discarded, attempts }, 'source re-attached to the master');
    client.resume();
  }

  function attemptFailed(sock: Socket, reason: string): void {
    if (sock !== attempt) return;
    clearTimeout(attemptTimer);
    attempt = undefined;
    sock.destroy();
    log.debug({ target: attemptTarget, reason }, 'source re-attach attempt failed');
    retryLater(reason);
  }

  function clientIsSending(): boolean {
    return Date.now() - lastClientDataAt < CLIENT_SILENCE_MS;
  }

  function retryLater(reason: string): void {
    if (finished || holdStart === 0) return;
    if (!clientIsSending()) {
      holdStart = 0;
      finish('the source client went silent while held');
      return;
    }
    const left = holdStart + holdMs - Date.now();
    if (left <= 0) {
      metrics.increment('source_proxy.reattach_failed');
      metrics.increment('source_proxy.discarded_bytes', discarded);
      log.warn(
        { target, reason, heldMs: Date.now() - holdStart, discardedBytes: discarded, attempts },
        'no master took the source back; closing the client',
      );
      holdStart = 0;
      finish('hold expired');
      return;
    }
    // The last attempt falls on the deadline, so a client is held the full time.
    retryTimer = setTimeout(reattach, Math.min(intervalMs, left));
  }

  // A side that finished sending gets its FIN forwarded; once the other side has flushed (or
  // the grace ran out) both are destroyed.
  function lingerThenDestroy(): void {
    if (lingerTimer) return;
    lingerTimer = setTimeout(() => finish('linger over'), lingerMs);
    lingerTimer.unref();
  }

  function finish(reason: string): void {
    if (!finished) {
      finished = true;
      log.debug({ target, reason }, 'source connection ended');
    }
    clearTimeout(connectTimer);
    clearTimeout(lingerTimer);
    clearTimeout(attemptTimer);
    clearTimeout(retryTimer);
    client.destroy();
    first.destroy();
    upstream?.destroy();
    attempt?.destroy();
  }

  return {
    get target() {
      return target;
    },
    closed,
    close(reason: string) {
      if (!finished) log.info({ target, reason }, 'closing source connection');
      finish(reason);
    },
    masterMoved(reason: string) {
      if (finished) return;
      if (!streaming) {
        log.info({ target, reason }, 'closing source connection');
        finish(reason);
        return;
      }
      if (holdStart === 0) {
        hold(reason, true);
        return;
      }
      // Already held: try the new master now instead of finishing an attempt at the old one.
      const to = master?.();
      if (attempt && to && attemptTarget && sameHostPort(to, attemptTarget)) return;
      if (attempt) {
        const old = attempt;
        attempt = undefined;
        clearTimeout(attemptTimer);
        old.destroy();
      }
      clearTimeout(retryTimer);
      reattach();
    },
  };
}

/** A re-attachment lost sooner than this continues the hold it ended. */
const STABLE_ATTACH_MS = 5000;

