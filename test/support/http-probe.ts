import { connect } from 'node:net';

/**
 * One plain HTTP request for /status.json on a new connection: the status code, or the error code
 * of the connection (ECONNREFUSED while nothing holds the port), 'timeout' after 15 s. Tells a
 * refused connection from one that waited in a socket's backlog.
 */
export function askStatus(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let answer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve('timeout');
    }, 15_000);
    socket.on('connect', () => socket.write('GET /status.json HTTP/1.1\r\nHost: radio.test\r\nConnection: close\r\n\r\n'));
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? 'error');
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? (answer ? 'garbled' : 'closed'));
    });
  });
}
