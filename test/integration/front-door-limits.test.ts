import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { pino } from 'pino';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/ports.js';
import { makeApp, mount, node, state } from '../support/http-fixtures.js';
import { createFrontDoor, type FrontDoor, type FrontDoorLimits } from '../../src/redirectord/http/front-door.js';
import { RawClient, RecordingMetrics, mp3Frames, startDoor, type Door } from './front-door-harness.js';

/**
 * The front door's failure paths at the socket level: clients that never read, many
 * connections from one address or /64, absolute-form targets, a stalled Icecast.
 */

const doors: Door[] = [];
const servers: Server[] = [];
after(async () => {
  for (const d of doors) await d.close();
  for (const s of servers) s.close();
});

async function door(o: Parameters<typeof startDoor>[0] = {}): Promise<Door> {
  const d = await startDoor(o);
  doors.push(d);
  return d;
}

/**
 * A stand-in Icecast: with `answer` it streams (a listener that left is noticed on a write, as
 * with a real stream); without, it accepts and never answers (a hung Icecast).
 */
async function upstream(answer: boolean): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((sock) => {
    accepted++;
    sock.on('error', () => {});
    if (!answer) return;
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      sock.write(mp3Frames(3));
      const timer = setInterval(() => sock.write(mp3Frames(1)), 50);
      sock.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

test('a client that pipelines requests and never reads is dropped after the send timeout', async () => {
  const d = await door({ limits: { sendTimeoutMs: 400 } });
  const sock = connect({ host: '127.0.0.1', port: d.port });
  sock.on('error', () => {});
  // Never read: the answers pile up in both kernels' buffers, then in the front door.
  sock.pause();
  const preflight = 'OPTIONS /_stream/a.mp3 HTTP/1.1\r\nHost: x\r\nAccess-Control-Request-Method: GET\r\n\r\n';
  const requests = 20_000;
  sock.write(preflight.repeat(requests));
  await waitFor('the front door waits for the client to read', () => d.door.counts().keptAlive === 1, { timeoutMs: 10_000 });
  assert.equal(d.door.counts().pendingHeads, 0);
  await waitFor('connection dropped', () => d.door.counts().connections === 0, { timeoutMs: 10_000 });
  assert.equal(d.metrics.count('front_door.rejected.send_timeout'), 1);
  const answered = d.metrics.count('front_door.preflight');
  assert.ok(answered > 0 && answered < requests, `${answered} of ${requests} answered`);
  sock.destroy();
});

test('streams are not limited per address; what costs without streaming is, and all connections together', async () => {
  const ice = await upstream(true);
  const d = await door({ localIcecast: { host: '127.0.0.1', port: ice.port }, limits: { maxConnectionsPerIp: 4, maxConnections: 24 } });
  // Twelve listeners from one address: three times its limit, all served.
  const listeners = Array.from({ length: 12 }, () => new RawClient(d.port));
  for (const l of listeners) l.send('GET /_stream/a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('every listener streaming', () => listeners.every((l) => l.received.length >= 1000), { timeoutMs: 10_000 });
  for (const l of listeners) assert.match(l.text(), /^HTTP\/1\.0 200 OK\r\n/);
  assert.equal(d.door.counts().streams, 12);
  // Idle connections from the same address: four get in, the fifth is refused.
  const idle = Array.from({ length: 4 }, () => new RawClient(d.port));
  await waitFor('four pending heads', () => d.door.counts().pendingHeads === 4);
  const fifth = new RawClient(d.port);
  await waitFor('fifth refused', () => fifth.closed, { timeoutMs: 5000 });
  assert.match(fifth.text(), /^HTTP\/1\.0 503 [^]*Retry-After: \d+\r\n/);
  // Another address still gets in until the total cap (24) is reached.
  const others: Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = connect({ host: '127.0.0.1', port: d.port, localAddress: `127.0.0.${2 + (i % 4)}` });
    s.on('error', () => {});
    others.push(s);
  }
  await waitFor('24 connections', () => d.door.counts().connections === 24, { timeoutMs: 5000 });
  const full = new RawClient(d.port);
  await waitFor('refused when full', () => full.closed, { timeoutMs: 5000 });
  assert.match(full.text(), /^HTTP\/1\.0 503 [^]*full/);
  assert.equal(d.metrics.count('front_door.rejected.total'), 1);
  for (const c of [...listeners, ...idle]) c.destroy();
  for (const s of others) s.destroy();
  await waitFor('all gone', () => d.door.counts().connections === 0).catch((err) => {
    throw new Error(`${(err as Error).message}: ${JSON.stringify(d.door.counts())}`);
  });
});

test('over its limit an address loses its idle keep-alive connections before it is refused (IPv6 ::1)', async () => {
  const httpServer = (await import('node:http')).createServer();
  const metrics = new RecordingMetrics();
  const fd: FrontDoor = createFrontDoor({
    httpServer,
    master: () => undefined,
    localIcecast: { host: '::1', port: 9 },
    log: pino({ level: 'silent' }),
    metrics,
    limits: { maxConnectionsPerIp: 3 } satisfies FrontDoorLimits,
  });
  const port = await freePort();
  await new Promise<void>((resolve) => fd.listen(port, '::1', resolve));
  const clients: Socket[] = [];
  const open = () => {
    const s = connect({ host: '::1', port });
    s.on('error', () => {});
    clients.push(s);
    return s;
  };
  try {
    const preflight = 'OPTIONS /_stream/a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n';
    for (let i = 0; i < 3; i++) open().write(preflight);
    await waitFor('three kept alive', () => fd.counts().keptAlive === 3);
    // Three newcomers each push out the oldest idle one; none is refused.
    for (let i = 0; i < 3; i++) open();
    await waitFor('idle ones evicted for the newcomers', () => fd.counts().keptAlive === 0 && fd.counts().pendingHeads === 3);
    assert.equal(metrics.count('front_door.rejected.per_address'), 0);
    const refused = open();
    const text = await new Promise<string>((resolve) => {
      let got = '';
      refused.on('data', (c: Buffer) => (got += c.toString('latin1')));
      refused.on('close', () => resolve(got));
    });
    assert.match(text, /^HTTP\/1\.0 503 /);
    assert.equal(metrics.count('front_door.rejected.per_address'), 1);
  } finally {
    for (const s of clients) s.destroy();
    fd.destroyConnections();
    await new Promise<void>((resolve) => fd.close(() => resolve()));
  }
});

test('an absolute-form target never puts its authority into an answer', async () => {
  const S = state([node('n1', { addresses: ['127.0.0.1'] })], [mount('/a.mp3')]);
  const built = await makeApp(S, { httpPort: 8080 });
  const metrics = new RecordingMetrics();
  const fd = createFrontDoor({
    httpServer: built.server,
    master: () => undefined,
    localIcecast: { host: '127.0.0.1', port: 9 },
    log: pino({ level: 'silent' }),
    metrics,
    answerListener: built.answerListener,
  });
  const port = await freePort();
  await new Promise<void>((resolve) => fd.listen(port, '127.0.0.1', resolve));
  try {
    const exchange = async (request: string): Promise<string> => {
      const c = new RawClient(port);
      c.send(request);
      await waitFor('closed', () => c.closed, { timeoutMs: 8000 });
      return c.text();
    };
    const evil = 'GET http://evil.example/_stream/a.mp3 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n';
    // On a new connection: a stream request (here its Icecast is a closed port: 502).
    const first = await exchange(evil);
    assert.doesNotMatch(first, /evil\.example/i, first);
    assert.match(first, /^HTTP\/1\.[01] 502 /);
    // After a hand-over node:http parses it: the 307 back to the stream names no foreign host.
    const second = await exchange(`GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n${evil}`);
    const location = /\r\nlocation: ([^\r]*)\r\n/i.exec(second)?.[1];
    assert.equal(location, '/_stream/a.mp3', second);
    for (const scheme of ['http', 'HTTPS', 'ws']) {
      const other = await exchange(`GET /status.json HTTP/1.1\r\nHost: x\r\n\r\nGET ${scheme}://evil.example:81/_stream/a.mp3?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.doesNotMatch(other, /evil\.example/i, other);
    }
  } finally {
    fd.destroyConnections();
    built.server.closeAllConnections();
    await new Promise<void>((resolve) => fd.close(() => resolve()));
    await built.app.close();
  }
});

test('the connect queue to a stalled Icecast is bounded in length and wait: 503 with Retry-After', async () => {
  const ice = await upstream(false);
  const d = await door({
    localIcecast: { host: '127.0.0.1', port: ice.port },
    limits: { icecastConnectsInFlight: 1, icecastQueueLength: 2, icecastQueueWaitMs: 600, headTimeoutMs: 20_000 },
  });
  const listeners = Array.from({ length: 5 }, () => new RawClient(d.port));
  const t0 = Date.now();
  // One mount each: listeners of one mount share one connection, so the queue holds feeds.
  listeners.forEach((l, i) => l.send(`GET /_stream/a${i}.mp3 HTTP/1.1\r\nHost: x\r\n\r\n`));
  // One connects (and hangs), two wait, two are refused at once.
  await waitFor('two refused as full', () => listeners.filter((l) => l.closed).length === 2, { timeoutMs: 5000 });
  await waitFor('the waiting two expire', () => listeners.filter((l) => l.closed).length === 4, { timeoutMs: 5000 });
  const waited = Date.now() - t0;
  assert.ok(waited >= 500, `expired after ${waited} ms`);
  const refused = listeners.filter((l) => l.closed);
  for (const l of refused) {
    assert.match(l.text(), /^HTTP\/1\.0 503 Service Unavailable\r\n/);
    assert.match(l.text(), /\r\nRetry-After: \d+\r\n/);
    assert.match(l.text(), /\r\nAccess-Control-Allow-Origin: \*\r\n/);
  }
  assert.equal(ice.accepted(), 1, 'only the one in flight reached the stalled Icecast');
  assert.equal(d.metrics.count('stream_proxy.queue_refused'), 4);
  for (const l of listeners) l.destroy();
});

test("the node's listener limit holds at the front door: Icecast sees one feed, so it cannot count them", async () => {
  const ice = await upstream(true);
  const d = await door({ localIcecast: { host: '127.0.0.1', port: ice.port }, maxListeners: 2 });
  const listeners = Array.from({ length: 3 }, () => new RawClient(d.port));
  for (const l of listeners.slice(0, 2)) l.send('GET /_stream/a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('two listeners streaming', () => listeners.slice(0, 2).every((l) => l.received.length >= 1000));
  listeners[2]!.send('GET /_stream/b.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the third refused', () => listeners[2]!.closed, { timeoutMs: 5000 });
  assert.match(listeners[2]!.text(), /^HTTP\/1\.0 503 [^]*Retry-After: \d+\r\n/);
  assert.equal(d.metrics.count('front_door.rejected.max_listeners'), 1);
  listeners[0]!.destroy();
  await waitFor('one left', () => d.door.counts().streams === 1);
  const next = new RawClient(d.port);
  next.send('GET /_stream/a.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('a place again', () => next.received.length >= 1000);
  for (const l of [...listeners, next]) l.destroy();
});

/** The test process's CPU time while a child process dribbles `head` over `connections` connections to `port`. */
async function cpuWhileDribbling(port: number, connections: number, head: Buffer): Promise<number> {
  const child = new URL('./front-door-dribble-child.ts', import.meta.url).pathname;
  const before = process.cpuUsage();
  const proc = spawn(process.execPath, ['--import', 'tsx', child, String(port), String(connections), head.toString('base64')], {
    stdio: 'ignore',
  });
  const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
  assert.equal(code, 0);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

test('a head dribbled in 2-byte pieces costs about what receiving the pieces costs, not a re-parse per piece', async () => {
  // Nearly 16 KiB (the limit) of the shortest header lines: every piece used to re-parse the
  // whole head from byte 0, line by line.
  const lines: string[] = [];
  for (let i = 0; lines.length * 4 < 16_200; i++) lines.push(`${String.fromCharCode(97 + (i % 26))}:\r\n`);
  const head = Buffer.from(`GET /x HTTP/1.1\r\nHost: x\r\n${lines.join('')}Connection: close\r\n\r\n`, 'latin1');
  const d = await door({ app: (_req, res) => res.end('ok') });
  // The control: a bare server that only receives the same pieces.
  let reads = 0;
  const bare = createServer((s) => {
    s.on('data', () => {
      reads++;
      if (s.bytesRead >= head.length) s.end();
    });
    s.on('error', () => {});
  });
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  servers.push(bare);
  const connections = 4;
  // Alternated, and the cheaper of two runs each: other work on the machine only adds.
  const control: number[] = [];
  const door_: number[] = [];
  for (let round = 0; round < 2; round++) {
    control.push(await cpuWhileDribbling((bare.address() as AddressInfo).port, connections, head));
    door_.push(await cpuWhileDribbling(d.port, connections, head));
  }
  const bareMs = Math.min(...control);
  const frontDoor = Math.min(...door_);
  console.log(`# ${connections} heads of ${head.length} bytes in 2-byte pieces (${reads} reads by the bare server): bare server ${control.map((x) => x.toFixed(0)).join('/')} ms of CPU, front door ${door_.map((x) => x.toFixed(0)).join('/')} ms`);
  // Re-parsing from byte 0 added about half again (and grows with the square of the head size).
  assert.ok(frontDoor < bareMs * 1.25, `front door ${frontDoor.toFixed(0)} ms of CPU against ${bareMs.toFixed(0)} ms for the bare reads`);
});
