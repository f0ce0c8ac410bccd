import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { waitFor } from '../support/wait.js';
import { createLogger } from '../../src/common/logger.js';
import { RecordingMetrics } from '../support/fixtures.js';
import { MountFeed, type FeedSubscriber } from '../../src/redirectord/fanout/mount-feed.js';
import { mp3Frames } from './front-door-harness.js';

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
