import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { RawClient, startDoor, type Door } from './front-door-harness.js';

/** Front door without Icecast: hand-over to the HTTP app, limits, refusals. */

const doors: Door[] = [];
after(async () => {
  for (const d of doors) await d.close();
});

async function door(o: Parameters<typeof startDoor>[0] = {}): Promise<Door> {
  const d = await startDoor(o);
  doors.push(d);
  return d;
}

test('two GETs on one keep-alive connection both reach the app after the hand-over', async () => {
  const d = await door();
  const c = new RawClient(d.port);
  c.send('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('first answer', () => /body= port=\d+$/.test(c.text()));
  assert.match(c.text(), /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(c.text(), /Connection: keep-alive/i);
  const firstLen = c.received.length;
  c.send('GET /second HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('second answer', () => c.text().slice(firstLen).includes('app GET /second'));
  assert.equal(c.closed, false, 'connection still open');
  assert.ok(c.text().includes('app GET /first'));
  const ports = [...c.text().matchAll(/port=(\d+)/g)].map((m) => m[1]);
  assert.equal(ports.length, 2);
  assert.equal(ports[0], ports[1], 'same TCP connection');
  c.destroy();
  assert.equal(d.metrics.count('front_door.http'), 1);
});

test('PUT with a Content-Length reaches the app with its body; a bare-LF head too', async () => {
  const d = await door();
  const res = await fetch(`http://127.0.0.1:${d.port}/api/thing`, { method: 'PUT', body: 'hello' });
  assert.equal(res.status, 200);
  assert.match(await res.text(), /^app PUT \/api\/thing body=hello /);
  // A head split over many small writes is reassembled before it is classified.
  const c = new RawClient(d.port);
  for (const part of ['GE', 'T /sp', 'lit HTTP/1.1\r\nHo', 'st: x\r\nConnection: close\r\n', '\r\n']) {
    c.send(part);
    await new Promise((r) => setImmediate(r));
  }
  await waitFor('split head answered', () => c.closed);
  assert.match(c.text(), /app GET \/split body=/);
});

test('a head over the cap gets 431; a silent connection is closed after the head timeout', async () => {
  const d = await door({ limits: { maxHeadBytes: 2048, headTimeoutMs: 300 } });
  const big = new RawClient(d.port);
  big.send(`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(4000)}\r\n\r\n`);
  await waitFor('431 and close', () => big.closed, { timeoutMs: 5000 });
  assert.match(big.text(), /^HTTP\/1\.0 431 /);

  const silent = new RawClient(d.port);
  const t0 = Date.now();
  silent.send('GET / HTTP/1.1\r\n');
  await waitFor('timeout close', () => silent.closed, { timeoutMs: 5000 });
  const waited = Date.now() - t0;
  assert.ok(waited >= 250 && waited < 3000, `closed after ${waited} ms`);
  assert.equal(silent.received.length, 0);
  assert.equal(d.metrics.count('front_door.rejected.head_timeout'), 1);
  assert.equal(d.metrics.count('front_door.rejected.head_too_large'), 1);
});

test('per-address connection limit and pending-head limit', async () => {
  const d = await door({ limits: { maxConnectionsPerIp: 2 } });
  const a = new RawClient(d.port);
  const b = new RawClient(d.port);
  await waitFor('two pending', () => d.door.counts().pendingHeads === 2);
  const c = new RawClient(d.port);
  await waitFor('third refused', () => c.closed, { timeoutMs: 5000 });
  assert.match(c.text(), /^HTTP\/1\.0 503 /);
  a.destroy();
  await waitFor('slot freed', () => d.door.counts().connections === 1);
  const e = new RawClient(d.port);
  e.send('GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await waitFor('fourth served', () => e.closed);
  assert.match(e.text(), /app GET \/ok/);
  b.destroy();

  const d2 = await door({ limits: { maxPendingHeads: 1 } });
  const p1 = new RawClient(d2.port);
  await waitFor('one pending', () => d2.door.counts().pendingHeads === 1);
  // Full: the oldest pending head makes room, so a slow-header flood cannot lock out newcomers.
  const p2 = new RawClient(d2.port);
  await waitFor('oldest dropped', () => p1.closed, { timeoutMs: 5000 });
  assert.equal(p1.received.length, 0);
  assert.equal(p2.closed, false);
  p2.send('GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await waitFor('newcomer served', () => p2.closed);
  assert.match(p2.text(), /app GET \/ok/);
});

test('binary junk is handed to the HTTP server, which answers 400', async () => {
  const d = await door();
  const c = new RawClient(d.port);
  c.send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]));
  await waitFor('closed', () => c.closed, { timeoutMs: 5000 });
  assert.match(c.text(), /^HTTP\/1\.1 400 Bad Request/);
});

test('Icecast admin paths other than metadata are refused with 403 and never proxied', async () => {
  const d = await door({ master: { host: '127.0.0.1', port: 9 } });
  for (const path of ['/admin/stats', '/admin/listclients.xsl?mount=/a.mp3', '/admin/killsource?mount=/a.mp3']) {
    const res = await fetch(`http://127.0.0.1:${d.port}${path}`, {
      headers: { authorization: 'Basic YWRtaW46YWRtaW4=' },
    });
    assert.equal(res.status, 403, path);
  }
  assert.equal(d.metrics.count('front_door.source'), 0);
  // Raw, because fetch would normalise the dots away before sending.
  const c = new RawClient(d.port);
  c.send('GET /_stream/../admin/stats HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('refused', () => c.closed, { timeoutMs: 5000 });
  assert.match(c.text(), /^HTTP\/1\.0 404 /);
});

test('a source client with no master known gets 503 and a close', async () => {
  const d = await door();
  const c = new RawClient(d.port);
  c.send('SOURCE /live.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOng=\r\n\r\n');
  await waitFor('closed', () => c.closed, { timeoutMs: 5000 });
  assert.match(c.text(), /^HTTP\/1\.0 503 Service Unavailable\r\n/);
  assert.match(c.text(), /No master/);
});

test('CORS preflight is answered, and a GET may follow on the same connection', async () => {
  const d = await door();
  const c = new RawClient(d.port);
  c.send(
    'OPTIONS /_stream/live.mp3 HTTP/1.1\r\nHost: x\r\nOrigin: http://player.example\r\n' +
      'Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: icy-metadata\r\n\r\n',
  );
  await waitFor('204', () => c.text().includes('\r\n\r\n'));
  assert.match(c.text(), /^HTTP\/1\.1 204 No Content\r\n/);
  assert.match(c.text(), /Access-Control-Allow-Origin: \*\r\n/);
  assert.match(c.text(), /Access-Control-Allow-Headers: icy-metadata\r\n/);
  assert.match(c.text(), /Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n/);
  c.send('GET /status.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  await waitFor('app answer on the same connection', () => c.closed);
  assert.match(c.text(), /app GET \/status\.json/);
});
