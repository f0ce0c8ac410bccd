import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { readdirSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { waitFor } from '../support/wait.js';
import { seededRandom } from '../support/fixtures.js';
import type { HostPort } from '../../src/coordination/host-port.js';
import { RawClient, feed, startDoor, type Door } from './front-door-harness.js';
import { CLIENT_SILENCE_MS } from '../../src/redirectord/http/source-hold.js';

/**
 * The source proxy's failure paths against scripted Icecasts: each fake below answers (or not)
 * exactly as a test needs, so a master can move at the precise moment a re-attach attempt is
 * connected and waiting for its answer. The happy paths with the real Icecast are in
 * source-proxy.test.ts and source-continuity.test.ts.
 */

const OK = 'HTTP/1.0 200 OK\r\n\r\n';
const HEAD = 'SOURCE /live.mp3 HTTP/1.0\r\nAuthorization: Basic c291cmNlOnB3\r\nContent-Type: audio/mpeg\r\n\r\n';
const AUDIO = randomBytes(200_000);

interface FakeConn {
  socket: Socket;
  received: Buffer;
  ended: boolean;
  closed: boolean;
  /** Writes unless the proxy already closed this connection. */
  answer(bytes: string | Buffer): void;
}

/** A scripted Icecast: `onHead` runs once per connection when its request head is complete. */
class FakeIcecast {
  readonly conns: FakeConn[] = [];
  private readonly server: Server;
  constructor(private readonly onHead: (conn: FakeConn, index: number) => void) {
    this.server = createServer((socket) => this.accept(socket));
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return this;
  }
  get hostPort(): HostPort {
    return { host: '127.0.0.1', port: (this.server.address() as AddressInfo).port };
  }
  /** Bytes after the request head on connection `i` (the audio it got). */
  audioOn(i: number): number {
    const c = this.conns[i];
    if (!c) return 0;
    const end = c.received.indexOf('\r\n\r\n');
    return end < 0 ? 0 : c.received.length - end - 4;
  }
  async stop(): Promise<void> {
    for (const c of this.conns) c.socket.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
  private accept(socket: Socket): void {
    const conn: FakeConn = {
      socket,
      received: Buffer.alloc(0),
      ended: false,
      closed: false,
      answer: (bytes) => {
        if (!socket.destroyed && socket.writable) socket.write(bytes);
      },
    };
    const index = this.conns.push(conn) - 1;
    let headSeen = false;
    socket.on('error', () => {});
    socket.on('end', () => (conn.ended = true));
    socket.on('close', () => (conn.closed = true));
    socket.on('data', (chunk: Buffer) => {
      conn.received = Buffer.concat([conn.received, chunk]);
      if (!headSeen && conn.received.includes('\r\n\r\n')) {
        headSeen = true;
        this.onHead(conn, index);
      }
    });
  }
}

const fakes: FakeIcecast[] = [];
const doors: Door[] = [];
async function fake(onHead: (conn: FakeConn, index: number) => void): Promise<FakeIcecast> {
  const f = await new FakeIcecast(onHead).start();
  fakes.push(f);
  return f;
}
async function door(master: HostPort | undefined, holdMs = 10_000): Promise<Door> {
  const d = await startDoor({ master, continuity: { sourceHoldMs: holdMs } });
  doors.push(d);
  return d;
}

after(async () => {
  for (const d of doors) await d.close();
  for (const f of fakes) await f.stop();
});

function setMaster(d: Door, to: HostPort | undefined): void {
  d.master.current = to;
  d.door.onMasterChange();
}

/** A source client that got its 200 from `master` and streams on; stopped with the test. */
async function streamingClient(d: Door, t: { after(fn: () => void): void }): Promise<RawClient> {
  const c = new RawClient(d.port);
  t.after(() => c.destroy());
  c.send(HEAD);
  await waitFor('200', () => c.text() === OK);
  const feeder = feed(c, AUDIO);
  t.after(() => feeder.stop());
  return c;
}

const answersOk = (conn: FakeConn) => conn.answer(OK);

/**
 * A client streaming to A (master) until the master moves to B, which got the replayed head
 * and answers only when the test says so.
 */
async function attemptWaitingAtB(t: { after(fn: () => void): void }) {
  const a = await fake(answersOk);
  const b = await fake(() => {});
  const d = await door(a.hostPort);
  const c = await streamingClient(d, t);
  await waitFor('audio on A', () => a.audioOn(0) > 4000);
  setMaster(d, b.hostPort);
  await waitFor('head replayed to B', () => b.conns.length === 1 && b.conns[0]!.received.toString() === HEAD);
  return { a, b, d, c };
}

test('the master moves back while a re-attach attempt waits for its answer: the audio goes to the master', async (t) => {
  const { a, b, d, c } = await attemptWaitingAtB(t);
  setMaster(d, a.hostPort);
  // B answers late: its mount is no longer where the listeners are.
  b.conns[0]!.answer(OK);
  await waitFor('re-attached to A', () => a.conns.length === 2 && a.audioOn(1) > 4000, { timeoutMs: 5000 });
  await waitFor('B let go', () => b.conns[0]!.closed);
  assert.equal(b.conns.length, 1);
  assert.equal(d.metrics.count('source_proxy.reattach'), 1);
  assert.equal(c.text(), OK, 'nothing but the first 200 reached the client');
  assert.equal(c.closed, false);
});

test('an Icecast that answers 200 after the master moved away from it (change not yet announced) is not attached', async (t) => {
  const { a, b, d, c } = await attemptWaitingAtB(t);
  // master() already names A again; the front door has not called onMasterChange yet.
  d.master.current = a.hostPort;
  b.conns[0]!.answer(OK);
  await waitFor('re-attached to A', () => a.conns.length === 2 && a.audioOn(1) > 4000, { timeoutMs: 5000 });
  await waitFor('B let go', () => b.conns[0]!.closed);
  assert.equal(b.audioOn(0), 0, 'no audio went to B');
  assert.equal(c.text(), OK);
});

test('the master disappears during a re-attach attempt: the attempt is dropped, the hold goes on, the next master gets the source', async (t) => {
  const { a, b, d, c } = await attemptWaitingAtB(t);
  setMaster(d, undefined);
  await waitFor('attempt at B dropped', () => b.conns[0]!.closed, { timeoutMs: 2000 });
  const c2 = await fake(answersOk);
  setMaster(d, c2.hostPort);
  await waitFor('attached to the new master', () => c2.audioOn(0) > 4000, { timeoutMs: 5000 });
  assert.equal(a.conns.length, 1);
  assert.equal(d.metrics.count('source_proxy.reattach'), 1);
  assert.equal(c.text(), OK);
  assert.equal(c.closed, false);
});

test('a replayed request answered with garbage, a huge head or a refusal is retried, and nothing of it reaches the client', async (t) => {
  const a = await fake(answersOk);
  const b = await fake((conn, i) => {
    if (i === 0) conn.answer('\x16\x03\x01 this is not HTTP\r\n\r\n');
    else if (i === 1) conn.answer(`HTTP/1.0 200 OK\r\nX-Pad: ${'x'.repeat(40_000)}`); // never ends
    else if (i === 2) conn.answer('HTTP/1.0 401 Authentication Required\r\n\r\n');
    else conn.answer(OK);
  });
  const d = await door(a.hostPort);
  const c = await streamingClient(d, t);
  setMaster(d, b.hostPort);
  await waitFor('attached at the fourth attempt', () => b.audioOn(3) > 4000, { timeoutMs: 8000 });
  for (const i of [0, 1, 2]) await waitFor(`attempt ${i} closed`, () => b.conns[i]!.closed);
  assert.equal(d.metrics.count('source_proxy.reattach'), 1);
  assert.equal(c.text(), OK);
  assert.equal(c.closed, false);
});

test('a client that never reads a large answer is closed after a grace, not kept forever', async (t) => {
  // An answer far beyond what socket buffers take; Icecast closes after sending it.
  const x = await fake((conn) => {
    conn.socket.end(Buffer.concat([Buffer.from('HTTP/1.0 401 Authentication Required\r\n\r\n'), Buffer.alloc(8 << 20, 0x61)]));
  });
  const d = await door(x.hostPort);
  const s = connect({ host: '127.0.0.1', port: d.port });
  t.after(() => s.destroy());
  s.on('error', () => {});
  s.write(HEAD);
  s.pause();
  await waitFor('session started', () => d.door.counts().sources === 1);
  const t0 = Date.now();
  await waitFor('session closed', () => d.door.counts().sources === 0, { timeoutMs: 12_000 });
  console.log(`# measured: never_reading_client_closed_after_ms=${Date.now() - t0}`);
  await waitFor('upstream closed', () => x.conns[0]!.closed);
});

test('a client that half-closes after its head still gets the answer; one that half-closes while held is let go at once', async (t) => {
  const x = await fake((conn) => conn.socket.end('HTTP/1.0 401 Authentication Required\r\n\r\n'));
  const d = await door(x.hostPort);
  const unauth = new RawClient(d.port);
  t.after(() => unauth.destroy());
  unauth.socket.end('SOURCE /live.mp3 HTTP/1.0\r\nContent-Type: audio/mpeg\r\n\r\n');
  await waitFor('answered and closed', () => unauth.closed);
  assert.equal(unauth.text(), 'HTTP/1.0 401 Authentication Required\r\n\r\n');

  const a = await fake(answersOk);
  const d2 = await door(a.hostPort);
  const c = await streamingClient(d2, t);
  setMaster(d2, undefined);
  await waitFor('held', () => d2.metrics.count('source_proxy.hold') === 1);
  c.socket.end();
  await waitFor('closed', () => c.closed, { timeoutMs: 2000 });
  await waitFor('session gone', () => d2.door.counts().sources === 0);
  assert.equal(c.text(), OK);
});

/** Steps Date.now by `offsetMs` (the wall clock jumped) until the returned function is called. */
function stepWallClock(offsetMs: number): () => void {
  const real = Date.now;
  Date.now = () => real() + offsetMs;
  return () => {
    Date.now = real;
  };
}

test('a wall clock stepped forward during a hold neither ends it early nor takes the client for silent', async (t) => {
  const a = await fake(answersOk);
  const d = await door(a.hostPort, 3000);
  const c = await streamingClient(d, t);
  setMaster(d, undefined);
  await waitFor('held', () => d.metrics.count('source_proxy.hold') === 1);
  const restore = stepWallClock(24 * 3600_000);
  t.after(restore);
  // A scenario parameter: a few retry intervals of the hold go by under the stepped clock.
  await delay(1000);
  assert.equal(c.closed, false, 'the hold ended early');
  setMaster(d, a.hostPort);
  await waitFor('re-attached', () => a.audioOn(1) > 4000, { timeoutMs: 3000 });
  restore();
  assert.equal(c.closed, false);
  assert.equal(d.metrics.count('source_proxy.reattach_failed'), 0);
});

test('a wall clock stepped backwards during a hold does not stretch it', async (t) => {
  const a = await fake(answersOk);
  const d = await door(a.hostPort, 1500);
  const c = await streamingClient(d, t);
  const t0 = performance.now();
  setMaster(d, undefined);
  await waitFor('held', () => d.metrics.count('source_proxy.hold') === 1);
  const restore = stepWallClock(-24 * 3600_000);
  t.after(restore);
  await waitFor('hold over', () => c.closed, { timeoutMs: 5000 });
  restore();
  const heldMs = performance.now() - t0;
  assert.ok(heldMs >= 1500, `closed after ${heldMs} ms`);
  assert.equal(d.metrics.count('source_proxy.reattach_failed'), 1);
});

function activeHandles(): Map<string, number> {
  const m = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) m.set(kind, (m.get(kind) ?? 0) + 1);
  return m;
}

test('every path leaves no timer or socket behind', async (t) => {
  const a = await fake(answersOk);
  const silent = await fake(() => {});
  const d = await door(a.hostPort, 1200);
  const before = activeHandles();
  // Refused upstream (503), an Icecast that never answers, a hold that expires, a client reset
  // in the middle of a re-attach attempt, and a plain stream.
  const refused = await new Promise<HostPort>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve({ host: '127.0.0.1', port }));
    });
  });
  setMaster(d, refused);
  const r503 = new RawClient(d.port);
  r503.send(HEAD);
  await waitFor('503', () => r503.closed && /^HTTP\/1\.[01] 503 /.test(r503.text()));

  setMaster(d, silent.hostPort);
  const mute = new RawClient(d.port);
  mute.send(HEAD);
  await waitFor('head at the silent Icecast', () => silent.conns.length === 1);
  mute.destroy();

  setMaster(d, a.hostPort);
  const expiring = await streamingClient(d, t);
  const resetting = await streamingClient(d, t);
  setMaster(d, silent.hostPort);
  await waitFor('attempts waiting', () => silent.conns.length >= 3);
  resetting.socket.resetAndDestroy();
  setMaster(d, undefined);
  await waitFor('hold expired', () => expiring.closed, { timeoutMs: 4000 });
  await waitFor('no sessions', () => d.door.counts().sources === 0);
  await handlesBackTo(before);
});

test('sessions broken at random points throw nothing out of a callback and leave nothing behind', async () => {
  const seed = Number(process.env.SOURCE_FUZZ_SEED ?? 20261204);
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const later = (ms: number, fn: () => void) => setTimeout(fn, Math.floor(rnd() * ms));
  // An Icecast that answers anything at all, and sometimes dies mid-stream.
  const chaotic = (conn: FakeConn) => {
    const act = pick(['ok', 'ok', 'ok-then-crash', 'unauth', 'garbage', 'close', 'reset', 'silent'] as const);
    if (act === 'ok' || act === 'ok-then-crash') conn.answer(OK);
    if (act === 'ok-then-crash') later(600, () => conn.socket.resetAndDestroy());
    if (act === 'unauth') conn.socket.end('HTTP/1.0 401 Authentication Required\r\n\r\n');
    if (act === 'garbage') conn.socket.end(randomBytes(3000));
    if (act === 'close') conn.socket.destroy();
    if (act === 'reset') conn.socket.resetAndDestroy();
  };
  const x = await fake(chaotic);
  const y = await fake(chaotic);
  const d = await door(x.hostPort, 800);
  const before = activeHandles();
  const clients: RawClient[] = [];
  const feeders: { stop(): void }[] = [];
  let keepers = 0;
  const timers: NodeJS.Timeout[] = [];
  for (let i = 0; i < 40; i++) {
    timers.push(
      setTimeout(() => {
        const c = new RawClient(d.port);
        clients.push(c);
        c.send(HEAD);
        const act = pick(['feed', 'feed', 'half-close', 'reset', 'destroy'] as const);
        // These keep their connection until their head is answered or proxied.
        if (act === 'feed' || act === 'half-close') keepers++;
        if (act === 'feed') feeders.push(feed(c, AUDIO));
        if (act === 'half-close') c.socket.end();
        if (act === 'reset') timers.push(later(800, () => c.socket.resetAndDestroy()));
        if (act === 'destroy') timers.push(later(800, () => c.destroy()));
      }, i * 30),
    );
  }
  for (let i = 0; i < 40; i++) {
    const to = pick([x.hostPort, y.hostPort, undefined]);
    timers.push(later(2000, () => setMaster(d, to)));
  }
  // A scenario parameter: the chaos runs this long before every client is made to leave.
  await delay(2500);
  for (const f of feeders) f.stop();
  for (const c of clients) c.destroy();
  await waitFor('no sessions', () => d.door.counts().sources === 0, { timeoutMs: 5000 });
  await handlesBackTo(before, `seed ${seed}: `);
  const started = d.metrics.count('front_door.source');
  const refused = d.metrics.count('front_door.source.no_master');
  const holds = d.metrics.count('source_proxy.hold');
  console.log(`# seed ${seed}: ${started} sessions, ${refused} refused (no master), ${holds} holds, ${d.metrics.count('source_proxy.reattach')} re-attached`);
  // Every client that stayed until its head was read became a session or got its 503.
  assert.ok(started + refused >= keepers, `seed ${seed}: ${started} sessions + ${refused} refused < ${keepers}`);
});

/** Writes as fast as the connection takes it until stopped; `blocked()` once writes stopped flowing. */
function flood(c: RawClient): { stop(): void; blocked(): boolean; sent(): number } {
  const chunk = randomBytes(64 * 1024);
  let stopped = false;
  let sent = 0;
  const pump = () => {
    while (!stopped && !c.closed) {
      sent += chunk.length;
      if (!c.socket.write(chunk)) {
        c.socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
  return { stop: () => (stopped = true), blocked: () => c.socket.writableNeedDrain, sent: () => sent };
}

test('a client the proxy stopped reading (its Icecast hung) is not taken for silent when that Icecast is then lost', async (t) => {
  // A takes the 200 and then stops reading, as a hung Icecast does, on its first two connections.
  const a = await fake((conn, i) => {
    conn.answer(OK);
    if (i < 2) conn.socket.pause();
  });
  const b = await fake(answersOk);
  const d = await door(a.hostPort);
  const clients = [new RawClient(d.port), new RawClient(d.port)];
  const floods: { stop(): void; blocked(): boolean }[] = [];
  for (const c of clients) {
    t.after(() => c.destroy());
    c.send(HEAD);
    await waitFor('200', () => c.text() === OK);
    const f = flood(c);
    floods.push(f);
    t.after(() => f.stop());
  }
  await waitFor('both clients blocked by the hung Icecast', () => floods.every((f) => f.blocked()), { timeoutMs: 8000 });
  // A scenario parameter: the hang lasts longer than a silent client is kept.
  await delay(CLIENT_SILENCE_MS + 500);
  assert.ok(floods.every((f) => f.blocked()), 'the clients were blocked all along');
  // The first client's Icecast dies: the master is still A, which takes the replayed head.
  a.conns[0]!.socket.destroy();
  await waitFor('first client re-attached to A', () => a.conns.length === 3 && a.audioOn(2) > 4000, { timeoutMs: 5000 });
  // Then the master is lost altogether, and B takes over.
  setMaster(d, undefined);
  // One hold for each client (the first one's second).
  await waitFor('both clients held', () => d.metrics.count('source_proxy.hold') === 3);
  assert.equal(clients[1]!.closed, false, 'the second client was closed instead of held');
  setMaster(d, b.hostPort);
  await waitFor('both on B', () => b.conns.length === 2 && b.audioOn(0) > 4000 && b.audioOn(1) > 4000, { timeoutMs: 5000 });
  for (const c of clients) {
    assert.equal(c.text(), OK);
    assert.equal(c.closed, false);
  }
});

test('after a re-attach, nothing the new Icecast says reaches the client, even once the client half-closed', async (t) => {
  const a = await fake(answersOk);
  // B takes the replayed head, and answers the client's FIN with a second answer of its own.
  const b = await fake((conn) => {
    conn.answer(OK);
    conn.socket.on('end', () => conn.socket.end('HTTP/1.0 500 Internal Server Error\r\n\r\nbye'));
  });
  const d = await door(a.hostPort);
  const c = await streamingClient(d, t);
  setMaster(d, b.hostPort);
  await waitFor('re-attached to B', () => b.audioOn(0) > 4000, { timeoutMs: 5000 });
  c.socket.end();
  await waitFor('B saw the FIN', () => b.conns[0]!.ended);
  await waitFor('client closed', () => c.closed, { timeoutMs: 8000 });
  assert.equal(c.text(), OK, 'only the first 200 ever reached the client');
});

/** Sends `bytes` one byte per write, each on its own turn of the event loop (own TCP segment). */
async function trickle(c: RawClient, bytes: Buffer): Promise<void> {
  for (let i = 0; i < bytes.length; i++) {
    c.socket.write(bytes.subarray(i, i + 1));
    await new Promise((r) => setImmediate(r));
  }
}

test('a head and audio sent one byte at a time, or together in one write, reach Icecast unchanged; a replay is the head alone', async (t) => {
  const a = await fake(answersOk);
  const b = await fake(answersOk);
  const d = await door(a.hostPort);
  const audio = randomBytes(3000);
  // Legacy SOURCE: head and audio in one write, no wait for the answer.
  const together = new RawClient(d.port);
  t.after(() => together.destroy());
  together.send(Buffer.concat([Buffer.from(HEAD), audio]));
  // One byte per segment, head and audio.
  const trickled = new RawClient(d.port);
  t.after(() => trickled.destroy());
  await trickle(trickled, Buffer.from(HEAD));
  await waitFor('both answered', () => together.text() === OK && trickled.text() === OK);
  await trickle(trickled, audio.subarray(0, 600));
  const expected = Buffer.concat([Buffer.from(HEAD), audio]);
  await waitFor('A got both', () => a.conns.length === 2 && a.audioOn(0) === 3000 && a.audioOn(1) === 600);
  assert.ok(a.conns.some((c) => c.received.equals(expected)), 'head and audio in one write arrived unchanged');
  assert.ok(a.conns.some((c) => c.received.equals(expected.subarray(0, HEAD.length + 600))), 'the trickle arrived unchanged');
  const feeders = [feed(together, AUDIO), feed(trickled, AUDIO)];
  t.after(() => feeders.forEach((f) => f.stop()));
  setMaster(d, b.hostPort);
  await waitFor('both on B', () => b.conns.length === 2 && b.audioOn(0) > 2000 && b.audioOn(1) > 2000, { timeoutMs: 5000 });
  for (const conn of b.conns) assert.equal(conn.received.subarray(0, HEAD.length).toString(), HEAD);
  assert.equal(together.text(), OK);
  assert.equal(trickled.text(), OK);
});

test('a master flipping faster than any attempt completes: the source ends on the last master, once, and nothing stays open', async (t) => {
  // Both answer only after 150 ms, longer than a flip lasts.
  const slow = (conn: FakeConn) => setTimeout(() => conn.answer(OK), 150);
  const a = await fake(slow);
  const b = await fake(slow);
  const d = await door(a.hostPort);
  const c = await streamingClient(d, t);
  await waitFor('audio on A', () => a.audioOn(0) > 4000);
  const rnd = seededRandom(7);
  const flips = 60;
  for (let i = 0; i < flips; i++) {
    setMaster(d, [a.hostPort, b.hostPort, undefined][Math.floor(rnd() * 3)]);
    await new Promise((r) => setTimeout(r, Math.floor(rnd() * 40)));
  }
  setMaster(d, b.hostPort);
  await waitFor('streaming on B', () => b.conns.some((conn) => !conn.closed && b.audioOn(b.conns.indexOf(conn)) > 4000), { timeoutMs: 5000 });
  // Every other attempt has been let go: one live upstream in all.
  await waitFor('one upstream left', () => [...a.conns, ...b.conns].filter((conn) => !conn.closed).length === 1, { timeoutMs: 3000 });
  const withAudio = [...a.conns.keys()].filter((i) => i > 0 && a.audioOn(i) > 0);
  assert.deepEqual(withAudio, [], 'no attempt at A got audio after the first move');
  console.log(`# measured: ${flips} flips, ${a.conns.length + b.conns.length - 1} attempts, ${d.metrics.count('source_proxy.reattach')} re-attached`);
  assert.equal(c.text(), OK);
  assert.equal(c.closed, false);
});

/** Waits until no kind of active handle (sockets, timers) outnumbers `before`. */
async function handlesBackTo(before: Map<string, number>, context = ''): Promise<void> {
  await waitFor(
    'handles back to the baseline',
    () => {
      const now = activeHandles();
      return [...now.keys()].every((k) => (now.get(k) ?? 0) <= (before.get(k) ?? 0));
    },
    { timeoutMs: 5000 },
  ).catch((err: Error) => {
    throw new Error(`${context}${err.message}: before ${JSON.stringify([...before])}, now ${JSON.stringify([...activeHandles()])}`);
  });
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

test('200 streaming sources across two master moves and a master loss: all re-attached, fds and timers back after', async (t) => {
  const n = 200;
  const a = await fake(answersOk);
  const b = await fake(answersOk);
  const d = await door(a.hostPort);
  const fdsBefore = openFds();
  const handlesBefore = activeHandles();
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = new RawClient(d.port);
    clients.push(c);
    c.send(HEAD);
  }
  t.after(() => clients.forEach((c) => c.destroy()));
  await waitFor('all answered', () => clients.every((c) => c.text() === OK), { timeoutMs: 10_000 });
  const feeders = clients.map((c) => feed(c, AUDIO, 8000));
  t.after(() => feeders.forEach((f) => f.stop()));
  const live = (f: FakeIcecast) => f.conns.filter((conn, i) => !conn.closed && f.audioOn(i) > 0).length;
  await waitFor('all on A', () => live(a) === n, { timeoutMs: 10_000 });
  setMaster(d, b.hostPort);
  await waitFor('all on B', () => live(b) === n, { timeoutMs: 10_000 });
  setMaster(d, undefined);
  await waitFor('all held', () => live(b) === 0 && d.metrics.count('source_proxy.hold') === 2 * n, { timeoutMs: 5000 });
  setMaster(d, a.hostPort);
  await waitFor('all back on A', () => live(a) === n, { timeoutMs: 10_000 });
  assert.equal(d.metrics.count('source_proxy.reattach'), 2 * n);
  assert.equal(d.metrics.count('source_proxy.reattach_failed'), 0);
  assert.ok(clients.every((c) => c.text() === OK && !c.closed));
  feeders.forEach((f) => f.stop());
  clients.forEach((c) => c.destroy());
  await waitFor('no sessions', () => d.door.counts().sources === 0, { timeoutMs: 5000 });
  await waitFor('upstreams closed', () => [...a.conns, ...b.conns].every((conn) => conn.closed), { timeoutMs: 5000 });
  await waitFor('fds back', () => openFds() <= fdsBefore, { timeoutMs: 5000 }).catch((err: Error) => {
    throw new Error(`${err.message}: ${fdsBefore} before, ${openFds()} now`);
  });
  await handlesBackTo(handlesBefore);
});

test('a reset or a FIN from the client in every state ends the session and its upstream, and leaves nothing behind', async (t) => {
  // A leaves /mute.mp3 unanswered, so a session can stay in Icecast's dialogue.
  const a = await fake((conn) => {
    if (!conn.received.includes('/mute.mp3')) conn.answer(OK);
  });
  const mute = await fake(() => {});
  const d = await door(a.hostPort);
  const before = activeHandles();
  const fdsBefore = openFds();
  const alive = (f: FakeIcecast) => f.conns.filter((conn) => !conn.closed).length;
  for (const how of ['reset', 'fin'] as const) {
    const leave = (c: RawClient) => (how === 'reset' ? c.socket.resetAndDestroy() : c.socket.end());
    setMaster(d, a.hostPort);
    const splicing = new RawClient(d.port);
    t.after(() => splicing.destroy());
    splicing.send(HEAD.replace('/live.mp3', '/mute.mp3'));
    const streaming = await streamingClient(d, t);
    const reattaching = await streamingClient(d, t);
    const held = await streamingClient(d, t);
    await waitFor('four on A', () => alive(a) === 4 && d.door.counts().sources === 4);
    leave(splicing);
    leave(streaming);
    await waitFor(`${how} while splicing and streaming: sessions gone`, () => d.door.counts().sources === 2 && alive(a) === 2, { timeoutMs: 8000 });
    setMaster(d, mute.hostPort);
    await waitFor('replays waiting', () => alive(mute) === 2 && mute.conns.every((conn) => conn.closed || conn.received.length > 0));
    leave(reattaching);
    await waitFor(`${how} while re-attaching: session gone`, () => d.door.counts().sources === 1 && alive(mute) === 1, { timeoutMs: 8000 });
    setMaster(d, undefined);
    await waitFor('held: its attempt let go', () => alive(mute) === 0);
    leave(held);
    await waitFor(`${how} while held: session gone`, () => d.door.counts().sources === 0, { timeoutMs: 8000 });
    for (const c of [splicing, streaming, reattaching, held]) c.destroy();
  }
  await waitFor('fds back', () => openFds() <= fdsBefore, { timeoutMs: 5000 });
  await handlesBackTo(before);
});

test('an Icecast answering a replay one byte at a time is attached; nothing of its answer reaches the client', async (t) => {
  const a = await fake(answersOk);
  const b = await fake((conn) => {
    let i = 0;
    const timer = setInterval(() => {
      if (i >= OK.length || conn.closed) return clearInterval(timer);
      conn.answer(OK[i++]!);
    }, 40);
  });
  const d = await door(a.hostPort);
  const c = await streamingClient(d, t);
  setMaster(d, b.hostPort);
  await waitFor('attached to B', () => b.audioOn(0) > 4000, { timeoutMs: 5000 });
  assert.equal(b.conns.length, 1, 'the slow answer was waited for, not retried');
  assert.equal(c.text(), OK);
  assert.equal(c.closed, false);
});

test('a session does not keep the bytes it read with the head once they are sent on', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  // An Icecast that takes the source and forgets every byte it gets (it only counts them).
  let upstreamBytes = 0;
  const forgetful = await fake((conn) => {
    upstreamBytes += conn.received.length;
    conn.socket.removeAllListeners('data');
    conn.socket.on('data', (chunk: Buffer) => (upstreamBytes += chunk.length));
    conn.received = Buffer.alloc(0);
    conn.answer(OK);
  });
  const d = await door(forgetful.hostPort);
  const n = 100;
  const audioBehindHead = 48 * 1024;
  gc();
  const baseline = process.memoryUsage().arrayBuffers;
  const clients: RawClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = new RawClient(d.port);
    clients.push(c);
    t.after(() => c.destroy());
    // ffmpeg's legacy SOURCE: head and audio in one write.
    c.send(Buffer.concat([Buffer.from(HEAD), randomBytes(audioBehindHead)]));
  }
  await waitFor('all answered', () => clients.every((c) => c.text() === OK), { timeoutMs: 10_000 });
  await waitFor('all written on', () => clients.every((c) => c.socket.writableLength === 0));
  // Bytes still on their way to Icecast are rightly held: wait until every byte got there.
  await waitFor('all received upstream', () => upstreamBytes >= n * (HEAD.length + audioBehindHead), { timeoutMs: 10_000 });
  // Read buffers are freed by the collector after their 'data' handlers ran: let them go first.
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  const retained = process.memoryUsage().arrayBuffers - baseline;
  console.log(`# measured: ${n} sessions retain ${retained} bytes of array buffers`);
  assert.ok(retained < (n * audioBehindHead) / 4, `${n} sessions retain ${retained} bytes`);
});
