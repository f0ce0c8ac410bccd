import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/ports.js';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';
import { Balancer } from '../../src/redirectord/balancer/balancer.js';
import { PENDING_PER_CLIENT } from '../../src/redirectord/balancer/predictive-load.js';
import { parsePolicy } from '../../src/redirectord/balancer/policy.js';
import { createFrontDoor, type FrontDoor, type FrontDoorLimits } from '../../src/redirectord/http/front-door.js';
import { RawClient, RecordingMetrics } from './front-door-harness.js';

/**
 * The front door answers stream redirects itself (no node:http, no fastify). Two front doors
 * share one real HTTP app: `fast` with the answerListener fast path, `slow` without, so every
 * request can be compared byte for byte (Date aside) with what fastify answers.
 */

const balancer = new Balancer(parsePolicy('listeners_available,listeners_score,weighted'), () => 0.5);
const S = state(
  [node('n1', { addresses: ['127.0.0.1'] })],
  // A mount may be called /status.json: the status route still owns that path.
  [mount('/a.mp3'), mount('/live/radio.mp3'), mount('/status.json')],
);
const built = await makeApp(S, { httpPort: 8080, balancer });
const appMetrics = built.metrics;

interface TestDoor {
  port: number;
  door: FrontDoor;
  metrics: RecordingMetrics;
}

async function startDoor(fast: boolean, limits: FrontDoorLimits = {}): Promise<TestDoor> {
  const metrics = new RecordingMetrics();
  const door = createFrontDoor({
    httpServer: built.server,
    master: () => undefined,
    localIcecast: { host: '127.0.0.1', port: 9 },
    log: pino({ level: 'silent' }),
    metrics,
    answerListener: fast ? built.answerListener : undefined,
    limits,
  });
  const port = await freePort();
  await new Promise<void>((resolve) => door.listen(port, '127.0.0.1', resolve));
  return { port, door, metrics };
}

const fast = await startDoor(true);
const slow = await startDoor(false);
const quickIdle = await startDoor(true, { keepAliveTimeoutMs: 300 });
after(async () => {
  for (const d of [fast, slow, quickIdle]) {
    d.door.destroyConnections();
    await new Promise<void>((resolve) => d.door.close(() => resolve()));
  }
  built.server.closeAllConnections();
  await built.app.close();
});

/** Sends `request` on a new connection and returns everything received until the server closed. */
async function exchange(d: TestDoor, request: string | Buffer): Promise<string> {
  const c = new RawClient(d.port);
  c.send(request);
  await waitFor('server closed the connection', () => c.closed, { timeoutMs: 5000 });
  return c.text();
}

/** node:http's own 400s carry no Date; every answer from a route does. */
function withoutDate(response: string): string {
  const m = /\r\nDate: ([^\r]+)\r\n/.exec(response);
  if (!m) {
    assert.match(response, /^HTTP\/1\.1 400 /, `no Date header in ${JSON.stringify(response)}`);
    return response;
  }
  assert.ok(Math.abs(Date.parse(m[1]!) - Date.now()) < 5000, `Date ${m[1]}`);
  return response.replace(m[0], '\r\nDate: -\r\n');
}

const CORS_HEAD =
  'access-control-allow-origin: *\r\n' +
  'access-control-expose-headers: icy-metaint, icy-name, icy-description, icy-genre, icy-url, icy-br, icy-pub, ' +
  'icy-metadata, icy-audio-info, ice-audio-info, Content-Type, Content-Length, Content-Range, Accept-Ranges\r\n';

/**
 * Runs `request` through both doors: same bytes (only the status line and header names for
 * pages that show the time); `viaFastPath` says which way the fast door took.
 */
async function compare(request: string | Buffer, viaFastPath: boolean, o: { timeDependent?: boolean } = {}): Promise<string> {
  const before = { fast: fast.metrics.count('front_door.redirect'), http: fast.metrics.count('front_door.http') };
  const fromFast = await exchange(fast, request);
  const fromSlow = await exchange(slow, request);
  const shape = (r: string) => (o.timeDependent ? [...withoutDate(r).matchAll(/^(HTTP\/1\.1 .*|[^:\r\n]+):/gm)].map((m) => m[1]) : withoutDate(r));
  assert.deepEqual(shape(fromFast), shape(fromSlow), `request ${JSON.stringify(request.toString())}`);
  assert.equal(fast.metrics.count('front_door.redirect') - before.fast, viaFastPath ? 1 : 0, 'fast-path count');
  assert.equal(fast.metrics.count('front_door.http') - before.http, viaFastPath ? 0 : 1, 'hand-over count');
  return withoutDate(fromFast);
}

test('a stream redirect from the fast path is byte for byte what fastify sends', async () => {
  const redirects0 = appMetrics.counts.get('http.redirect.n1') ?? 0;
  const pending0 = balancer.pendingListeners('n1');
  const got = await compare('GET /a.mp3?token=a%20b&x=1 HTTP/1.1\r\nHost: radio\r\nUser-Agent: t\r\nConnection: close\r\n\r\n', true);
  assert.equal(
    got,
    'HTTP/1.1 302 Found\r\n' +
      CORS_HEAD +
      'location: http://127.0.0.1:8080/_stream/a.mp3?token=a%20b&x=1\r\n' +
      'cache-control: no-cache\r\nconnection: close\r\ncontent-length: 0\r\nDate: -\r\n\r\n',
  );
  // HTTP/1.0, HEAD, odd query bytes: all answered and closed.
  await compare('GET /live/radio.mp3 HTTP/1.0\r\n\r\n', true);
  await compare('HEAD /a.mp3 HTTP/1.1\r\nHost: radio\r\nConnection: close\r\n\r\n', true);
  await compare('GET /a.mp3?q=<x>&y="1"&z=`^{|}` HTTP/1.1\r\nHost: radio\r\nConnection: close\r\n\r\n', true);
  // Both ways counted once per redirect in the metrics. The balancer counts GETs only, and at
  // most PENDING_PER_CLIENT of them from one address (all of these come from 127.0.0.1).
  assert.equal((appMetrics.counts.get('http.redirect.n1') ?? 0) - redirects0, 8);
  assert.ok(balancer.pendingListeners('n1') > pending0 || pending0 === PENDING_PER_CLIENT);
  assert.ok(balancer.pendingListeners('n1') <= PENDING_PER_CLIENT);
});

test('pipelined requests behind a closing redirect are dropped and the connection closed', async () => {
  const two = 'GET /a.mp3 HTTP/1.1\r\nHost: radio\r\nConnection: close\r\n\r\nGET /live/radio.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n';
  // (node:http answers the request behind a `Connection: close` with a 400 before closing.)
  const got = await exchange(fast, two);
  assert.equal(got.match(/HTTP\/1\.1 /g)?.length, 1, got);
  assert.match(got, /location: http:\/\/127\.0\.0\.1:8080\/_stream\/a\.mp3\r\n/);
});

test('a kept-alive connection stays with the front door: redirects, pipelining, /_stream, hand-over', async (t) => {
  const c = new RawClient(fast.port);
  t.after(() => c.destroy());
  const redirects0 = fast.metrics.count('front_door.redirect');
  const http0 = fast.metrics.count('front_door.http');
  const streams0 = fast.metrics.count('front_door.stream');
  c.send('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('a redirect', () => c.text().endsWith('\r\n\r\n'));
  // fastify's answer but for the Connection header.
  const closing = await exchange(slow, 'GET /a.mp3 HTTP/1.1\r\nHost: radio\r\nConnection: close\r\n\r\n');
  assert.equal(withoutDate(c.text()), withoutDate(closing).replace('\r\nconnection: close\r\n', '\r\nconnection: keep-alive\r\n'));

  // Two pipelined requests, answered in order; HTTP/1.0 asks for keep-alive explicitly.
  c.received = Buffer.alloc(0);
  c.send('GET /live/radio.mp3 HTTP/1.1\r\nHost: radio\r\n\r\nHEAD /a.mp3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
  await waitFor('two more redirects', () => c.text().match(/HTTP\/1\.1 302 Found/g)?.length === 2);
  assert.match(c.text(), /location: [^\r]*\/_stream\/live\/radio\.mp3\r\n[^]*location: [^\r]*\/_stream\/a\.mp3\r\n/);
  assert.equal(fast.metrics.count('front_door.redirect') - redirects0, 3);

  // What the fast path does not answer goes to fastify, which then owns the connection.
  c.received = Buffer.alloc(0);
  c.send('GET /a.mp3.m3u HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('the playlist', () => c.text().includes('#EXTM3U'));
  assert.equal(fast.metrics.count('front_door.http') - http0, 1);
  assert.equal(c.closed, false);

  // The follow-up to a redirect, on the same connection, reaches the stream proxy (whose
  // Icecast here is a closed port: a 502 after its retries).
  const d = new RawClient(fast.port);
  t.after(() => d.destroy());
  d.send('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('a redirect', () => d.text().endsWith('\r\n\r\n'));
  d.send('GET /_stream/a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('the stream proxy answered', () => d.closed, { timeoutMs: 5000 });
  assert.equal(fast.metrics.count('front_door.stream') - streams0, 1);
  assert.match(d.text(), /\r\n\r\nHTTP\/1\.[01] 502 /);
});

test('an idle kept-alive connection is closed quietly after the keep-alive timeout', async (t) => {
  const c = new RawClient(quickIdle.port);
  t.after(() => c.destroy());
  c.send('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('closed by the server', () => c.closed, { timeoutMs: 3000 });
  assert.match(c.text(), /^HTTP\/1\.1 302 Found\r\n[^]*connection: keep-alive\r\n/);
  assert.equal(quickIdle.metrics.count('front_door.rejected'), 0, 'an idle connection is no rejected request');
  // A client that half-closes after its request still gets the answer.
  const h = new RawClient(quickIdle.port);
  t.after(() => h.destroy());
  h.socket.end('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('answered and closed', () => h.closed, { timeoutMs: 3000 });
  assert.match(h.text(), /^HTTP\/1\.1 302 Found\r\n/);
});

test('playlists, the status page, status.json and unknown mounts still go to fastify', async () => {
  const close = 'Host: radio\r\nConnection: close\r\n\r\n';
  const m3u = await compare(`GET /a.mp3.m3u HTTP/1.1\r\n${close}`, false);
  assert.match(m3u, /^HTTP\/1\.1 200 OK\r\n[^]*content-type: audio\/x-mpegurl\r\n[^]*\r\n\r\n#EXTM3U\n/);
  const page = await compare(`GET / HTTP/1.1\r\n${close}`, false, { timeDependent: true });
  assert.match(page, /^HTTP\/1\.1 200 OK\r\n[^]*content-type: text\/html/);
  const json = await compare(`GET /status.json HTTP/1.1\r\n${close}`, false, { timeDependent: true });
  assert.match(json, /^HTTP\/1\.1 200 OK\r\n[^]*content-type: application\/json/);
  const missing = await compare(`GET /b.mp3 HTTP/1.1\r\n${close}`, false);
  assert.match(missing, /^HTTP\/1\.1 404 Not Found\r\n[^]*\r\n\r\nNo such stream\n$/);
  const head404 = await compare(`HEAD /b.mp3 HTTP/1.1\r\n${close}`, false);
  assert.match(head404, /^HTTP\/1\.1 404 /);
  const options = await compare(`OPTIONS /a.mp3 HTTP/1.1\r\n${close}`, false);
  assert.match(options, /^HTTP\/1\.1 204 /);
});

test('heads node:http reads differently are handed over and answered as before', async () => {
  // Percent escapes, no Host on HTTP/1.1, bare LF, a body, control bytes, a leading blank line,
  // absolute form, a non-ASCII target, a dialect node:http does not speak.
  const escaped = await compare('GET /a%2Emp3 HTTP/1.1\r\nHost: radio\r\n\r\n', false);
  assert.match(escaped, /^HTTP\/1\.1 302 Found\r\n/);
  assert.match(await compare('GET /a.mp3 HTTP/1.1\r\n\r\n', false), /^HTTP\/1\.1 400 /);
  await compare('GET /a.mp3 HTTP/1.1\nHost: radio\n\n', false);
  await compare('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\nContent-Length: 2\r\n\r\nhi', false);
  await compare('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\nX-Bad: a\x01b\r\n\r\n', false);
  await compare('\r\nGET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n', false);
  await compare('GET http://radio/a.mp3 HTTP/1.1\r\nHost: radio\r\nConnection: close\r\n\r\n', false);
  assert.match(await compare(Buffer.from('GET /a.mp3?t=\xe9 HTTP/1.1\r\nHost: radio\r\n\r\n', 'latin1'), false), /^HTTP\/1\.1 400 /);
  await compare('GET /a.mp3 ICE/1.0\r\nHost: radio\r\n\r\n', false);
  await compare('GET /a.mp3\r\nHost: radio\r\n\r\n', false);
});

test('with no node to send a listener to, fastify answers 503 and keeps the connection', async (t) => {
  built.setState(state([], [...S.mounts.values()]));
  t.after(() => built.setState(S));
  const unavailable0 = appMetrics.counts.get('http.unavailable') ?? 0;
  const c = new RawClient(fast.port);
  t.after(() => c.destroy());
  c.send('GET /a.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('503', () => c.text().endsWith('retry shortly\n'));
  assert.match(c.text(), /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*retry-after: 5\r\n/);
  assert.match(c.text(), /Connection: keep-alive/i);
  // Decided once, not once by the front door and again by fastify.
  assert.equal((appMetrics.counts.get('http.unavailable') ?? 0) - unavailable0, 1);
  const first = c.received.length;
  c.send('GET /b.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('second answer on the same connection', () => c.text().slice(first).endsWith('No such stream\n'));
  assert.equal(c.closed, false);
});
