import { askStatus } from '../support/http-probe.js';

/**
 * Asks the front door for /status.json on a new connection every 20 ms and prints, per
 * connection, when it was opened (ms since the epoch) and its answer (a status code or a
 * connection error code), until SIGTERM. Started inside the
 * booted container's network namespace (nsenter -n), whose loopback the test cannot reach.
 */
const port = Number(process.argv[2] ?? 80);
let running = true;
process.once('SIGTERM', () => (running = false));
while (running) {
  const opened = Date.now();
  console.log(`${opened} ${await askStatus(port)}`);
  await new Promise((r) => setTimeout(r, 20));
}
