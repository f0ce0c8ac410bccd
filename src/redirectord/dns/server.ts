import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { ClusterStateSource } from '../../coordination/cluster-view.js';
import { ThrottledLog, type Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { ZoneConfig } from './answers.js';
import { DnsResponder, type DnsCounters } from './responder.js';
import { TcpConnectionTable } from './tcp-connections.js';

export interface DnsServerOptions {
  /** IPv4 or IPv6 address to bind; 0.0.0.0 by default. */
  host?: string;
  /** UDP and TCP port; 0 picks a free one (the same for both). */
  port: number;
  state: ClusterStateSource;
  zone: ZoneConfig;
  log: Logger;
  metrics: Metrics;
  /** Closes TCP connections idle this long (RFC 7766 suggests seconds, not minutes). */
  tcpIdleTimeoutMs?: number;
  /** TCP connections in all; when full, the idlest is closed to admit a new one. */
  maxTcpConnections?: number;
  /** TCP connections one client (IPv4 address, IPv6 /64) may hold at once. */
  maxTcpConnectionsPerClient?: number;
  /** How often the counters are sent to statsd. */
  metricsIntervalMs?: number;
}

export interface DnsServer {
  udpPort: number;
  tcpPort: number;
  counters(): DnsServerCounters;
  close(): Promise<void>;
}

export interface DnsServerCounters extends DnsCounters {
  tcpConnections: number;
  tcpConnectionsOpen: number;
  /** TCP connections refused because their client already held its share. */
  tcpRefused: number;
  /** TCP connections closed to make room for a new one. */
  tcpEvicted: number;
  errors: number;
}

const TCP_PREFIX = 2;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const host = opts.host ?? '0.0.0.0';
  const log = opts.log.child({ component: 'dns' });
  const throttled = new ThrottledLog(log);
  const responder = new DnsResponder({ zone: opts.zone, state: opts.state.current() });
  const unsubscribe = opts.state.onChange((s) => responder.setState(s));
  const tcpTally: TcpTally = { connections: 0, refused: 0, evicted: 0 };
  let errors = 0;
  let udpUnanswerable = 0;
  const sockets = new Set<Socket>();

  function answer(msg: Buffer, transport: 'udp' | 'tcp'): Buffer | undefined {
    try {
      return responder.respond(msg, transport);
    } catch (err) {
      // A bug for one packet must not take the name server down with it.
      errors++;
      throttled.warn('answer', { err }, 'failed to answer a DNS query');
      return undefined;
    }
  }

  const family = host.includes(':') ? 'udp6' : 'udp4';
  const { udp, tcp } = await bindBoth(host, opts.port, family);

  udp.on('message', (msg, rinfo) => {
    // Source port 0 cannot be answered (dgram.send throws for it): such a packet is spoofed.
    if (rinfo.port === 0) {
      udpUnanswerable++;
      return;
    }
    const out = answer(msg, 'udp');
    if (out !== undefined) sendUdp(udp, out, rinfo.port, rinfo.address, onUdpSendError);
  });
  const onUdpSendError = (err: Error) => {
    errors++;
    throttled.warn('udp-send', { err }, 'cannot send a DNS answer');
  };
  udp.on('error', (err) => {
    errors++;
    throttled.warn('udp', { err }, 'DNS UDP socket error');
  });

  const idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
  const table = new TcpConnectionTable<Socket>({
    maxTotal: opts.maxTcpConnections ?? 256,
    maxPerClient: opts.maxTcpConnectionsPerClient ?? 8,
  });
  tcp.on('connection', (socket) =>
    acceptTcp(socket, table, sockets, tcpTally, {
      idleMs,
      answer: (msg) => answer(msg, 'tcp'),
      onError: (err) => throttled.warn('tcp', { err }, 'DNS TCP connection error'),
    }),
  );
  tcp.on('error', (err) => {
    errors++;
    throttled.warn('tcp-server', { err }, 'DNS TCP server error');
  });

  const counters = (): DnsServerCounters => ({
    ...responder.counters(),
    tcpConnections: tcpTally.connections,
    tcpConnectionsOpen: sockets.size,
    tcpRefused: tcpTally.refused,
    tcpEvicted: tcpTally.evicted,
    errors,
    dropped: responder.counters().dropped + udpUnanswerable,
  });

  const flushMetrics = startCounterFlush(counters, opts.metrics);
  const metricsTimer = setInterval(flushMetrics, opts.metricsIntervalMs ?? 1000);
  metricsTimer.unref();

  const udpPort = udp.address().port;
  const tcpAddr = tcp.address();
  const tcpPort = typeof tcpAddr === 'object' && tcpAddr ? tcpAddr.port : 0;
  log.info({ host, udpPort, tcpPort, domain: opts.zone.domain }, 'DNS server listening');

  let closing: Promise<void> | undefined;
  return {
    udpPort,
    tcpPort,
    counters,
    close() {
      closing ??= (async () => {
        unsubscribe();
        clearInterval(metricsTimer);
        flushMetrics();
        for (const s of sockets) s.destroy();
        await Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => tcp.close(() => resolve())),
        ]);
      })();
      return closing;
    },
  };
}

interface TcpTally {
  connections: number;
  refused: number;
  evicted: number;
}

/** Admits a new TCP connection into `table` (or refuses it), closing whatever the table evicts. */
function acceptTcp(
  socket: Socket,
  table: TcpConnectionTable<Socket>,
  sockets: Set<Socket>,
  tally: TcpTally,
  o: { idleMs: number; answer: (msg: Buffer) => Buffer | undefined; onError: (err: Error) => void },
): void {
  const admission = table.admit(socket, socket.remoteAddress, Date.now());
  if (admission.kind === 'refused') {
    tally.refused++;
    socket.on('error', () => {});
    socket.destroy();
    return;
  }
  for (const idle of admission.evict) {
    tally.evicted++;
    idle.destroy();
  }
  tally.connections++;
  sockets.add(socket);
  socket.on('close', () => {
    sockets.delete(socket);
    table.remove(socket);
  });
  serveTcp(socket, o.idleMs, { answer: o.answer, active: () => table.touch(socket, Date.now()), onError: o.onError });
}

/** statsd gets deltas of the in-process counters, batched, so the hot path never formats metric names. */
function startCounterFlush(counters: () => DnsServerCounters, metrics: Metrics): () => void {
  const sent = new Map<string, number>();
  return () => {
    const c = counters();
    const push = (name: string, total: number, labels?: Record<string, string>) => {
      const key = labels ? `${name}.${Object.values(labels).join('.')}` : name;
      const delta = total - (sent.get(key) ?? 0);
      if (delta > 0) metrics.increment(name, delta, labels);
      sent.set(key, total);
    };
    for (const [t, n] of Object.entries(c.queries)) push('dns.query', n, { type: t });
    for (const [r, n] of Object.entries(c.rcodes)) push('dns.rcode', n, { rcode: r });
    push('dns.dropped', c.dropped);
    push('dns.truncated', c.truncated);
    push('dns.tcp.connections', c.tcpConnections);
    push('dns.tcp.refused', c.tcpRefused);
    push('dns.tcp.evicted', c.tcpEvicted);
    push('dns.errors', c.errors);
  };
}

/**
 * RFC 7766 framing: each message has a 2-byte length prefix; several queries may come on one
 * connection and are answered in order. Reading pauses while the client does not read its
 * answers, so a slow reader cannot make us buffer without bound.
 */
interface TcpHandlers {
  answer(msg: Buffer): Buffer | undefined;
  /** A query arrived or the client read its answers: the connection is not idle. */
  active(): void;
  onError(err: Error): void;
}

function serveTcp(socket: Socket, idleMs: number, h: TcpHandlers): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') h.onError(err);
  });
  socket.on('drain', () => {
    h.active();
    socket.resume();
  });
  socket.on('data', (chunk: Buffer) => {
    h.active();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= TCP_PREFIX) {
      const len = pending.readUInt16BE(off);
      if (pending.length - off - TCP_PREFIX < len) break;
      const msg = pending.subarray(off + TCP_PREFIX, off + TCP_PREFIX + len);
      off += TCP_PREFIX + len;
      const out = h.answer(msg);
      if (out === undefined) continue;
      const framed = Buffer.allocUnsafe(TCP_PREFIX + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, TCP_PREFIX);
      if (socket.destroyed || !socket.writable) return;
      if (!socket.write(framed)) socket.pause();
    }
    // Keep only the unparsed tail, copied so the big chunk it came from can be freed.
    pending = off === 0 ? pending : Buffer.from(pending.subarray(off));
  });
}

/**
 * Sends one UDP answer. dgram.send throws synchronously for some destinations (port 0, an
 * address of the other family) and reports the rest to its callback: both end up in `onError`,
 * never as an exception out of the socket's message handler.
 */
function sendUdp(udp: UdpSocket, out: Buffer, port: number, address: string, onError: (err: Error) => void): void {
  try {
    udp.send(out, port, address, (err) => {
      if (err) onError(err);
    });
  } catch (err) {
    onError(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Binds UDP and TCP to one port; with port 0 retries until a port is free for both. */
async function bindBoth(
  host: string,
  port: number,
  family: 'udp4' | 'udp6',
): Promise<{ udp: UdpSocket; tcp: Server }> {
  let lastErr: unknown;
  for (let attempt = 0; attempt < (port === 0 ? 10 : 1); attempt++) {
    const udp = createSocket({ type: family, reuseAddr: false });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      udp.close();
      throw err;
    }
    const chosen = udp.address().port;
    const tcp = createServer({ pauseOnConnect: false });
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ port: chosen, host, backlog: 128 }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
      trySetBuffers(udp);
      return { udp, tcp };
    } catch (err) {
      lastErr = err;
      udp.close();
      tcp.close();
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port !== 0) throw err;
    }
  }
  throw lastErr;
}

/** Bursts of queries should queue in the kernel rather than be dropped; the OS caps the size. */
function trySetBuffers(udp: UdpSocket): void {
  try {
    udp.setRecvBufferSize(4 * 1024 * 1024);
    udp.setSendBufferSize(4 * 1024 * 1024);
  } catch {
    // Kept at the system default.
  }
}
