import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { createInterface } from 'node:readline';

/**
 * A pool of raw-socket stream listeners in its own process, so its CPU is not charged to the
 * servers being measured. Each listener sends a GET, reads and discards, and counts bytes.
 * Run: node --import tsx bench/lib/listener-pool.ts '<json PoolConfig>'
 * Prints {"event":"ready",...} when every listener has its response head (or gave up), then
 * answers each "mark" line on stdin with the bytes each listener got since the previous mark.
 */
export interface PoolConfig {
  host: string;
  port: number;
  path: string;
  count: number;
  /** Connects in flight at once: Icecast listens with a backlog of 5. */
  concurrentConnects: number;
  /** Listeners per source address (127.0.0.2, .3, ...): redirectord caps connections per IP. */
  perSourceIp: number;
  /** Follow one 302 (GET /mount on the front door first). */
  followRedirect?: boolean;
  /** Source addresses to spread over (default 127.0.0.2, 127.0.0.3, ...). */
  sourceIps?: string[];
  /** Front doors to spread the first request over (default: host). */
  hosts?: string[];
  /** Arrivals spread evenly over this many seconds instead of a connect-limited ramp. */
  arrivalSeconds?: number;
  /** Over TLS, with this server name (the certificate is not checked: load, not trust, is measured). */
  tlsServername?: string;
}

interface Listener {
  socket: Socket | undefined;
  bytes: number;
  markBytes: number;
  status: number;
  open: boolean;
  connectMs: number;
  firstByteMs: number;
}

const cfg = JSON.parse(process.argv[2] ?? '{}') as PoolConfig;
const listeners: Listener[] = [];
let failed = 0;
let closedAfterReady = 0;
let ready = false;
const failures = new Map<string, number>();

const finalHosts = new Map<string, number>();

function localAddress(i: number): string {
  if (cfg.sourceIps) return cfg.sourceIps[Math.floor(i / cfg.perSourceIp) % cfg.sourceIps.length]!;
  const n = 2 + Math.floor(i / cfg.perSourceIp);
  return `127.0.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

function fail(reason: string): void {
  failed++;
  failures.set(reason, (failures.get(reason) ?? 0) + 1);
}

const heads: Promise<void>[] = [];
const arrivedAt = new Map<number, number>();

/**
 * Opens one listener; resolves once its TCP connection is accepted (the backlog is what must
 * not overflow); `heads` collects the promises of its response head.
 */
function open(i: number, host: string, port: number, path: string, hops: number): Promise<void> {
  let connected!: () => void;
  const accepted = new Promise<void>((r) => (connected = r));
  heads.push(openUntilHead(i, host, port, path, hops, () => connected()));
  return accepted;
}

function openUntilHead(i: number, host: string, port: number, path: string, hops: number, onConnect: () => void): Promise<void> {
  return new Promise((resolve) => {
    const started = Date.now();
    const l: Listener = { socket: undefined, bytes: 0, markBytes: 0, status: 0, open: false, connectMs: 0, firstByteMs: 0 };
    const socket = cfg.tlsServername
      ? tlsConnect({ socket: connect({ host, port, localAddress: localAddress(i) }), servername: cfg.tlsServername, rejectUnauthorized: false })
      : connect({ host, port, localAddress: localAddress(i) });
    let head = '';
    let settled = false;
    // After a 302 this socket's close means nothing: the redirected request settles.
    let redirected = false;
    const settle = () => {
      onConnect();
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    socket.setNoDelay(true);
    socket.once(cfg.tlsServername ? 'secureConnect' : 'connect', () => {
      l.connectMs = Date.now() - started;
      if (hops === 0) onConnect();
      socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}:${port}\r\nUser-Agent: autoradio-bench\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      if (l.status === 0) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        l.status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
        if (l.status === 302 && hops > 0) {
          redirected = true;
          const loc = /\r\nlocation:\s*(\S+)/i.exec(head)?.[1];
          socket.destroy();
          if (!loc) {
            fail('302 without location');
            settle();
            return;
          }
          const u = new URL(loc);
          void openUntilHead(i, u.hostname, Number(u.port || 80), u.pathname + u.search, hops - 1, onConnect).then(settle);
          return;
        }
        if (l.status !== 200) {
          fail(`status ${l.status}`);
          socket.destroy();
          settle();
          return;
        }
        l.open = true;
        l.firstByteMs = Date.now() - (arrivedAt.get(i) ?? started);
        finalHosts.set(host, (finalHosts.get(host) ?? 0) + 1);
        l.bytes += Buffer.byteLength(head.slice(end + 4), 'latin1');
        head = '';
        listeners.push(l);
        l.socket = socket;
        settle();
        return;
      }
      l.bytes += chunk.length;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!l.open) fail(err.code ?? err.message);
    });
    socket.on('close', () => {
      if (l.open) {
        l.open = false;
        if (ready) closedAfterReady++;
      } else if (l.status === 0) fail('closed before head');
      if (!redirected) settle();
    });
  });
}

async function main(): Promise<void> {
  const t0 = Date.now();
  let next = 0;
  const hops = cfg.followRedirect ? 1 : 0;
  const worker = async () => {
    while (next < cfg.count) {
      const i = next++;
      await open(i, cfg.host, cfg.port, cfg.path, hops);
    }
  };
  if (cfg.arrivalSeconds) {
    // A flash crowd: arrivals on a fixed schedule, whatever the servers' pace.
    const gapMs = (cfg.arrivalSeconds * 1000) / cfg.count;
    for (let i = 0; i < cfg.count; i++) {
      const due = t0 + i * gapMs;
      const wait = due - Date.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      arrivedAt.set(i, Date.now());
      const host = cfg.hosts ? cfg.hosts[i % cfg.hosts.length]! : cfg.host;
      void open(i, host, cfg.port, cfg.path, hops);
    }
  } else await Promise.all(Array.from({ length: cfg.concurrentConnects }, worker));
  await Promise.all(heads);
  ready = true;
  const connects = listeners.map((l) => l.connectMs).sort((a, b) => a - b);
  const firsts = listeners.map((l) => l.firstByteMs).sort((a, b) => a - b);
  const pct = (s: number[], p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN);
  process.stdout.write(
    `${JSON.stringify({
      event: 'ready',
      open: listeners.length,
      failed,
      failures: Object.fromEntries(failures),
      rampMs: Date.now() - t0,
      connectP50Ms: pct(connects, 50),
      connectP99Ms: pct(connects, 99),
      headP50Ms: pct(firsts, 50),
      headP99Ms: pct(firsts, 99),
      headMaxMs: firsts.length ? firsts[firsts.length - 1] : NaN,
      finalHosts: Object.fromEntries(finalHosts),
    })}\n`,
  );
  let lastMark = Date.now();
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'quit') {
      for (const l of listeners) l.socket?.destroy();
      process.exit(0);
    }
    if (line.trim() !== 'mark') return;
    const now = Date.now();
    const seconds = (now - lastMark) / 1000;
    lastMark = now;
    const deltas = listeners.map((l) => {
      const d = l.bytes - l.markBytes;
      l.markBytes = l.bytes;
      return d;
    });
    const sorted = [...deltas].sort((a, b) => a - b);
    process.stdout.write(
      `${JSON.stringify({
        event: 'mark',
        seconds,
        open: listeners.filter((l) => l.open).length,
        closed: closedAfterReady,
        minBytesPerSec: sorted.length ? Math.round(sorted[0]! / seconds) : 0,
        p1BytesPerSec: sorted.length ? Math.round(pct(sorted, 1) / seconds) : 0,
        medianBytesPerSec: sorted.length ? Math.round(pct(sorted, 50) / seconds) : 0,
        below14k: deltas.filter((d) => d / seconds < 14_000).length,
      })}\n`,
    );
  });
  rl.on('close', () => {
    for (const l of listeners) l.socket?.destroy();
    process.exit(0);
  });
}

void main();
