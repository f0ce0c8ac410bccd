import { createServer } from 'node:http';
import { connect, type Socket } from 'node:net';
import { pino } from 'pino';
import { createFrontDoor } from '../../src/redirectord/http/front-door.js';
import { RecordingMetrics } from '../support/fixtures.js';

/**
 * Runs inside a test network namespace whose loopback holds many addresses of one /64: a front
 * door on `serverAddress` with a per-address limit, and one idle connection from each client
 * address. Prints what the front door made of them as JSON.
 * argv: serverAddress, limit, client addresses (comma-separated), one address of another /64.
 */
const [serverAddress, limitArg, clientsArg, otherAddress] = process.argv.slice(2) as [string, string, string, string];
const metrics = new RecordingMetrics();
const door = createFrontDoor({
  httpServer: createServer(),
  master: () => undefined,
  localIcecast: { host: serverAddress, port: 9 },
  log: pino({ level: 'silent' }),
  metrics,
  limits: { maxConnectionsPerIp: Number(limitArg) },
});
await new Promise<void>((resolve) => door.listen(8080, serverAddress, resolve));

const refused: string[] = [];
function open(localAddress: string): Promise<Socket> {
  return new Promise((resolve) => {
    const s = connect({ host: serverAddress, port: 8080, localAddress });
    let got = '';
    s.on('data', (c: Buffer) => (got += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      if (/^HTTP\/1\.0 503 /.test(got)) refused.push(localAddress);
    });
    s.once('connect', () => resolve(s));
  });
}

const clients = clientsArg.split(',');
const sockets: Socket[] = [];
for (const a of clients) sockets.push(await open(a));
const deadline = Date.now() + 10_000;
while (door.counts().pendingHeads + refused.length < clients.length && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 20));
}
const sameSlash64 = { pending: door.counts().pendingHeads, refused: refused.length };
sockets.push(await open(otherAddress));
while (door.counts().pendingHeads < sameSlash64.pending + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
process.stdout.write(
  JSON.stringify({ ...sameSlash64, pendingWithOther: door.counts().pendingHeads, perAddressRejections: metrics.count('front_door.rejected.per_address') }),
);
for (const s of sockets) s.destroy();
door.destroyConnections();
door.close();
process.exit(0);
