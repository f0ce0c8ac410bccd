import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import type { Logger } from './logger.js';
import { PROMETHEUS_CONTENT_TYPE, type PrometheusRegistry } from './prometheus.js';
import { splitHostPort } from './metrics.js';
import { describeCollected } from './metric-catalogue.js';

export interface MetricsServer {
  /** The bound address (port 0 in the flag picks a free one). */
  host: string;
  port: number;
  close(): Promise<void>;
}

/** Parses `--metrics-listen`: `off`, or host:port / [v6]:port with an explicit port. */
export function parseMetricsListen(value: string): { host: string; port: number } | 'off' {
  const v = value.trim();
  if (v.toLowerCase() === 'off') return 'off';
  const [host, port] = splitHostPort(v, -1);
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--metrics-listen must be host:port or "off", got "${value}"`);
  }
  return { host, port };
}

/**
 * Serves `GET /metrics` (Prometheus text format) on its own listen address, loopback by default:
 * it is for the operator's scraper, not for the public port 80. Adds a few process series.
 */
export async function startMetricsServer(
  listen: string,
  registry: PrometheusRegistry,
  log: Logger,
): Promise<MetricsServer | undefined> {
  const addr = parseMetricsListen(listen);
  if (addr === 'off') return undefined;
  describeCollected(registry, 'process_resident_memory_bytes', 'process_open_fds', 'process_heap_used_bytes', 'process_start_time_seconds');
  const started = Math.round(Date.now() / 1000 - process.uptime());
  registry.addCollector(() => {
    const mem = process.memoryUsage();
    registry.set('process_resident_memory_bytes', mem.rss);
    registry.set('process_heap_used_bytes', mem.heapUsed);
    registry.set('process_start_time_seconds', started);
    const fds = openFds();
    if (fds !== undefined) registry.set('process_open_fds', fds);
  });

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found: scrape /metrics\n');
      return;
    }
    let body: string;
    try {
      body = registry.render();
    } catch (err) {
      // A scrape is a network input: its failure is logged and answered, never thrown out of
      // the request handler (that would end the daemon, DNS and front door included).
      log.error({ err }, 'cannot render the metrics');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Metrics unavailable\n');
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'cache-control': 'no-cache' });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  server.maxConnections = 64;
  server.listen(addr.port, addr.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw new Error(`cannot listen for metrics on ${listen}: ${(err as Error).message}`);
    }),
  ]);
  server.on('error', (err) => log.warn({ err: err.message }, 'metrics server error'));
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : addr.port;
  log.info({ host: addr.host, port }, 'serving Prometheus metrics on /metrics');
  return {
    host: addr.host,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function openFds(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}
