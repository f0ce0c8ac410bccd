import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { waitFor } from '../support/wait.js';
import { createLogger } from '../../src/common/logger.js';
import { RecordingMetrics } from '../support/fixtures.js';
import { MountFeed, type FeedSubscriber } from '../../src/redirectord/fanout/mount-feed.js';
import { mp3Frames, RawClient, startDoor } from './front-door-harness.js';
import { StandIn } from './stand-in-master.js';

const HEAD = 'HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n';

/** A local Icecast whose answer to each connection (numbered from 1) the test scripts. */
async function scripted(
  cleanups: (() => Promise<void>)[],
  answer: (sock: Socket, n: number) => void,
): Promise<{ at: { host: string; port: number }; sockets: Set<Socket>; connections: () => number }> {
  const sockets = new Set<Socket>();
  let n = 0;
  const server = createServer((sock) => {
    const mine = ++n;
    sockets.add(sock);
    sock.on('error', () => {});
    sock.once('close', () => sockets.delete(sock));
    sock.once('data', () => answer(sock, mine));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { at: { host: '127.0.0.1', port: (server.address() as AddressInfo).port }, sockets, connections: () => n };
}

function subscriber(): FeedSubscriber & { ended: boolean; audio: number } {
  return {
    ended: false,
    audio: 0,
    onStart() {},
    onAudio(bytes) {
      this.audio += bytes.length;
    },
    onRefused() {
      this.ended = true;
    },
    onEnded() {
      this.ended = true;
    },
  };
}

test('audio gathered before a loss and flushed after a quick re-attach does not restart the wait', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  let lostAt = 0;
  // First connection: audio, then more audio that stays gathered (under a chunk, inside the
  // flush delay), then the connection is lost. Every later one: 200 and silence.
  const local = await scripted(cleanups, (sock, n) => {
    if (n > 1) {
      sock.write(HEAD);
      return;
    }
    sock.write(Buffer.concat([Buffer.from(HEAD), mp3Frames(4)]));
    setTimeout(() => {
      sock.write(mp3Frames(2));
      setTimeout(() => {
        lostAt = performance.now();
        sock.destroy();
      }, 50);
    }, 100);
  });
  const feed = new MountFeed('/held.mp3', {
    upstream: local.at,
    log: createLogger('feed-test', process.env.TEST_LOG_LEVEL ?? 'silent'),
    metrics: new RecordingMetrics(),
    headTimeoutMs: 2000,
    maxHeadBytes: 16_384,
    bodyIdleTimeoutMs: 1600,
    reattachWaitMs: 2000,
    reattachIntervalMs: 50,
    retryAfterSeconds: 2,
    chunkDelayMs: 1500,
  });
  cleanups.push(async () => feed.close('test over'));
  const s = subscriber();
  feed.subscribe(s);
  await waitFor('the upstream lost', () => lostAt > 0, { timeoutMs: 3000 });
  await waitFor('the listener ended', () => s.ended, { timeoutMs: 8000 });
  const heldMs = performance.now() - lostAt;
  // The wait (2 s) plus at most one idle timeout (1.6 s) of an upstream streaming when it ran out.
  assert.ok(heldMs < 4100, `held ${Math.round(heldMs)} ms`);
});

test('a master flapping in a burst while the feed asks a hung old master: the feed ends on the last master, one connection, nothing left on the others', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const oldMaster = await StandIn.start({ kind: 'stall' }, cleanups);
  const other = await StandIn.start({ kind: 'stall' }, cleanups);
  const newMaster = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: oldMaster.at, continuity: { waitMs: 10_000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  cleanups.push(async () => listener.destroy());
  listener.send('GET /_stream/flap.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  local.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('asking the hung old master', () => oldMaster.s.stalled === 1, { timeoutMs: 3000 });
  const movedAt = performance.now();
  const masters = [other.at, oldMaster.at, undefined, newMaster.at];
  for (let i = 0; i < 40; i++) {
    door.master.current = masters[i % masters.length];
    door.door.onMasterChange();
  }
  await waitFor('bridged to the last master', () => newMaster.s.sockets.size === 1 && door.metrics.count('stream_proxy.bridged') === 1, {
    timeoutMs: 3000,
  });
  const before = listener.received.length;
  await waitFor('audio from the last master', () => listener.received.length > before + 5000, { timeoutMs: 3000 });
  assert.ok(performance.now() - movedAt < 2500, `${Math.round(performance.now() - movedAt)} ms to audio from the last master`);
  assert.equal(oldMaster.s.sockets.size, 0, 'the hung old master is left');
  assert.equal(other.s.connections, 0, 'a master that was one only within the burst is never asked');
  assert.equal(listener.closed, false);
});

test('a master change reaching a feed whose listeners all left, and one already closed, opens nothing', async (t) => {
  const cleanups: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  const local = await StandIn.start({ kind: 'audio' }, cleanups);
  const master = await StandIn.start({ kind: 'audio' }, cleanups);
  const next = await StandIn.start({ kind: 'audio' }, cleanups);
  const door = await startDoor({ localIcecast: local.at, master: master.at, continuity: { waitMs: 1000, intervalMs: 100 } });
  cleanups.push(() => door.close());
  const listener = new RawClient(door.port);
  listener.send('GET /_stream/gone.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 5000, { timeoutMs: 5000 });
  listener.destroy();
  door.master.current = next.at;
  door.door.onMasterChange();
  local.s.mode = { kind: 'status', status: 404 };
  master.s.mode = { kind: 'status', status: 404 };
  next.s.mode = { kind: 'status', status: 404 };
  local.s.dropAll();
  await waitFor('the feed gone', () => door.door.counts().feeds === 0, { timeoutMs: 5000 });
  const asked = next.s.connections + master.s.connections + local.s.connections;
  door.master.current = master.at;
  door.door.onMasterChange();
  door.master.current = undefined;
  door.door.onMasterChange();
  assert.equal(next.s.connections + master.s.connections + local.s.connections, asked, 'nothing asked after the feed closed');
});
