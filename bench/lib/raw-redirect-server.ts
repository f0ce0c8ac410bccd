import { createServer } from 'node:net';

/**
 * The floor for any Node redirector: a bare `net` server that answers every request head with
 * the same pre-built 302, no parsing beyond finding the blank line. Run as its own process
 * (`node --import tsx bench/lib/raw-redirect-server.ts LOCATION`); prints its port.
 */
const location = process.argv[2] ?? 'http://127.0.0.1/_stream/x';
const head = (close: boolean) =>
  Buffer.from(
    `HTTP/1.1 302 Found\r\nlocation: ${location}\r\ncache-control: no-cache\r\naccess-control-allow-origin: *\r\n` +
      `content-length: 0\r\n${close ? 'connection: close\r\n' : ''}\r\n`,
    'latin1',
  );
const keep = head(false);
const closing = head(true);

const server = createServer((socket) => {
  let buf = '';
  socket.on('data', (chunk: Buffer) => {
    buf += chunk.toString('latin1');
    let end: number;
    while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
      const req = buf.slice(0, end);
      buf = buf.slice(end + 4);
      if (/\r\nconnection:\s*close/i.test(req)) {
        socket.end(closing);
        return;
      }
      socket.write(keep);
    }
  });
  socket.on('error', () => socket.destroy());
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof addr === 'object' && addr ? addr.port : 0 })}\n`);
});
