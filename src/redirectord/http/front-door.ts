import { createServer, type Server, type Socket } from 'node:net';
import type { Server as HttpServer } from 'node:http';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { classifyRequest } from './classify.js';
import { isPlainListenerHead } from './listener-decision.js';
import { looksLikeRequestStart, parseRequestHead, type RequestHead } from './request-head.js';
import type { HostPort } from '../../coordination/host-port.js';
import { proxySource, type SourceSession } from './source-proxy.js';
import { answerAndClose } from './sockets.js';
import { proxyStream, type StreamSession } from './stream-proxy.js';
import { ConnectGate } from './connect-gate.js';
import { plainResponse, preflightResponse } from './stream-response.js';

export interface FrontDoorLimits {
  /** Largest request head accepted (431 above). 16 KiB. */
  maxHeadBytes?: number;
  /** Time a new connection gets to send its request head. 10 s. */
  headTimeoutMs?: number;
  /** Time a kept-alive connection gets to send its next request head. 5 s, as node:http. */
  keepAliveTimeoutMs?: number;
  /**
   * Connections still sending their head, all addresses together. 512. When full, the oldest
   * one is dropped to admit the newcomer: a slow-header flood then only costs its own sockets,
   * while real clients (who send their head within a round trip) still get through.
   */
  maxPendingHeads?: number;
  /** Open connections per client address (streams included). 256. */
  maxConnectionsPerIp?: number;
  /** Connect timeout towards the master's Icecast. 5 s. */
  upstreamConnectTimeoutMs?: number;
  /** Listener connections waiting for the local Icecast's answer at once (its backlog is 5). 16. */
  icecastConnectsInFlight?: number;
}

export interface ContinuityOptions {
  /** How long a listener is held while its upstream comes back; 0 disables. 20 s. */
  waitMs?: number;
  /** Pause between attempts. 250 ms. */
  intervalMs?: number;
  /** How long a streaming MP3/AAC source client is held while no master takes its audio; 0 disables. 30 s. */
  sourceHoldMs?: number;
  /** Pause between a held source's re-attach attempts. 300 ms. */
  sourceIntervalMs?: number;
}

export interface FrontDoorOptions {
  /** The HTTP application's server; it never listens, the front door hands it connections. */
  httpServer: HttpServer;
  /** The current master's Icecast, or undefined while no master is known. */
  master: () => HostPort | undefined;
  localIcecast: HostPort;
  log: Logger;
  metrics: Metrics;
  limits?: FrontDoorLimits;
  continuity?: ContinuityOptions;
  /** Proxy `/_stream/...` to the local Icecast (`--enable-icecast-proxy`); default true. */
  streamProxy?: boolean;
  /** Whether a path is one of the cluster's mounts; `/_stream` serves nothing else. */
  isMount?: (path: string) => boolean;
  /**
   * Fast path for listener redirects: the complete answer to a plain GET/HEAD head, written
   * as is (then the connection is closed, or with `keepAlive` read for its next head), or
   * undefined to hand the connection to `httpServer` as usual. Must give the answer the HTTP
   * application would, but for the Connection header.
   */
  answerListener?: (head: RequestHead, remoteAddress: string | undefined, keepAlive: boolean) => Buffer | undefined;
}

export interface FrontDoorCounts {
  pendingHeads: number;
  sources: number;
  streams: number;
  connections: number;
}

export interface FrontDoor extends Server {
  /**
   * Call when the master may have changed: streaming MP3/AAC sources still tied to an old master
   * move to the new one with their client held; other sources are closed.
   */
  onMasterChange(): void;
  /** Destroys every connection the front door still owns (sources, streams, pending heads). */
  destroyConnections(): void;
  counts(): FrontDoorCounts;
}

/**
 * The node's port 80. Neither node:http nor fastify can carry a source stream (no body framing,
 * SOURCE method, Expect without Content-Length), so a plain TCP server reads each connection's
 * first request head and decides: splice to the master's Icecast (sources and their probes),
 * raw-proxy to the local Icecast (`/_stream/...` listeners), answer a listener's redirect itself
 * (`answerListener`: node:http and fastify would cost more than the answer; on a kept-alive
 * connection the next head is read the same way), or hand the untouched bytes to the HTTP
 * application, which then owns the connection.
 */
export function createFrontDoor(opts: FrontDoorOptions): FrontDoor {
  const maxHeadBytes = opts.limits?.maxHeadBytes ?? 16_384;
  const headTimeoutMs = opts.limits?.headTimeoutMs ?? 10_000;
  const keepAliveTimeoutMs = opts.limits?.keepAliveTimeoutMs ?? 5000;
  const maxPendingHeads = opts.limits?.maxPendingHeads ?? 512;
  const maxPerIp = opts.limits?.maxConnectionsPerIp ?? 256;
  const connectTimeoutMs = opts.limits?.upstreamConnectTimeoutMs ?? 5000;
  const icecastGate = new ConnectGate(opts.limits?.icecastConnectsInFlight ?? 16);
  const { log, metrics } = opts;

  const perIp = new Map<string, number>();
  /** Sockets still sending their head, oldest first (Map keeps insertion order), with their abort. */
  const pending = new Map<Socket, () => void>();
  const sources = new Map<SourceSession, Socket>();
  const streams = new Map<StreamSession, Socket>();
  let connections = 0;

  // allowHalfOpen: a client that half-closes after its request still gets the answer.
  const server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (socket) => {
    const ip = normaliseIp(socket.remoteAddress);
    const count = (perIp.get(ip) ?? 0) + 1;
    perIp.set(ip, count);
    connections++;
    socket.once('close', () => {
      connections--;
      const n = (perIp.get(ip) ?? 1) - 1;
      if (n <= 0) perIp.delete(ip);
      else perIp.set(ip, n);
    });
    if (count > maxPerIp) {
      metrics.increment('front_door.rejected', 1, { reason: 'per_ip' });
      answerAndClose(socket, plainResponse(503, 'Too many connections from your address.'), 500);
      return;
    }
    if (pending.size >= maxPendingHeads) {
      metrics.increment('front_door.rejected', 1, { reason: 'pending' });
      const oldest = pending.values().next();
      if (!oldest.done) oldest.value();
    }
    sniff(socket, Buffer.alloc(0));
  });

  /** Reads a request head; `idle`: a kept-alive connection after an answer, which may just end. */
  function sniff(socket: Socket, initial: Buffer, idle = false): void {
    pending.set(socket, () => {
      stop();
      socket.destroy();
    });
    let buf = initial;
    const timer = setTimeout(() => {
      if (!idle || buf.length > 0) metrics.increment('front_door.rejected', 1, { reason: 'head_timeout' });
      stop();
      socket.destroy();
    }, idle ? keepAliveTimeoutMs : headTimeoutMs);
    const onData = (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      inspect();
    };
    const onEnd = () => {
      stop();
      // A kept-alive client that is done: whatever it was answered still goes out.
      if (idle && buf.length === 0) answerAndClose(socket, Buffer.alloc(0));
      else socket.destroy();
    };
    const onError = () => {
      stop();
      socket.destroy();
    };
    function stop(): void {
      clearTimeout(timer);
      pending.delete(socket);
      socket.pause();
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
      socket.removeListener('error', onError);
      socket.removeListener('close', stop);
    }
    function inspect(): void {
      if (buf.length === 0) return;
      if (!looksLikeRequestStart(buf)) {
        stop();
        handOver(socket, buf); // the HTTP server answers 400
        return;
      }
      const parsed = parseRequestHead(buf);
      if (parsed.kind === 'incomplete') {
        if (buf.length > maxHeadBytes) tooLarge();
        return;
      }
      if (parsed.kind === 'complete' && parsed.head.headEnd > maxHeadBytes) {
        tooLarge();
        return;
      }
      stop();
      if (parsed.kind === 'invalid') handOver(socket, buf);
      else dispatch(socket, buf, parsed.head, idle);
    }
    function tooLarge(): void {
      stop();
      metrics.increment('front_door.rejected', 1, { reason: 'head_too_large' });
      answerAndClose(socket, plainResponse(431, 'Request head too large.'), 500);
    }
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', stop);
    inspect();
    if (pending.has(socket)) socket.resume();
  }

  /** `keptAlive`: the head follows an answer on the same connection. */
  function dispatch(socket: Socket, buf: Buffer, head: RequestHead, keptAlive: boolean): void {
    const c = classifyRequest(head, { streamProxy: opts.streamProxy, isMount: opts.isMount });
    switch (c.kind) {
      case 'http': {
        const keepAlive = wantsKeepAlive(head);
        const answer =
          opts.answerListener && isPlainListenerHead(buf, head) ? opts.answerListener(head, socket.remoteAddress, keepAlive) : undefined;
        if (answer) {
          metrics.increment('front_door.redirect');
          // Kept alive, the connection stays with the front door: a follow-up /_stream request
          // on it is recognised like one on a new connection.
          if (keepAlive) answerAndContinue(socket, answer, buf.subarray(head.headEnd));
          else answerAndClose(socket, answer);
        } else {
          handOver(socket, buf);
        }
        return;
      }
      case 'source':
        if (keptAlive) {
          // A source owns its whole connection (byte counts, hold and replay): pipelined behind
          // listener requests it is more likely smuggled than meant.
          metrics.increment('front_door.rejected', 1, { reason: 'source_after_request' });
          answerAndClose(socket, plainResponse(400, 'A source client must connect on a new connection.'));
          return;
        }
        startSource(socket, buf, head);
        return;
      case 'stream':
        startStream(socket, buf, head, c.upstreamTarget);
        return;
      case 'stream-preflight': {
        metrics.increment('front_door.preflight');
        const keepAlive = wantsKeepAlive(head) && !hasBody(head);
        const answer = preflightResponse(keepAlive, head.headers.get('access-control-request-headers'));
        if (keepAlive) answerAndContinue(socket, answer, buf.subarray(head.headEnd));
        else answerAndClose(socket, answer);
        return;
      }
      case 'reject':
        metrics.increment('front_door.rejected', 1, { reason: String(c.status) });
        log.info({ method: head.method, path: head.target.slice(0, 200), status: c.status }, c.reason);
        answerAndClose(socket, plainResponse(c.status, `${c.reason}.`));
        return;
    }
  }

  /** Sends an answer and reads the next request head on the same connection (HTTP keep-alive). */
  function answerAndContinue(socket: Socket, answer: Buffer, rest: Buffer): void {
    const flushed = socket.write(answer);
    if (flushed && rest.length === 0) {
      sniff(socket, rest, true);
      return;
    }
    // A client that does not read its answers is not sent more; pipelined requests are taken
    // one per turn of the event loop, so one connection cannot hold the others up.
    const onError = () => socket.destroy();
    socket.on('error', onError);
    const next = () => {
      socket.removeListener('error', onError);
      if (!socket.destroyed) sniff(socket, rest, true);
    };
    if (flushed) setImmediate(next);
    else socket.once('drain', next);
  }

  function handOver(socket: Socket, buf: Buffer): void {
    metrics.increment('front_door.http');
    socket.unshift(buf);
    opts.httpServer.emit('connection', socket);
    socket.resume();
  }

  function startSource(socket: Socket, buf: Buffer, head: RequestHead): void {
    const target = opts.master();
    const fields = { method: head.method, path: head.target.slice(0, 200), client: socket.remoteAddress };
    if (!target) {
      metrics.increment('front_door.source.no_master');
      log.warn(fields, 'source client refused: no master known');
      answerAndClose(socket, plainResponse(503, 'No master Icecast server is known right now; try again shortly.'));
      return;
    }
    metrics.increment('front_door.source');
    log.info({ ...fields, master: `${target.host}:${target.port}` }, 'source connection proxied to the master');
    const session = proxySource(socket, buf, target, {
      log,
      metrics,
      connectTimeoutMs,
      head,
      master: opts.master,
      holdMs: opts.continuity?.sourceHoldMs,
      reattachIntervalMs: opts.continuity?.sourceIntervalMs,
    });
    sources.set(session, socket);
    countBytes(socket, 'source');
    metrics.gauge('front_door.sources', sources.size);
    void session.closed.then(() => {
      sources.delete(session);
      flushBytes(socket);
      metrics.gauge('front_door.sources', sources.size);
    });
  }

  function startStream(socket: Socket, buf: Buffer, head: RequestHead, upstreamTarget: string): void {
    metrics.increment('front_door.stream');
    const session = proxyStream(socket, buf, head, upstreamTarget, {
      upstream: opts.localIcecast,
      log,
      metrics,
      maxHeadBytes,
      headTimeoutMs,
      reattachWaitMs: opts.continuity?.waitMs,
      reattachIntervalMs: opts.continuity?.intervalMs,
      connectGate: icecastGate,
    });
    streams.set(session, socket);
    countBytes(socket, 'stream');
    metrics.gauge('front_door.streams', streams.size);
    void session.closed.then(() => {
      streams.delete(session);
      flushBytes(socket);
      metrics.gauge('front_door.streams', streams.size);
    });
  }

  // Bytes spliced per client socket ("in" = from the client, "out" = to it), sent as deltas once
  // a second and when the session ends: a metric call per audio chunk would cost more than the
  // splice itself.
  const spliced = new Map<Socket, { kind: 'source' | 'stream'; read: number; written: number }>();
  function countBytes(socket: Socket, kind: 'source' | 'stream'): void {
    spliced.set(socket, { kind, read: 0, written: 0 });
  }
  function flushBytes(socket: Socket, keep = false): void {
    const c = spliced.get(socket);
    if (!c) return;
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    if (read > c.read) metrics.increment('front_door.bytes', read - c.read, { kind: c.kind, direction: 'in' });
    if (written > c.written) metrics.increment('front_door.bytes', written - c.written, { kind: c.kind, direction: 'out' });
    c.read = read;
    c.written = written;
    if (!keep) spliced.delete(socket);
  }
  const bytesTimer = setInterval(() => {
    for (const socket of spliced.keys()) flushBytes(socket, true);
  }, 1000);
  bytesTimer.unref();
  server.once('close', () => clearInterval(bytesTimer));

  return Object.assign(server, {
    onMasterChange(): void {
      const now = opts.master();
      for (const session of sources.keys()) {
        const t = session.target;
        if (!now || now.host !== t.host || now.port !== t.port) session.masterMoved('the master changed');
      }
    },
    destroyConnections(): void {
      for (const abort of [...pending.values()]) abort();
      for (const session of sources.keys()) session.close('shutting down');
      for (const session of streams.keys()) session.close('shutting down');
    },
    counts(): FrontDoorCounts {
      return { pendingHeads: pending.size, sources: sources.size, streams: streams.size, connections };
    },
  });
}

function normaliseIp(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

function wantsKeepAlive(head: RequestHead): boolean {
  const conn = (head.headers.get('connection') ?? '').toLowerCase();
  if (head.version === 'HTTP/1.1') return !/\bclose\b/.test(conn);
  return /\bkeep-alive\b/.test(conn);
}

function hasBody(head: RequestHead): boolean {
  const cl = head.headers.get('content-length');
  return (cl !== undefined && cl.trim() !== '0') || head.headers.has('transfer-encoding');
}
