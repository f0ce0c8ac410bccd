import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mp3Frames, RawClient, startDoor } from './front-door-harness.js';
import { StandIn } from './stand-in-master.js';

/**
 * A former master's listeners: its Icecast lost the source (it moved to the new master) and has
 * nothing for the mount until its own relay starts, about 2 s after the reload. The fan-out feed
 * holding them takes the audio from the master's Icecast meanwhile (the bridge), then goes back
 * to the local Icecast as soon as it answers.
 */

/** Longest pause between two pieces of audio a listener got since `from` (ms). */
function gapTracker(client: RawClient): { maxGapSince(from: number): number } {
  const arrivals: number[] = [];
  client.socket.on('data', () => arrivals.push(performance.now()));
  return {
    maxGapSince(from: number) {
      let last = from;
      let most = 0;
      for (const t of arrivals.filter((a) => a >= from)) {
        most = Math.max(most, t - last);
        last = t;
      }
      return Math.max(most, performance.now() - last);
    },
  };
}

test("a feed whose local Icecast has nothing is bridged to the master's, then goes home", async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  const gaps = gapTracker(listener);
  listener.send('GET /_stream/bridge.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio from the local Icecast', () => listener.received.length > 5000, { timeoutMs: 5000 });
  assert.equal(master.s.connections, 0, 'the master is not asked while the local Icecast streams');

  // The source leaves this Icecast; its relay is not there yet.
  local.s.mode = { kind: 'status', status: 404 };
  const cutAt = performance.now();
  local.s.dropAll();
  await waitFor('bridged to the master', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  const bridgedAfterMs = performance.now() - cutAt;
  const before = listener.received.length;
  await waitFor('audio from the master', () => listener.received.length > before + 5000, { timeoutMs: 3000 });
  // The local Icecast is asked again while the bridge streams, and still has nothing.
  const localAsked = local.s.connections;
  await waitFor('the local Icecast asked again', () => local.s.connections > localAsked, { timeoutMs: 3000 });
  assert.equal(master.s.sockets.size, 1, 'one bridge connection');

  // Its relay is up: the feed goes home and lets the master go.
  local.s.mode = { kind: 'audio' };
  await waitFor('back on the local Icecast', () => master.s.sockets.size === 0 && local.s.sockets.size === 1, { timeoutMs: 4000 });
  const home = listener.received.length;
  await waitFor('audio from the local Icecast again', () => listener.received.length > home + 5000, { timeoutMs: 3000 });
  assert.equal(listener.closed, false, 'the listener was never closed');
  assert.ok(bridgedAfterMs < 1000, `bridged after ${Math.round(bridgedAfterMs)} ms`);
  assert.ok(gaps.maxGapSince(cutAt) < 1000, `longest silence ${Math.round(gaps.maxGapSince(cutAt))} ms`);
});

test('with nothing on the master either, the held listener is closed after the bounded wait, and the master is not hammered', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'status', status: 404 }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 2000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/gone.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('the listener closed once the wait is over', () => listener.closed, { timeoutMs: 6000 });
  assert.equal(door.metrics.count('stream_proxy.bridged'), 0);
  // Each pause of 100 ms is followed by one question to the local Icecast and, on its no, one to
  // the master: at most one to the master per pause over the 2 s wait.
  assert.ok(master.s.connections >= 5 && master.s.connections <= 22, `${master.s.connections} questions to the master`);
});

test('a node that is master itself has no bridge: its feed only ever asks its own Icecast', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, continuity: { waitMs: 1500, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/self.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  const asked = local.s.connections;
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('the listener closed once the wait is over', () => listener.closed, { timeoutMs: 5000 });
  // Every 100 ms for 1.5 s: the local Icecast had every attempt.
  assert.ok(local.s.connections - asked >= 10, `${local.s.connections - asked} attempts on the local Icecast`);
});

test('a bridge that answers another format does not end the listeners; a local Icecast that stalls does not disturb the bridge', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  // The master first streams Ogg (as if another mount took the name), then MP3.
  let masterFormat = 'application/ogg';
  const masterSockets = new Set<Socket>();
  const masterServer = createServer((sock) => {
    masterSockets.add(sock);
    sock.on('error', () => {});
    sock.once('close', () => masterSockets.delete(sock));
    sock.once('data', () => {
      sock.write(`HTTP/1.0 200 OK\r\nContent-Type: ${masterFormat}\r\n\r\n`);
      const timer = setInterval(() => sock.write(mp3Frames(4)), 50);
      sock.once('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => masterServer.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of masterSockets) s.destroy();
    await new Promise<void>((resolve) => masterServer.close(() => resolve()));
  });
  const door = await startDoor({
    localIcecast: local.at,
    master: { host: '127.0.0.1', port: (masterServer.address() as AddressInfo).port },
    continuity: { waitMs: 10_000, intervalMs: 100 },
  });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/format.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'stall' };
  local.s.dropAll();
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(listener.closed, false, 'a bridge of another format is no reason to end the stream');
  assert.equal(door.metrics.count('stream_proxy.bridged'), 0);
  masterFormat = 'audio/mpeg';
  await waitFor('bridged once the master streams the same format', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  const before = listener.received.length;
  // The local Icecast stalls every homecoming question: the bridge streams on meanwhile.
  await waitFor('audio from the bridge while home stalls', () => listener.received.length > before + 20_000 && local.s.stalled >= 1, {
    timeoutMs: 5000,
  });
  assert.equal(listener.closed, false);
});

/** A stand-in master's Icecast whose answer to each connection the test scripts. */
async function scriptedMaster(
  cleanups: (() => Promise<void>)[],
  answer: (sock: Socket) => void,
): Promise<{ at: { host: string; port: number }; sockets: Set<Socket>; connections: () => number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.once('close', () => sockets.delete(sock));
    sock.once('data', () => answer(sock));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { at: { host: '127.0.0.1', port: (server.address() as AddressInfo).port }, sockets, connections: () => connections };
}

test('a homecoming question still unanswered when the bridge is lost is dropped, not left holding a connection to the local Icecast', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/stale.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  // The local Icecast hangs on the next homecoming question (the 10 s head timeout).
  local.s.mode = { kind: 'stall' };
  await waitFor('a homecoming question hanging', () => local.s.stalled === 1, { timeoutMs: 3000 });
  // The bridge goes; the local Icecast is back and takes the feed through the re-attach.
  local.s.mode = { kind: 'audio' };
  master.s.mode = { kind: 'status', status: 404 };
  master.s.dropAll();
  await waitFor('re-attached to the local Icecast', () => door.metrics.count('stream_proxy.reattach') === 2, { timeoutMs: 3000 });
  await waitFor('one connection to the local Icecast, the hung question gone', () => local.s.sockets.size === 1 && local.s.stalled === 0, {
    timeoutMs: 2000,
  });
  assert.equal(listener.closed, false);
});

test('a bridge that answers 200 and hangs up at once, again and again, does not hold the listeners beyond the wait', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await scriptedMaster(cleanups, (sock) => sock.end('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n'));
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 1500, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/hangup.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  const cutAt = performance.now();
  local.s.dropAll();
  await waitFor('the listener closed once the wait is over', () => listener.closed, { timeoutMs: 5000 });
  const heldMs = performance.now() - cutAt;
  assert.ok(heldMs < 2500, `held ${Math.round(heldMs)} ms`);
  // One question to the master per pause of 100 ms at most, over the 1.5 s wait.
  assert.ok(master.connections() <= 22, `${master.connections()} questions to the master`);
});

test('a bridge that answers 200 and never sends audio ends the listeners once the wait is over, not one idle timeout after another', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await scriptedMaster(cleanups, (sock) => sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n'));
  const door = await startDoor({
    localIcecast: local.at,
    master: master.at,
    continuity: { waitMs: 1500, intervalMs: 100 },
    limits: { feedIdleTimeoutMs: 800 },
  });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/mute.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  const cutAt = performance.now();
  local.s.dropAll();
  await waitFor('the listener closed', () => listener.closed, { timeoutMs: 6000 });
  const heldMs = performance.now() - cutAt;
  // The wait (1.5 s), plus at most one idle timeout (0.8 s) of a bridge that was streaming when it ran out.
  assert.ok(heldMs < 3000, `held ${Math.round(heldMs)} ms`);
});

test('a listener joining while the feed is bridged gets the head and a burst, then the audio', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const first = new RawClient(door.port);
  cleanups.push(async () => first.destroy());
  first.send('GET /_stream/join.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => first.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  const second = new RawClient(door.port);
  cleanups.push(async () => second.destroy());
  second.send('GET /_stream/join.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the second listener streams', () => second.received.length > 20_000, { timeoutMs: 5000 });
  const text = second.text();
  const headEnd = text.indexOf('\r\n\r\n');
  assert.match(text.slice(0, headEnd), /^HTTP\/1\.[01] 200/);
  assert.match(text.slice(0, headEnd), /content-type: audio\/mpeg/i);
  // The body starts on a frame.
  assert.deepEqual([...second.received.subarray(headEnd + 4, headEnd + 6)], [0xff, 0xfb]);
  assert.equal(master.s.sockets.size, 1, 'both listeners share the one bridge connection');
});

test('a local Icecast answering another format on homecoming leaves the feed on the bridge, asked about once a second', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/other.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  let oggAnswers = 0;
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  // From now on the local Icecast answers 200 with Ogg.
  local.s.server.removeAllListeners('connection');
  local.s.server.on('connection', (sock: Socket) => {
    oggAnswers++;
    sock.on('error', () => {});
    sock.once('data', () => sock.write('HTTP/1.0 200 OK\r\nContent-Type: application/ogg\r\n\r\nOggS'));
  });
  const before = listener.received.length;
  await waitFor('three homecoming answers of Ogg while the bridge streams', () => oggAnswers >= 3 && listener.received.length > before + 20_000, {
    timeoutMs: 6000,
  });
  assert.ok(oggAnswers <= 5, `${oggAnswers} homecoming questions`);
  assert.equal(listener.closed, false);
  assert.equal(master.s.sockets.size, 1);
});

test('closing the front door while bridged with a homecoming question hanging leaves no connection behind', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/shut.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  local.s.mode = { kind: 'stall' };
  await waitFor('a homecoming question hanging', () => local.s.stalled === 1, { timeoutMs: 3000 });
  await door.close();
  await waitFor('no connection to either Icecast', () => local.s.sockets.size === 0 && master.s.sockets.size === 0, { timeoutMs: 2000 });
});

/** True when every 417-byte step of the listener's body (after its head) starts an MP3 frame. */
function onFrames(client: RawClient): boolean {
  const headEnd = client.received.indexOf('\r\n\r\n');
  const body = client.received.subarray(headEnd + 4);
  for (let at = 0; at + 1 < body.length; at += 417) if (body[at] !== 0xff || body[at + 1] !== 0xfb) return false;
  return true;
}

test('a bridge that sends its head and audio in small odd fragments is still played on frame boundaries', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await scriptedMaster(cleanups, (sock) => {
    sock.setNoDelay(true);
    const bytes = Buffer.concat([Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n'), mp3Frames(200)]);
    let at = 0;
    // One byte at a time through the head, then 13 bytes (never a frame's worth) per write.
    const timer = setInterval(() => {
      const step = at < 60 ? 1 : 13;
      if (!sock.destroyed) sock.write(bytes.subarray(at, at + step));
      at += step;
      if (at >= bytes.length) clearInterval(timer);
    }, 1);
    sock.once('close', () => clearInterval(timer));
  });
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/crumbs.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged', () => door.metrics.count('stream_proxy.bridged') === 1, { timeoutMs: 3000 });
  const before = listener.received.length;
  await waitFor('audio from the fragmented bridge', () => listener.received.length > before + 4 * 417, { timeoutMs: 5000 });
  assert.ok(onFrames(listener), 'the listener got whole frames only');
  assert.equal(listener.closed, false);
});

test('while bridged, the master moving elsewhere moves the bridge at once, even off a silent old master; moving to this node sends the feed home', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const oldMaster = await StandIn.start({ kind: 'audio' }, cleanups);
  const newMaster = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: oldMaster.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/moving.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('bridged to the old master', () => oldMaster.s.sockets.size === 1 && door.metrics.count('stream_proxy.bridged') === 1, {
    timeoutMs: 3000,
  });
  // The old master is cut off: its connection stays open and silent (the idle timeout is 15 s).
  oldMaster.s.silence();
  door.master.current = newMaster.at;
  const movedAt = performance.now();
  door.door.onMasterChange();
  await waitFor('bridged to the new master', () => newMaster.s.sockets.size === 1 && door.metrics.count('stream_proxy.bridged') === 2, {
    timeoutMs: 3000,
  });
  const before = listener.received.length;
  await waitFor('audio from the new master', () => listener.received.length > before + 5000, { timeoutMs: 3000 });
  assert.ok(performance.now() - movedAt < 2000, `${Math.round(performance.now() - movedAt)} ms to audio from the new master`);
  assert.equal(oldMaster.s.sockets.size, 0, 'the silent old master is left');
  // This node becomes master: no bridge any more; the feed goes home as soon as the local Icecast has the mount.
  local.s.mode = { kind: 'audio' };
  door.master.current = undefined;
  door.door.onMasterChange();
  await waitFor('home', () => newMaster.s.sockets.size === 0 && local.s.sockets.size === 1, { timeoutMs: 4000 });
  const home = listener.received.length;
  await waitFor('audio from home', () => listener.received.length > home + 5000, { timeoutMs: 3000 });
  assert.ok(onFrames(listener), 'whole frames across every switch');
  assert.equal(listener.closed, false);
});
