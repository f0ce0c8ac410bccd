import { connect } from 'node:net';

/**
 * Client side of the dribble test, in its own process so that the test process's CPU time is
 * the server's: argv = port, connections, head bytes (base64). Writes each head in 2-byte
 * pieces, at most one per millisecond, then exits once every connection is closed.
 */
const [portArg, connectionsArg, headArg] = process.argv.slice(2);
const head = Buffer.from(headArg!, 'base64');
let open = Number(connectionsArg);
for (let c = Number(connectionsArg); c > 0; c--) {
  const sock = connect({ host: '127.0.0.1', port: Number(portArg) });
  sock.setNoDelay(true);
  sock.on('error', () => {});
  sock.on('data', () => {});
  sock.on('close', () => {
    if (--open === 0) process.exit(0);
  });
  sock.on('connect', async () => {
    for (let i = 0; i < head.length && !sock.destroyed; i += 2) {
      sock.write(head.subarray(i, i + 2));
      await new Promise((r) => setTimeout(r, 1));
    }
    sock.end();
  });
}
