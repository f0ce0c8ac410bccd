import { createLogger } from '../src/common/logger.js';
import { createMetrics } from '../src/common/metrics.js';
import { startDnsServer } from '../src/redirectord/dns/server.js';
import { benchState, BENCH_ZONE } from './dns-zone.js';

/**
 * Our DNS server alone in a process (as in redirectord) on a free 127.0.0.1 port, serving the
 * benchmark zone from a static state. Prints {"port":N} once listening; SIGTERM stops it.
 */
const state = benchState();
const server = await startDnsServer({
  host: '127.0.0.1',
  port: 0,
  state: { current: () => state, onChange: () => () => {} },
  zone: BENCH_ZONE,
  log: createLogger('dns-bench', 'warn'),
  metrics: createMetrics(undefined, 'redirectord', 'bench', () => {}),
});
process.stdout.write(`${JSON.stringify({ port: server.udpPort })}\n`);
process.on('SIGTERM', () => {
  void server.close().then(() => process.exit(0));
});
