import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createLogger } from '../../src/common/logger.js';
import { createFrontDoor, type FrontDoor } from '../../src/redirectord/http/front-door.js';
import { waitFor } from '../support/wait.js';
import { echoApp, mp3Frames, RecordingMetrics } from './front-door-harness.js';

/**
 * The front door's listclients under attack from outside, with a stand-in local Icecast: what
 * listeners claim (X-Forwarded-For, user agents built to break the document) never shows as
 * their address or as markup, IPv6 and IPv4 listeners are listed by their own address, and no
 * path or method trick reaches the list without the admin credentials.
 */

const PASSWORD = 'Admin-Password_0123456789';
const AUTH = `Authorization: Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}\r\n`;
const MOUNT = '/live.mp3';

let icecast: Server;
let door: FrontDoor;
let port: number;
let password: string | undefined = PASSWORD;
const clients: Socket[] = [];

before(async () => {
  // Audio for as long as the feed stays: a frame every 20 ms.
  icecast = createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      const t = setInterval(() => sock.write(mp3Frames(1)), 20);
      sock.on('close', () => clearInterval(t));
    });
  });
  await new Promise<void>((r) => icecast.listen(0, '127.0.0.1', r));
  const httpServer = createHttpServer(echoApp);
  door = createFrontDoor({
    httpServer,
    master: () => undefined,
    localIcecast: { host: '127.0.0.1', port: (icecast.address() as AddressInfo).port },
    log: createLogger('listclients-hostile', process.env.TEST_LOG_LEVEL ?? 'silent'),
    metrics: new RecordingMetrics(),
    isMount: (p) => p === MOUNT,
    adminPassword: () => password,
  });
  // Dual stack: IPv4 listeners arrive as ::ffff:127.0.0.1, IPv6 ones as ::1.
  await new Promise<void>((r) => door.listen(0, '::', r));
  port = (door.address() as AddressInfo).port;
});

after(async () => {
  for (const c of clients) c.destroy();
  door.destroyConnections();
  await new Promise<void>((r) => door.close(() => r()));
  await new Promise<void>((r) => icecast.close(() => r()));
});

/** A listener of MOUNT that keeps reading; resolves once its audio flows. */
async function listen(host: string, headers: string | Buffer): Promise<Socket> {
  const sock = connect({ host, port });
  clients.push(sock);
  sock.on('error', () => {});
  let received = 0;
  sock.on('data', (c: Buffer) => (received += c.length));
  sock.write(Buffer.concat([Buffer.from(`GET /_stream${MOUNT} HTTP/1.1\r\nHost: radio\r\n`, 'latin1'), Buffer.from(headers), Buffer.from('\r\n')]));
  await waitFor('the listener gets audio', () => received > 1000);
  return sock;
}

/** One raw request to the front door; the whole answer as latin1 text, once it closes. */
function ask(request: string | Buffer, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    sock.write(request);
    // Half-closed: the front door answers and closes, or the HTTP app sees the end.
    sock.end();
  });
}

const body = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);
const status = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1]);

test('listeners are listed by their own address whatever they claim, and their user agents stay text', async () => {
  const injection = ']]></UserAgent><IP>6.6.6.6</IP><UserAgent><![CDATA[ "},{"address":"6.6.6.6';
  await listen('127.0.0.1', `X-Forwarded-For: 203.0.113.66\r\nX-Real-IP: 203.0.113.67\r\nForwarded: for=203.0.113.68\r\nUser-Agent: ${injection}\r\n`);
  await listen('::1', Buffer.concat([Buffer.from('User-Agent: Radio M'), Buffer.from('ü\u009b'), Buffer.from('ller\x01/1.0\r\nReferer: http://x/\r\n')]));

  const json = await ask(`GET /admin/listclients.json?mount=${encodeURIComponent(MOUNT)} HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 127.0.0.1\r\n${AUTH}\r\n`);
  assert.equal(status(json), 200, json.slice(0, 300));
  const doc = JSON.parse(Buffer.from(body(json), 'latin1').toString('utf8')) as { mounts: { mount: string; listeners: { address: string; userAgent: string | null }[] }[] };
  assert.equal(doc.mounts.length, 1);
  const listed = doc.mounts[0]!.listeners;
  assert.deepEqual(listed.map((l) => l.address).sort(), ['127.0.0.1', '::1']);
  assert.equal(listed.find((l) => l.address === '127.0.0.1')!.userAgent, injection);
  assert.equal(listed.find((l) => l.address === '::1')!.userAgent, 'Radio Müller/1.0');

  const xml = await ask(`GET /admin/listclients?mount=${MOUNT} HTTP/1.1\r\nHost: x\r\n${AUTH}\r\n`, '::1');
  assert.equal(status(xml), 200);
  const text = body(xml);
  assert.doesNotMatch(text, /<IP>6\.6\.6\.6|203\.0\.113|<!\[CDATA/);
  assert.equal(text.match(/<IP>/g)?.length, 2);
  assert.equal(text.match(/<listener>/g)?.length, 2);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(Buffer.from(text, 'latin1').toString('utf8'), /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]/);
  assert.match(text, /<IP>127\.0\.0\.1<\/IP><UserAgent>\]\]&gt;&lt;\/UserAgent&gt;&lt;IP&gt;6\.6\.6\.6/);
});

test('no path, method or header trick reaches the list without the credentials', async () => {
  const wrong = (user: string, pw: string) => `Authorization: Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}\r\n`;
  const attempts: [string, number | undefined][] = [
    [`GET /admin/listclients HTTP/1.1\r\nHost: x\r\n\r\n`, 401],
    [`GET /admin/listclients.json HTTP/1.0\r\n\r\n`, 401],
    [`GET http://127.0.0.1/admin/listclients HTTP/1.1\r\nHost: x\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\n${wrong('Admin', PASSWORD)}\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\n${wrong('admin', PASSWORD.toLowerCase())}\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\n${wrong('admin', `${PASSWORD}\x00`)}\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\n${wrong('', `admin:${PASSWORD}`)}\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: Basic ${Buffer.from(`admin${PASSWORD}`).toString('base64')}\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: Basic\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: Basic ${'A'.repeat(12_000)}\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: Basic %%%\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: Digest username="admin"\r\n\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nAuthorization: x\r\n${AUTH}\r\n`, 401],
    [`GET /admin/listclients HTTP/1.1\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: ::1\r\n\r\n`, 401],
    [`HEAD /admin/listclients HTTP/1.1\r\n${AUTH}\r\n`, 405],
    [`POST /admin/listclients HTTP/1.1\r\nContent-Length: 0\r\n${AUTH}\r\n`, 405],
    [`GET /admin/listclients/ HTTP/1.1\r\n\r\n`, 403],
    [`GET /admin/listclients%2Ejson HTTP/1.1\r\n\r\n`, 403],
    [`GET /admin/./listclients HTTP/1.1\r\n\r\n`, 403],
    [`GET /admin/listmounts HTTP/1.1\r\n${AUTH}\r\n`, 403],
    [`GET //admin/listclients HTTP/1.1\r\n\r\n`, undefined],
    [`GET /ADMIN/listclients HTTP/1.1\r\n\r\n`, undefined],
    [`GET /x/../admin/listclients HTTP/1.1\r\n\r\n`, undefined],
    [`GET /_stream/admin/listclients HTTP/1.1\r\n\r\n`, 404],
    [`GET /_stream/../admin/listclients HTTP/1.1\r\n\r\n`, 404],
  ];
  for (const [request, expected] of attempts) {
    const answer = await ask(request);
    const shown = JSON.stringify(request.slice(0, 120));
    if (expected !== undefined) assert.equal(status(answer), expected, `${shown} -> ${answer.slice(0, 200)}`);
    assert.doesNotMatch(answer, /<icestats|"mounts"|127\.0\.0\.1<|::1</, shown);
  }
});

test('the mount parameter: encoded, duplicated, traversing, absent', async () => {
  const cases: [string, number, RegExp?][] = [
    ['?mount=%2Flive.mp3', 200, /<Listeners>2</],
    ['?mount=/live.mp3&mount=/live.mp3', 400],
    ['?mount=/../live.mp3', 400],
    ['?mount=%2F..%2Flive.mp3', 400],
    ['?mount=/live.mp3%00', 400],
    ['?mount=/_stream/live.mp3', 400],
    ['?mount=/other.mp3', 200, /^<\?xml version="1.0"\?>\n<icestats><source mount="\/other.mp3"><Listeners>0<\/Listeners><\/source><\/icestats>\n$/],
    ['', 200, /<source mount="\/live.mp3"><Listeners>2</],
    ['?Mount=/x', 200, /<source mount="\/live.mp3">/],
  ];
  for (const [query, expected, shape] of cases) {
    const answer = await ask(`GET /admin/listclients${query} HTTP/1.1\r\n${AUTH}\r\n`);
    assert.equal(status(answer), expected, `${query} -> ${answer.slice(0, 200)}`);
    if (shape) assert.match(body(answer), shape, query);
  }
});

test('while the admin password is unknown, 503 for everyone', async (t) => {
  password = undefined;
  t.after(() => (password = PASSWORD));
  assert.equal(status(await ask(`GET /admin/listclients HTTP/1.1\r\n${AUTH}\r\n`)), 503);
});

test('listeners coming and going while the list is asked: every answer is a whole document of real addresses', async () => {
  const churn: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    churn.push(
      listen(i % 2 ? '::1' : '127.0.0.1', `User-Agent: churn-${i}\r\n`).then((s) => {
        s.destroy();
      }),
    );
  }
  const answers: Promise<string>[] = [];
  for (let i = 0; i < 20; i++) answers.push(ask(`GET /admin/listclients.json HTTP/1.1\r\n${AUTH}\r\n`));
  await Promise.all(churn);
  for (const answer of await Promise.all(answers)) {
    assert.equal(status(answer), 200);
    const doc = JSON.parse(body(answer)) as { mounts: { listeners: { address: string }[] }[] };
    for (const l of doc.mounts.flatMap((m) => m.listeners)) assert.ok(l.address === '127.0.0.1' || l.address === '::1', l.address);
  }
  await waitFor('the churned listeners are gone from the list', async () => {
    const doc = JSON.parse(body(await ask(`GET /admin/listclients.json HTTP/1.1\r\n${AUTH}\r\n`))) as { mounts: { listeners: unknown[] }[] };
    return doc.mounts[0]?.listeners.length === 2;
  });
});

test('a list that cannot be rendered is a 500 for the asker, never a throw in the socket callback (which ends the daemon)', async (t) => {
  const real = door.currentListeners.bind(door);
  door.currentListeners = () => {
    throw new RangeError('Invalid string length');
  };
  t.after(() => (door.currentListeners = real));
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown): void => void uncaught.push(err);
  process.prependListener('uncaughtException', onUncaught);
  t.after(() => process.removeListener('uncaughtException', onUncaught));
  const answer = await ask(`GET /admin/listclients.json HTTP/1.1\r\n${AUTH}\r\n`);
  assert.deepEqual(uncaught, []);
  assert.equal(status(answer), 500, answer.slice(0, 200));
  door.currentListeners = real;
  assert.equal(status(await ask(`GET /admin/listclients.json HTTP/1.1\r\n${AUTH}\r\n`)), 200);
});

test('a long list reaches an asker on a slow link whole: the answer is not cut after a fixed grace', async (t) => {
  // 30 MB of JSON (a long list, in more than the kernel buffers hold on loopback), read at
  // some 6 MB/s: it was cut by the 2 s grace every refusal gets.
  const real = door.currentListeners.bind(door);
  const many = Array.from({ length: 120_000 }, (_, i) => ({
    id: i,
    mount: MOUNT,
    address: `2001:db8::${i.toString(16)}`,
    userAgent: 'Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36',
    since: Date.now(),
    bytes: 1_000_000,
  }));
  door.currentListeners = () => many;
  t.after(() => (door.currentListeners = real));
  const sock = connect({ host: '127.0.0.1', port });
  sock.on('error', () => {});
  const chunks: Buffer[] = [];
  const started = Date.now();
  // Each chunk read, then a pause before the next.
  sock.on('data', (c: Buffer) => {
    chunks.push(c);
    sock.pause();
    setTimeout(() => sock.resume(), 10);
  });
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  sock.write(`GET /admin/listclients.json HTTP/1.1\r\n${AUTH}\r\n`);
  await closed;
  const answer = Buffer.concat(chunks).toString('latin1');
  assert.equal(status(answer), 200);
  const length = Number(/\r\nContent-Length: (\d+)\r\n/i.exec(answer)?.[1]);
  assert.equal(Buffer.byteLength(body(answer), 'latin1'), length, `read for ${Date.now() - started} ms`);
  assert.equal((JSON.parse(body(answer)) as { mounts: { listeners: unknown[] }[] }).mounts[0]!.listeners.length, 120_000);
});
