import { waitFor } from '../support/wait.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { once } from 'node:events';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';

/**
 * The app's server never listens: a stand-in for the front door accepts connections and
 * hands them over with emit('connection'), as redirectord does on port 80.
 */
async function frontDoor(server: http.Server): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const door = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    server.emit('connection', socket);
  });
  door.listen(0, '127.0.0.1');
  await once(door, 'listening');
  const port = (door.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => door.close(() => r()));
    },
  };
}

test('handed-over connections get redirects, keep-alive works, slow headers are cut off', async (t) => {
  const { app, server } = await makeApp(state([node('n1', { addresses: ['127.0.0.1'] })], [mount('/a.mp3')]), {
    httpPort: 8080,
  });
  assert.equal(server.listening, false);
  const door = await frontDoor(server);
  t.after(async () => {
    await door.close();
    await app.close();
  });

  // Two requests over one keep-alive connection.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path: string) =>
    new Promise<{ status: number; location?: string; socket: net.Socket }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: door.port, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, socket: req.socket! }));
      });
      req.on('error', reject);
    });
  const first = await get('/a.mp3.m3u');
  assert.equal(first.status, 200);
  const second = await get('/status.json');
  assert.equal(second.status, 200);
  assert.equal(second.socket, first.socket, 'the keep-alive connection was not reused');
  // A redirect closes its connection: the follow-up to /_stream must reach the front door.
  const redirect = await get('/a.mp3?q=1');
  assert.equal(redirect.status, 302);
  assert.equal(redirect.location, 'http://127.0.0.1:8080/_stream/a.mp3?q=1');
  await waitFor('redirect connection closed', () => redirect.socket.destroyed);

  // A client that never finishes its headers is answered 408 and closed.
  server.headersTimeout = 300;
  const slow = net.connect(door.port, '127.0.0.1');
  await once(slow, 'connect');
  const started = Date.now();
  slow.write('GET /a.mp3 HTTP/1.1\r\nHost: x\r\n');
  let answer = '';
  slow.on('data', (d) => (answer += d.toString()));
  await once(slow, 'close');
  const elapsed = Date.now() - started;
  assert.match(answer, /^HTTP\/1\.1 408/);
  assert.ok(elapsed < 3000, `slow client cut off after ${elapsed} ms`);
});
