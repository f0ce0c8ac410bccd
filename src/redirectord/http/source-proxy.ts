import { connect, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { plainResponse } from './stream-response.js';

export interface Endpoint {
  host: string;
  port: number;
}

export interface SourceProxyOptions {
  log: Logger;
  metrics: Metrics;
  /** How long to wait for the master's Icecast to accept the TCP connection. */
  connectTimeoutMs?: number;
  /** Grace for flushing the last bytes to one side once the other has gone. */
  lingerMs?: number;
}

export interface SourceSession {
  readonly target: Endpoint;
  /** Closes both sides at once (e.g. the master moved: the client reconnects to the new one). */
  close(reason: string): void;
  /** Resolves once both sockets are gone. */
  readonly closed: Promise<void>;
}

/**
 * Splices a source client to the master's Icecast byte for byte. Icecast runs the whole
 * dialogue (401 challenge, 100 Continue, 200) itself: the proxy never answers for it, because
 * every source client reacts differently to anything but Icecast's exact replies.
 * `buffered` is everything read from the client so far (head and any audio behind it).
 */
export function proxySource(
  client: Socket,
  buffered: Buffer,
  target: Endpoint,
  opts: SourceProxyOptions,
): SourceSession {
  const connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
  const lingerMs = opts.lingerMs ?? 5000;
  const upstream = connect({ host: target.host, port: target.port });
  let connected = false;
  let finished = false;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let pending = 2;
  const onGone = () => {
    if (--pending === 0) resolveClosed();
  };
  client.once('close', onGone);
  upstream.once('close', onGone);

  const connectTimer = setTimeout(() => fail(new Error('connect timeout')), connectTimeoutMs);

  function fail(err: Error): void {
    if (finished) return;
    finished = true;
    clearTimeout(connectTimer);
    upstream.destroy();
    opts.metrics.increment('source_proxy.upstream_error');
    opts.log.warn({ target, err: err.message }, 'master Icecast unreachable for a source client');
    answerAndClose(client, plainResponse(503, 'The master Icecast server is unreachable; try again shortly.'));
  }

  upstream.once('error', (err) => {
    if (!connected) fail(err);
    else endBoth(`upstream error: ${errorMessage(err)}`, 'client');
  });
  client.on('error', () => endBoth('client error', 'none'));

  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    if (finished) return;
    connected = true;
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    upstream.write(buffered);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });

  // A side that finished sending gets its FIN forwarded by pipe(); once the other side has
  // flushed (or the grace ran out) both are destroyed.
  client.once('end', () => lingerThenDestroy());
  upstream.once('end', () => lingerThenDestroy());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => {
    if (connected) lingerThenDestroy();
  });

  let lingerTimer: NodeJS.Timeout | undefined;
  function lingerThenDestroy(): void {
    if (lingerTimer) return;
    lingerTimer = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, lingerMs);
    lingerTimer.unref();
    const clear = () => clearTimeout(lingerTimer);
    void closed.then(clear);
  }

  function endBoth(reason: string, flush: 'client' | 'none'): void {
    opts.log.debug({ target, reason }, 'source connection ended');
    if (flush === 'client' && !client.destroyed) {
      client.end();
      lingerThenDestroy();
    } else {
      client.destroy();
    }
    upstream.destroy();
  }

  return {
    target,
    closed,
    close(reason: string) {
      finished = true;
      clearTimeout(connectTimer);
      opts.log.info({ target, reason }, 'closing source connection');
      client.destroy();
      upstream.destroy();
    },
  };
}

/**
 * Writes a final answer and closes: waits briefly for the peer's FIN (unread input would
 * otherwise turn the close into a reset that can eat the answer), then destroys.
 */
export function answerAndClose(socket: Socket, bytes: Buffer, graceMs = 2000): void {
  if (socket.destroyed) return;
  socket.removeAllListeners('data');
  socket.on('error', () => socket.destroy());
  socket.end(bytes);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), graceMs);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => {
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  });
}
