import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { waitFor } from '../support/wait.js';
import type { Managed } from '../support/processes.js';
import {
  baseline,
  basicAuth,
  fdCount,
  ffmpegSource,
  icecastSources,
  listen,
  rawExchange,
  rssKb,
  scrape,
  assertAlive,
  startStack,
  waitNearBaseline,
  type Baseline,
  type Stack,
} from './hardening-harness.js';

/**
 * Hostile and broken source clients at the real redirectord's source proxy, with the real
 * Icecast behind it: junk around the head, silent sources, sources faster than real time.
 */

let stack: Stack;
let port: number;
let base: Baseline;
let auth: string;
const extra: Managed[] = [];
const MOUNT = '/live.mp3';

before(async () => {
  stack = await startStack({ mountPaths: [MOUNT] });
  port = stack.redirectord.httpPort;
  auth = basicAuth(stack.mounts[0]!.username, stack.mounts[0]!.password);
  for (let i = 0; i < 3; i++) await fetch(`http://127.0.0.1:${port}/status.json`).then((r) => r.text());
  base = baseline(stack.redirectord.pid);
});

after(async () => {
  await Promise.all(extra.map((p) => p.stop('SIGKILL')));
  await stack?.stop();
});

async function noSource(): Promise<boolean> {
  return !(await icecastSources(stack.icecast)).has(MOUNT);
}

const putHead = (authorization: string) =>
  `PUT ${MOUNT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\nContent-Type: audio/mpeg\r\nExpect: 100-continue\r\nIce-Public: 0\r\n\r\n`;

/**
 * A hand-made source client: sends `head`, waits for Icecast's 200, then calls `feed` with the
 * socket. Resolves what the server answered before the feed.
 */
function rawSource(head: string, feed: (s: Socket) => Promise<void>): Promise<{ answer: string; fed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    let answer = '';
    let fed = false;
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ answer, fed });
    }, 30_000);
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ answer, fed });
    });
    s.on('connect', () => s.write(head));
    const onData = (c: Buffer) => {
      answer += c.toString('latin1');
      if (/HTTP\/1\.[01] 200/.test(answer)) {
        s.off('data', onData);
        s.on('data', () => {});
        fed = true;
        feed(s).then(() => s.destroy(), reject);
      }
    };
    s.on('data', onData);
  });
}

test('junk before the head is never taken for a source', async () => {
  const correct = `SOURCE ${MOUNT} HTTP/1.0\r\nAuthorization: ${auth}\r\nContent-Type: audio/mpeg\r\n\r\n`;
  const cases = [
    Buffer.concat([randomBytes(200), Buffer.from(correct), randomBytes(20_000)]),
    Buffer.from(`XXXX\r\n${correct}` + 'a'.repeat(5000)),
    Buffer.from(` ${correct}`),
    Buffer.from(`\x00${correct}`),
    Buffer.from(`SOURCE\t${MOUNT} HTTP/1.0\r\nAuthorization: ${auth}\r\n\r\n`),
    Buffer.from(`GET / HTTP/1.1\r\nHost: x\r\n\r\n${correct}` + 'a'.repeat(5000)),
  ];
  const results = await Promise.all(cases.map((c) => rawExchange(port, [c], { timeoutMs: 12_000 })));
  for (const [i, r] of results.entries()) {
    const text = r.data.toString('latin1');
    // Case 5's GET / gets its page; nothing may look like Icecast's source dialogue.
    const okCount = (text.match(/HTTP\/1\.[01] (100|200) /g) ?? []).length;
    assert.equal(okCount, i === 5 ? 1 : 0, `case ${i} was proxied: ${text.slice(0, 100)}`);
    assert.doesNotMatch(text, /HTTP\/1\.[01] 401|WWW-Authenticate/i, `case ${i} reached Icecast`);
    assert.ok(r.closed || text.length > 0, `case ${i} hangs`);
  }
  assert.ok(await noSource(), 'Icecast shows a source');
  assertAlive(stack.redirectord);
});

test('junk after the head: Icecast runs the dialogue; wrong credentials forward nothing', async () => {
  // Correct credentials, then junk instead of audio: the proxy splices whatever comes; when the
  // client leaves, the mount is free again.
  const good = await rawSource(putHead(auth), async (s) => {
    for (let i = 0; i < 20; i++) s.write(randomBytes(4096));
    await waitFor('Icecast sees the junk source', () => icecastSources(stack.icecast).then((m) => m.has(MOUNT)), { timeoutMs: 5000 });
  });
  assert.ok(good.fed, `no 200 for the right credentials: ${good.answer}`);
  await waitFor('mount released', noSource, { timeoutMs: 10_000 });

  // Wrong password with audio right behind the head: 401, nothing reaches a mount.
  const bad = await rawExchange(port, [putHead(basicAuth('source', 'wrong')) + randomBytes(30_000).toString('latin1')], {
    timeoutMs: 8000,
  });
  assert.match(bad.data.toString('latin1'), /HTTP\/1\.[01] 401/);
  assert.ok(await noSource());
  // A legacy SOURCE with junk glued to the head and a missing password.
  const legacy = await rawExchange(port, [`SOURCE ${MOUNT} ICE/1.0\r\ncontent-type: audio/mpeg\r\n\r\n` + 'z'.repeat(10_000)], {
    timeoutMs: 8000,
  });
  assert.doesNotMatch(legacy.data.toString('latin1'), /HTTP\/1\.[01] 200/);
  assert.ok(await noSource());
  assertAlive(stack.redirectord);
});

test('sources that never send a byte, or stop after the head, are closed by the timeouts', async () => {
  const t0 = Date.now();
  const silent = Array.from({ length: 40 }, () => rawExchange(port, [], { timeoutMs: 25_000 }));
  // Authenticated, then silence: Icecast's source-timeout (10 s) ends it, the proxy follows.
  const mute = rawSource(putHead(auth), () => new Promise<void>(() => {}));
  await waitFor('source counted', async () => (await scrape(stack.redirectord.metricsPort)).get('autoradio_front_door_sources') === 1, {
    timeoutMs: 5000,
  });
  const results = await Promise.all(silent);
  for (const r of results) assert.ok(r.closed && r.data.length === 0, 'a silent connection was kept or answered');
  const m = await mute;
  assert.ok(m.fed, m.answer);
  const elapsed = Date.now() - t0;
  assert.ok(elapsed < 20_000, `silent sources were held ${elapsed} ms`);
  await waitFor('no sources left', async () => (await scrape(stack.redirectord.metricsPort)).get('autoradio_front_door_sources') === 0);
  await waitFor('Icecast released the mount', noSource, { timeoutMs: 5000 });
  assertAlive(stack.redirectord);
});

test('a source sending far faster than real time: memory stays bounded, listeners still served', async () => {
  // About 1 MB of real MP3 (60 s at 128 kbit/s), sent 24 times back to back without pacing.
  const mp3 = execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin', '-f', 'lavfi', '-i', 'sine=frequency=330:duration=60',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-f', 'mp3', '-',
  ], { maxBuffer: 16 * 1024 * 1024 });
  let peakRss = 0;
  const sample = () => {
    try {
      peakRss = Math.max(peakRss, rssKb(stack.redirectord.pid));
    } catch {
      // The process is gone; the assertions below will say so.
    }
  };
  const sampler = setInterval(sample, 50);
  let listenerBytes = 0;
  const t0 = Date.now();
  try {
    const r = await rawSource(putHead(auth), async (s) => {
      const listener = listen(`http://127.0.0.1:${port}/_stream${MOUNT}`, 200_000, 15_000).then((n) => (listenerBytes = n));
      for (let i = 0; i < 24; i++) {
        if (!s.write(mp3)) await new Promise((res) => s.once('drain', res));
        sample();
        if (s.destroyed) break;
      }
      await listener;
      sample();
    });
    assert.ok(r.fed, `no 200 for the fast source: ${r.answer}`);
  } finally {
    clearInterval(sampler);
  }
  const sent = 24 * mp3.length;
  const seconds = (Date.now() - t0) / 1000;
  console.log(`# fast source: ${(sent / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s; listener ${listenerBytes} B; peak RSS ${peakRss} kB (baseline ${base.rssKb})`);
  assert.ok(peakRss > 0, 'RSS was never sampled');
  assert.ok(listenerBytes >= 100_000, `listener got ${listenerBytes} bytes`);
  assert.ok(peakRss < base.rssKb + 128 * 1024, `RSS peaked at ${peakRss} kB`);
  await waitFor('mount released', noSource, { timeoutMs: 15_000 });
  // Spliced bytes are counted (flushed once a second and when the session ends).
  await waitFor('source bytes counted', async () => {
    const n = (await scrape(stack.redirectord.metricsPort)).get('autoradio_front_door_bytes_total{direction="in",kind="source"}') ?? 0;
    return n >= 1_000_000;
  }, { timeoutMs: 5000 });
  assertAlive(stack.redirectord);
});

test('afterwards: a real source and listener work, fds and RSS are back near baseline', async () => {
  const { username, password } = stack.mounts[0]!;
  const src = ffmpegSource(`icecast://${username}:${password}@127.0.0.1:${port}${MOUNT}`);
  extra.push(src);
  const got = await waitFor('listener audio', async () => {
    const n = await listen(`http://127.0.0.1:${port}/_stream${MOUNT}`, 16_000, 4000);
    return n >= 16_000 ? n : undefined;
  }, { timeoutMs: 20_000, intervalMs: 300 });
  assert.ok(got >= 16_000);
  await src.stop('SIGTERM');
  const now = await waitNearBaseline(stack.redirectord.pid, base);
  console.log(`# baseline fds ${base.fds} rss ${base.rssKb} kB; after ${now.fds} fds (${fdCount(stack.redirectord.pid)}), ${now.rssKb} kB`);
  assertAlive(stack.redirectord);
});
