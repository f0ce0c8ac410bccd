import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import type { ClusterStateSource } from '../../coordination/cluster-view.js';
import { ThrottledLog, type Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { ZoneConfig } from './answers.js';
import { DnsResponder, type DnsCounters } from './responder.js';

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
  maxTcpConnections?: number;
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
  errors: number;
}

const TCP_PREFIX = 2;

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  const host = opts.host ?? '0.0.0.0';
  const log = opts.log.child({ component: 'dns' });
  const throttled = new ThrottledLog(log);
  const responder = new DnsResponder({ zone: opts.zone, state: opts.state.current() });
  const unsubscribe = opts.state.onChange((s) => responder.setState(s));
  let tcpConnections = 0;
  let errors = 0;
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
    const out = answer(msg, 'udp');
    if (out !== undefined) udp.send(out, rinfo.port, rinfo.address);
  });
  udp.on('error', (err) => {
    errors++;
    throttled.warn('udp', { err }, 'DNS UDP socket error');
  });

  const idleMs = opts.tcpIdleTimeoutMs ?? 10_000;
  tcp.maxConnections = opts.maxTcpConnections ?? 256;
  tcp.on('connection', (socket) => {
    tcpConnections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    serveTcp(socket, idleMs, (msg) => answer(msg, 'tcp'), (err) => {
      throttled.warn('tcp', { err }, 'DNS TCP connection error');
    });
  });
  tcp.on('error', (err) => {
    errors++;
    throttled.warn('tcp-server', { err }, 'DNS TCP server error');
  });

  const counters = (): DnsServerCounters => ({
    ...responder.counters(),
    tcpConnections,
    tcpConnectionsOpen: sockets.size,
    errors,
  });

  // statsd gets deltas of the in-process counters, batched, so the hot path never formats metric names.
  const sent = new Map<string, number>();
  const flushMetrics = () => {
    const c = counters();
    const push = (name: string, total: number, labels?: Record<string, string>) => {
      const key = labels ? `${name}.${Object.values(labels).join('.')}` : name;
      const delta = total - (sent.get(key) ?? 0);
      if (delta > 0) opts.metrics.increment(name, delta, labels);
      sent.set(key, total);
    };
    for (const [t, n] of Object.entries(c.queries)) push('dns.query', n, { type: t });
    for (const [r, n] of Object.entries(c.rcodes)) push('dns.rcode', n, { rcode: r });
    push('dns.dropped', c.dropped);
    push('dns.truncated', c.truncated);
    push('dns.tcp.connections', c.tcpConnections);
    push('dns.errors', c.errors);
  };
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

/**
 * RFC 7766 framing: each message has a 2-byte length prefix; several queries may come on one
 * connection and are answered in order. Reading pauses while the client does not read its
 * answers, so a slow reader cannot make us buffer without bound.
 */
function serveTcp(
  socket: Socket,
  idleMs: number,
  answer: (msg: Buffer) => Buffer | undefined,
  onError: (err: Error) => void,
): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.setNoDelay(true);
  socket.setTimeout(idleMs, () => socket.destroy());
  socket.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ECONNRESET' && err.code !== 'EPIPE') onError(err);
  });
  socket.on('drain', () => socket.resume());
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= TCP_PREFIX) {
      const len = pending.readUInt16BE(off);
      if (pending.length - off - TCP_PREFIX < len) break;
      const msg = pending.subarray(off + TCP_PREFIX, off + TCP_PREFIX + len);
      off += TCP_PREFIX + len;
      const out = answer(msg);
      if (out === undefined) continue;
      const framed = Buffer.allocUnsafe(TCP_PREFIX + out.length);
      framed.writeUInt16BE(out.length, 0);
      out.copy(framed, TCP_PREFIX);
      if (!socket.write(framed)) socket.pause();
      if (socket.destroyed) return;
    }
    // Keep only the unparsed tail, copied so the big chunk it came from can be freed.
    pending = off === 0 ? pending : Buffer.from(pending.subarray(off));
  });
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
