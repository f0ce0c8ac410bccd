import type { ListenerSession } from '../access/access-log-line.js';
import { Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IncomingMessage, Server as HttpServer } from 'node:http';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { classifyRequest } from './classify.js';
import { isPlainListenerHead } from './listener-decision.js';
import { originForm, type RequestHead } from './request-head.js';
import type { HostPort } from '../../coordination/host-port.js';
import { proxySource, type SourceSession } from './source-proxy.js';
import { StreamSession, type StreamProxyOptions } from './stream-proxy.js';
import { ConnectGate } from './connect-gate.js';
import { listenerCountsResponse, plainResponse, preflightResponse } from './stream-response.js';
import type { CurrentListener, ListclientsFormat } from '../access/listclients.js';
import { listclientsAnswer } from '../access/listclients-answer.js';
import { addressKey, isLoopback } from './client-address.js';
import { ConnectionBudget } from './connection-budget.js';
import { DoorConnection, type ConnectionOwner, type ConnectionTimes } from './door-connection.js';
import { SpliceMeter } from './splice-meter.js';
import { FeedRegistry } from '../fanout/feed-registry.js';
import { DEFAULT_SLOW_POLICY } from '../fanout/slow-listener.js';
import type { FanoutListener } from '../fanout/fanout-listener.js';

export interface FrontDoorLimits {
  /** Largest request head accepted (431 above). 16 KiB. */
  maxHeadBytes?: number;
  /** Time a new connection gets to send its request head. 10 s. */
  headTimeoutMs?: number;
  /** Time a kept-alive connection gets to send its next request head. 5 s, as node:http. */
  keepAliveTimeoutMs?: number;
  /** Time a kept-alive client gets to read an answer before its connection is dropped. 10 s. */
  sendTimeoutMs?: number;
  /**
   * Connections that cost without streaming (heads still arriving, kept-alive connections),
   * all addresses together. 512. When full, the oldest kept-alive one, else the oldest head,
   * is dropped to admit the newcomer (see connection-budget.ts).
   */
  maxPendingHeads?: number;
  /**
   * Connections per client address (IPv6: per /64) that are not streaming: heads arriving,
   * kept-alive connections, and connections handed to the HTTP application. 256. Listener
   * streams and sources are not counted: many phones share one carrier-grade-NAT address.
   */
  maxConnectionsPerIp?: number;
  /** Every connection together, streams included: the descriptors stay within the process's limit. 28,000. */
  maxConnections?: number;
  /** Connect timeout towards the master's Icecast. 5 s. */
  upstreamConnectTimeoutMs?: number;
  /** Listener connections waiting for the local Icecast's answer at once (its backlog is 5). 16. */
  icecastConnectsInFlight?: number;
  /** Listeners queued for a connect to the local Icecast; beyond, 503. 4096. */
  icecastQueueLength?: number;
  /** Longest a listener waits in that queue before a 503. 40 s. */
  icecastQueueWaitMs?: number;
  /** Bytes queued for a listener above which its audio is skipped (it is behind). 128 KiB. */
  listenerQueueBytes?: number;
  /** How long a listener may stay behind (skipping) before it is dropped. 15 s. */
  listenerBehindMs?: number;
  /** How long a feed's upstream may send nothing before it counts as lost. 15 s. */
  feedIdleTimeoutMs?: number;
}

export interface ContinuityOptions {
  /** How long a listener is held while its upstream comes back; 0 disables. 20 s. */
  waitMs?: number;
  /** Pause between attempts. 250 ms. */
  intervalMs?: number;
  /** How long a streaming MP3/AAC source client is held while no master takes its audio; 0 disables. 30 s. */
  sourceHoldMs?: number;
  /** Pause between a held source's re-attach attempts. 100 ms. */
  sourceIntervalMs?: number;
}

export interface FrontDoorOptions {
  /** The HTTP application's server; it never listens, the front door hands it connections. */
  httpServer: HttpServer;
  /** The current master's Icecast, or undefined while no master is known. */
  master: () => HostPort | undefined;
  /**
   * Where the local Icecast's relays pull from (`/_relay/...`): the master's Icecast, or
   * undefined while no master is known or this node is master (relaying itself would loop).
   */
  relayUpstream?: () => HostPort | undefined;
  localIcecast: HostPort;
  log: Logger;
  metrics: Metrics;
  limits?: FrontDoorLimits;
  continuity?: ContinuityOptions;
  /** Proxy `/_stream/...` to the local Icecast (`--enable-icecast-proxy`); default true. */
  streamProxy?: boolean;
  /** Whether a path is one of the cluster's mounts; `/_stream` serves nothing else. */
  isMount?: (path: string) => boolean;
  /** The cluster's Icecast admin password, which `/admin/listclients` asks for; undefined while unknown. */
  adminPassword?: () => string | undefined;
  /** Each finished `/_stream` session (the access log). */
  onStreamEnd?: (session: ListenerSession) => void;
  /**
   * This node's listener limit (0 or undefined: none). Icecast sees one connection per mount
   * (the feed), so the front door enforces it: a listener beyond it gets 503.
   */
  maxListeners?: () => number | undefined;
  /**
   * Fast path for listener redirects: the complete answer to a plain GET/HEAD head, written
   * as is (then the connection is closed, or with `keepAlive` read for its next head), or
   * undefined to hand the connection to `httpServer` as usual. Must give the answer the HTTP
   * application would, but for the Connection header.
   */
  answerListener?: (head: RequestHead, remoteAddress: string | undefined, keepAlive: boolean, secure?: boolean) => Buffer | undefined;
}

export interface FrontDoorCounts {
  /** Connections whose request head is arriving. */
  pendingHeads: number;
  /** Kept-alive connections the front door still reads (idle, or their answer unread). */
  keptAlive: number;
  sources: number;
  streams: number;
  connections: number;
  /** Upstream connections to the local Icecast, one per mount with listeners (plus lingering ones). */
  feeds: number;
}

/** Pause between a held relay's attempts to reach the (new) master. */
const RELAY_REATTACH_INTERVAL_MS = 100;

/** Slowest reading of a listclients answer the front door waits for: 64 kB/s. */
const LIST_MIN_BYTES_PER_MS = 64;

/** Seconds a refused client is told to wait. */
const RETRY_AFTER_SECONDS = 10;

/**
 * The node's port 80. Neither node:http nor fastify can carry a source stream (no body framing,
 * SOURCE method, Expect without Content-Length), so a plain TCP server reads each connection's
 * first request head and decides: splice to the master's Icecast (sources and their probes),
 * raw-proxy to the local Icecast (`/_stream/...` listeners), answer a listener's redirect itself
 * (`answerListener`: node:http and fastify would cost more than the answer; on a kept-alive
 * connection the next head is read the same way), or hand the untouched bytes to the HTTP
 * application, which then owns the connection.
 *
 * Each connection is a DoorConnection (its phases are documented there) admitted by the
 * ConnectionBudget; what follows a head is decided in `onHead`.
 */
export class FrontDoor extends Server implements ConnectionOwner {
  private readonly times: ConnectionTimes;
  private readonly budget: ConnectionBudget<DoorConnection>;
  private readonly icecastGate: ConnectGate;
  private readonly sources = new Map<SourceSession, Socket>();
  private readonly streams = new Map<FanoutListener, Socket>();
  private readonly feeds: FeedRegistry;
  private readonly relays = new Map<StreamSession, Socket>();
  private readonly meter: SpliceMeter;
  private readonly log: Logger;
  private readonly metrics: Metrics;

  constructor(private readonly opts: FrontDoorOptions) {
    // allowHalfOpen: a client that half-closes after its request still gets the answer.
    super({ pauseOnConnect: true, allowHalfOpen: true });
    const limits = opts.limits ?? {};
    this.log = opts.log;
    this.metrics = opts.metrics;
    this.times = {
      maxHeadBytes: limits.maxHeadBytes ?? 16_384,
      headTimeoutMs: limits.headTimeoutMs ?? 10_000,
      keepAliveTimeoutMs: limits.keepAliveTimeoutMs ?? 5000,
      sendTimeoutMs: limits.sendTimeoutMs ?? 10_000,
    };
    this.budget = new ConnectionBudget({
      perAddress: limits.maxConnectionsPerIp ?? 256,
      pending: limits.maxPendingHeads ?? 512,
      total: limits.maxConnections ?? 28_000,
    });
    // The flash-crowd benchmark (5,000 listeners in 10 s on one node) peaked near 3,200 queued
    // and its slowest listener waited 29 s: both bounds stay above that.
    this.icecastGate = new ConnectGate(limits.icecastConnectsInFlight ?? 16, {
      maxWaiting: limits.icecastQueueLength ?? 4096,
      maxWaitMs: limits.icecastQueueWaitMs ?? 40_000,
    });
    this.meter = new SpliceMeter(opts.metrics);
    this.feeds = new FeedRegistry({
      upstream: opts.localIcecast,
      // The master's Icecast, whoever it is but this node: listeners held on the local one bridge there.
      bridge: () => opts.relayUpstream?.(),
      log: this.log,
      metrics: this.metrics,
      gate: this.icecastGate,
      headTimeoutMs: this.times.headTimeoutMs,
      maxHeadBytes: this.times.maxHeadBytes,
      ...(limits.feedIdleTimeoutMs !== undefined ? { bodyIdleTimeoutMs: limits.feedIdleTimeoutMs } : {}),
      reattachWaitMs: opts.continuity?.waitMs ?? 20_000,
      reattachIntervalMs: opts.continuity?.intervalMs ?? 250,
      retryAfterSeconds: RETRY_AFTER_SECONDS,
      // Listener sessions only: relays are the cluster's own plumbing, not listeners.
      onSessionEnd: opts.onStreamEnd,
      slow: {
        skipAboveBytes: limits.listenerQueueBytes ?? DEFAULT_SLOW_POLICY.skipAboveBytes,
        dropAfterMs: limits.listenerBehindMs ?? DEFAULT_SLOW_POLICY.dropAfterMs,
      },
    });
    this.on('connection', (socket: Socket) => this.accept(socket));
    // Accept fails with EMFILE when descriptors run out: that is load, not a reason to exit.
    this.on('error', (err: NodeJS.ErrnoException) => {
      this.metrics.increment('front_door.accept_error');
      this.log.error({ err: errorMessage(err), code: err.code }, 'front door socket error');
    });
    this.once('close', () => this.meter.stop());
    // Requests node:http parses itself (every one after a hand-over) get the same treatment as
    // the heads classified here: an absolute-form target loses its authority, so no answer
    // (e.g. the /_stream 307) can repeat a host the client chose.
    const toOriginForm = (req: IncomingMessage): void => {
      if (req.url !== undefined) req.url = originForm(req.url);
    };
    opts.httpServer.prependListener('request', toOriginForm);
    this.once('close', () => opts.httpServer.removeListener('request', toOriginForm));
  }

  /**
   * Call when the master may have changed: streaming MP3/AAC sources still tied to an old master
   * move to the new one with their client held; other sources are closed.
   */
  onMasterChange(): void {
    const now = this.opts.master();
    for (const session of this.sources.keys()) {
      const t = session.target;
      if (!now || now.host !== t.host || now.port !== t.port) session.masterMoved('the master changed');
    }
    // Held even when this node is the new master: its Icecast takes the source on the public
    // mount and moves the relay's listeners over itself (fallback-override); a closed relay
    // would drop them first.
    for (const session of this.relays.keys()) session.upstreamMoved('the master changed');
    this.feeds.masterMoved('the master changed');
  }

  /** Destroys every connection the front door still owns (sources, streams, pending heads). */
  destroyConnections(): void {
    for (const conn of this.budget.pendingConnections()) conn.destroy();
    for (const session of this.sources.keys()) session.close('shutting down');
    for (const listener of this.streams.keys()) listener.close();
    this.feeds.closeAll('shutting down');
    for (const session of this.relays.keys()) session.close('shutting down');
  }

  counts(): FrontDoorCounts {
    const c = this.budget.counts();
    return {
      pendingHeads: c.heads,
      keptAlive: c.kept,
      sources: this.sources.size,
      streams: this.streams.size,
      connections: c.total,
      feeds: this.feeds.feedCount(),
    };
  }

  /** Listeners of `/_stream` per mount on this node: the truth Icecast no longer has (it sees one feed per mount). */
  listenerCounts(): Map<string, number> {
    return this.feeds.listenerCounts();
  }

  /**
   * A connection accepted elsewhere joins the same handling as this port's own: the HTTPS
   * listener hands over its sockets once their TLS handshake is done, so every route, limit
   * and phase is the same on both ports.
   */
  adopt(socket: Socket): void {
    socket.pause();
    this.accept(socket);
  }

  private accept(socket: Socket): void {
    const conn = new DoorConnection(socket, this.times, this);
    const admission = this.budget.admit(conn, addressKey(socket.remoteAddress));
    if (admission.kind === 'refused') {
      this.metrics.increment('front_door.rejected', 1, { reason: admission.reason });
      const text = admission.reason === 'total' ? 'The server is full; try again shortly.' : 'Too many connections from your address.';
      conn.answerAndClose(plainResponse(503, text, [`Retry-After: ${RETRY_AFTER_SECONDS}`]), 500);
      return;
    }
    for (const victim of admission.evicted) {
      this.metrics.increment('front_door.rejected', 1, { reason: 'pending' });
      victim.destroy();
    }
    conn.start();
  }

  onCostChange(conn: DoorConnection): void {
    const cls = conn.costClass();
    if (cls) this.budget.reclassify(conn, cls);
  }

  onRejected(_conn: DoorConnection, reason: string): void {
    this.metrics.increment('front_door.rejected', 1, { reason });
  }

  onClosed(conn: DoorConnection): void {
    this.budget.release(conn);
  }

  onNotOurs(conn: DoorConnection, bytes: Buffer): void {
    this.handOver(conn, bytes); // the HTTP server answers 400
  }

  onHead(conn: DoorConnection, bytes: Buffer, head: RequestHead): void {
    const c = classifyRequest(head, {
      streamProxy: this.opts.streamProxy,
      isMount: this.opts.isMount,
      fromLoopback: isLoopback(conn.socket.remoteAddress),
    });
    switch (c.kind) {
      case 'http':
        this.answerOrHandOver(conn, bytes, head);
        return;
      case 'source':
        if (conn.keptAlive) {
          // A source owns its whole connection (byte counts, hold and replay): pipelined behind
          // listener requests it is more likely smuggled than meant.
          this.metrics.increment('front_door.rejected', 1, { reason: 'source_after_request' });
          conn.answerAndClose(plainResponse(400, 'A source client must connect on a new connection.'));
          return;
        }
        this.startSource(conn, bytes, head);
        return;
      case 'stream':
        this.startStream(conn, head, c.upstreamTarget);
        return;
      case 'relay':
        this.startRelay(conn, bytes, head, c.upstreamTarget);
        return;
      case 'listener-counts':
        this.metrics.increment('front_door.http');
        conn.answerAndClose(listenerCountsResponse(this.feeds.listenerCounts(), this.feeds.feedMounts()));
        return;
      case 'listclients':
        this.answerListclients(conn, head, c.format, c.query);
        return;
      case 'stream-preflight': {
        this.metrics.increment('front_door.preflight');
        const keepAlive = wantsKeepAlive(head) && !hasBody(head);
        const answer = preflightResponse(keepAlive, head.headers.get('access-control-request-headers'));
        if (keepAlive) conn.answerAndContinue(answer, bytes.subarray(head.headEnd));
        else conn.answerAndClose(answer);
        return;
      }
      case 'reject':
        this.metrics.increment('front_door.rejected', 1, { reason: String(c.status) });
        this.log.info({ method: head.method, path: head.target.slice(0, 200), status: c.status }, c.reason);
        conn.answerAndClose(plainResponse(c.status, `${c.reason}.`));
        return;
    }
  }

  /** Listeners held here now, for whoever has the cluster's Icecast admin credentials. */
  currentListeners(): CurrentListener[] {
    const listeners: CurrentListener[] = [];
    for (const stream of this.streams.keys()) {
      const current = stream.current();
      if (current) listeners.push(current);
    }
    return listeners;
  }

  private answerListclients(conn: DoorConnection, head: RequestHead, format: ListclientsFormat, query: string): void {
    this.metrics.increment('front_door.http');
    let answer;
    try {
      answer = listclientsAnswer(head, format, query, this.opts.adminPassword?.(), () => this.currentListeners(), Date.now());
    } catch (err) {
      // Called from the socket callback, where a throw would end the whole daemon: the document
      // is built from what thousands of listeners sent, so its failure is the asker's 500 only.
      this.log.error({ err: errorMessage(err) }, 'listclients could not be answered');
      conn.answerAndClose(plainResponse(500, 'The listener list could not be built.'));
      return;
    }
    if (answer.status === 401) {
      this.metrics.increment('front_door.rejected', 1, { reason: '401' });
      this.log.info({ path: '/admin/listclients', client: conn.socket.remoteAddress }, 'listclients refused: wrong or missing admin credentials');
    }
    // The list can be megabytes: past what the kernel buffers, the fixed grace of a refusal cut
    // it for an asker on a slow link. Its time grows with its size (still bounded).
    const graceMs = answer.status === 200 ? this.times.sendTimeoutMs + Math.ceil(answer.response.length / LIST_MIN_BYTES_PER_MS) : undefined;
    conn.answerAndClose(answer.response, graceMs);
  }

  private answerOrHandOver(conn: DoorConnection, bytes: Buffer, head: RequestHead): void {
    const keepAlive = wantsKeepAlive(head);
    const answerListener = this.opts.answerListener;
    const answer =
      answerListener && isPlainListenerHead(bytes, head) ? answerListener(head, conn.socket.remoteAddress, keepAlive, isTls(conn.socket)) : undefined;
    if (!answer) {
      this.handOver(conn, bytes);
      return;
    }
    this.metrics.increment('front_door.redirect');
    // Kept alive, the connection stays with the front door: a follow-up /_stream request
    // on it is recognised like one on a new connection.
    if (keepAlive) conn.answerAndContinue(answer, bytes.subarray(head.headEnd));
    else conn.answerAndClose(answer);
  }

  private handOver(conn: DoorConnection, bytes: Buffer): void {
    const socket = conn.socket;
    conn.handOff();
    if (socket.destroyed) return;
    this.budget.reclassify(conn, 'http');
    this.metrics.increment('front_door.http');
    socket.unshift(bytes);
    this.opts.httpServer.emit('connection', socket);
    socket.resume();
  }

  private startSource(conn: DoorConnection, bytes: Buffer, head: RequestHead): void {
    const socket = conn.socket;
    const master = this.opts.master();
    const fields = { method: head.method, path: head.target.slice(0, 200), client: socket.remoteAddress };
    if (!master) {
      this.metrics.increment('front_door.source.no_master');
      this.log.warn(fields, 'source client refused: no master known');
      conn.answerAndClose(plainResponse(503, 'No master Icecast server is known right now; try again shortly.'));
      return;
    }
    conn.handOff();
    this.budget.reclassify(conn, 'streaming');
    this.metrics.increment('front_door.source');
    this.log.info({ ...fields, master: `${master.host}:${master.port}` }, 'source connection proxied to the master');
    const continuity = this.opts.continuity;
    const session = proxySource(socket, bytes, master, {
      log: this.log,
      metrics: this.metrics,
      connectTimeoutMs: this.opts.limits?.upstreamConnectTimeoutMs ?? 5000,
      head,
      master: this.opts.master,
      holdMs: continuity?.sourceHoldMs,
      reattachIntervalMs: continuity?.sourceIntervalMs,
    });
    this.track(this.sources, session, socket, 'source');
  }

  /** A listener joins its mount's feed (started by the first one): one Icecast connection per mount. */
  private startStream(conn: DoorConnection, head: RequestHead, upstreamTarget: string): void {
    const socket = conn.socket;
    const max = this.opts.maxListeners?.() ?? 0;
    if (max > 0 && this.streams.size >= max) {
      this.metrics.increment('front_door.rejected', 1, { reason: 'max_listeners' });
      conn.answerAndClose(plainResponse(503, 'This server has all the listeners it can take; try again shortly.', [`Retry-After: ${RETRY_AFTER_SECONDS}`, 'Access-Control-Allow-Origin: *']));
      return;
    }
    conn.handOff();
    this.budget.reclassify(conn, 'streaming');
    this.metrics.increment('front_door.stream');
    const q = upstreamTarget.indexOf('?');
    const mount = q === -1 ? upstreamTarget : upstreamTarget.slice(0, q);
    const listener = this.feeds.listen(socket, head, mount, upstreamTarget);
    this.track(this.streams, listener, socket, 'stream');
  }

  /**
   * The local Icecast's relay of a mount, pulled from the master now and from the next one
   * after a failover with Icecast's connection kept: its listeners only miss the audio that
   * truly went missing, and no relay restart (2-2.6 s after a reload) follows the new master.
   */
  private startRelay(conn: DoorConnection, bytes: Buffer, head: RequestHead, upstreamTarget: string): void {
    const socket = conn.socket;
    conn.handOff();
    this.budget.reclassify(conn, 'streaming');
    this.metrics.increment('front_door.relay');
    const session = new StreamSession(socket, bytes, head, upstreamTarget, {
      ...this.streamOptions(),
      upstream: () => this.opts.relayUpstream?.(),
      // One relay per mount: retrying often costs little and shortens every failover's silence.
      reattachIntervalMs: RELAY_REATTACH_INTERVAL_MS,
    });
    this.track(this.relays, session, socket, 'relay');
  }

  private streamOptions(): Omit<StreamProxyOptions, 'upstream'> {
    return {
      log: this.log,
      metrics: this.metrics,
      maxHeadBytes: this.times.maxHeadBytes,
      headTimeoutMs: this.times.headTimeoutMs,
      reattachWaitMs: this.opts.continuity?.waitMs,
      reattachIntervalMs: this.opts.continuity?.intervalMs,
    };
  }

  private track<S extends { closed: Promise<void> }>(
    sessions: Map<S, Socket>,
    session: S,
    socket: Socket,
    kind: 'source' | 'stream' | 'relay',
  ): void {
    const gauge = `front_door.${kind}s`;
    sessions.set(session, socket);
    this.meter.track(socket, kind);
    this.metrics.gauge(gauge, sessions.size);
    void session.closed.then(() => {
      sessions.delete(session);
      this.meter.flush(socket);
      this.metrics.gauge(gauge, sessions.size);
    });
  }
}

export function createFrontDoor(opts: FrontDoorOptions): FrontDoor {
  return new FrontDoor(opts);
}

function isTls(socket: Socket): boolean {
  return (socket as Partial<TLSSocket>).encrypted === true;
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
