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
