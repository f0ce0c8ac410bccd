import { readFileSync } from 'node:fs';
import { connect } from 'node:tls';

/**
 * Load for the handshake benchmark, in its own process so its CPU is not charged to the server:
 * `concurrency` loops, each doing full TLS handshakes (no session reuse) to host:port and closing
 * at once, for `seconds`. Prints one JSON line: {"handshakes": N, "errors": N}.
 *   node --import tsx bench/lib/handshake-client.ts HOST PORT SERVERNAME CA_FILE SECONDS CONCURRENCY
 */
const [host, portText, servername, caFile, secondsText, concurrencyText] = process.argv.slice(2);
const ca = readFileSync(caFile!);
const endAt = performance.now() + Number(secondsText) * 1000;
let handshakes = 0;
let errors = 0;

function handshake(): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host, port: Number(portText), servername, ca, ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => {
      handshakes++;
      socket.destroy();
      resolve();
    });
    socket.once('error', () => {
      errors++;
      socket.destroy();
      resolve();
    });
  });
}

async function loop(): Promise<void> {
  while (performance.now() < endAt) await handshake();
}

await Promise.all(Array.from({ length: Number(concurrencyText) }, loop));
process.stdout.write(`${JSON.stringify({ handshakes, errors })}\n`);
