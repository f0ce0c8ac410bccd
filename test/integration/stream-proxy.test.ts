import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { startIcecast, type TestIcecast } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';
import { parseStatusJson } from '../../src/radiod/icecast/stats.js';
import { fetchFrontDoorListeners } from '../../src/radiod/front-door-client.js';
import { buildNodeStatus } from '../../src/radiod/node-report.js';
import { waitFor } from '../support/wait.js';
import { RawClient, basic, deframeIcy, icecastMounts, mp3Frames, startDoor, type Door } from './front-door-harness.js';

/** Listeners through `/_stream` to a real Icecast 2.4.4, including re-attach across a source loss. */

let icecast: TestIcecast;
let d: Door;
const procs: Managed[] = [];

before(async () => {
  icecast = await startIcecast({ sourcePassword: 'srcpw' });
  const ice = { host: icecast.host, port: icecast.port };
  d = await startDoor({ master: ice, localIcecast: ice, continuity: { waitMs: 8000, intervalMs: 250 } });
});

after(async () => {
  for (const p of procs) await p.stop('SIGKILL', 1000);
  await d?.close();
  await icecast?.stop();
});

function source(mount: string): Managed {
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '60',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:srcpw@${icecast.host}:${icecast.port}${mount}`,
  ]);
  procs.push(ff);
  return ff;
}

async function live(mount: string): Promise<void> {
  await waitFor(`${mount} live`, async () => (await icecastMounts(icecast.url)).has(mount), { timeoutMs: 8000 });
}

async function setTitle(mount: string, title: string): Promise<void> {
  const res = await fetch(
    `http://127.0.0.1:${d.port}/admin/metadata?mode=updinfo&mount=${encodeURIComponent(mount)}&song=${encodeURIComponent(title)}`,
    { headers: { authorization: basic('source', 'srcpw') } },
  );
  assert.equal(res.status, 200);
  await res.text();
}

function splitHead(buf: Buffer): { head: string; body: Buffer } {
  const i = buf.indexOf('\r\n\r\n');
  return { head: buf.subarray(0, i + 4).toString('latin1'), body: buf.subarray(i + 4) };
}

test('Icy-MetaData, CORS, and the listener survives its source being killed and restarted', async (t) => {
  const first = source('/cont.mp3');
  await live('/cont.mp3');
  await setTitle('/cont.mp3', 'first song');
  const listener = new RawClient(d.port);
  t.after(() => listener.destroy());
  listener.send('GET /_stream/cont.mp3 HTTP/1.1\r\nHost: radio.example\r\nIcy-MetaData: 1\r\nRange: bytes=0-\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 70_000, { timeoutMs: 10_000 });
  const { head } = splitHead(listener.received);
  assert.match(head, /^HTTP\/1\.0 200 OK\r\n/);
  assert.match(head, /icy-metaint:16000\r\n/);
  assert.match(head, /Access-Control-Allow-Origin: \*\r\n/);
  assert.match(head, /Access-Control-Expose-Headers: [^\r]*icy-metaint/);
  const before = deframeIcy(splitHead(listener.received).body, 16000);
  assert.ok(before.titles.some((x) => x.includes('first song')), before.titles.join('|'));

  await waitFor('Icecast counts the listener', async () => (await icecastMounts(icecast.url)).get('/cont.mp3')?.listeners === 1);
  const t0 = Date.now();
  await first.stop('SIGKILL');
  await waitFor('mount gone', async () => !(await icecastMounts(icecast.url)).has('/cont.mp3'), { timeoutMs: 5000 });
  const atLoss = listener.received.length;
  source('/cont.mp3');
  await waitFor('re-attached', () => d.metrics.count('stream_proxy.reattach') === 1, { timeoutMs: 8000 });
  const gapMs = Date.now() - t0;
  await waitFor('audio flows again', () => listener.received.length > atLoss + 70_000, { timeoutMs: 10_000 });
  await setTitle('/cont.mp3', 'second song');
  await waitFor('new title reaches the listener', () =>
    deframeIcy(splitHead(listener.received).body, 16000).titles.some((x) => x.includes('second song')),
    { timeoutMs: 8000 },
  );
  assert.equal(listener.closed, false, 'the listener socket stayed open');
  const all = deframeIcy(splitHead(listener.received).body, 16000);
  assert.deepEqual(all.problems, [], 'ICY framing stayed consistent across the re-attach');
  assert.ok(all.audioBytes > 140_000);
  t.diagnostic(`re-attached ${gapMs} ms after the kill; ${listener.received.length} bytes in total`);

  // The listener leaves: the upstream must go too (http-proxy 1.18.1 leaked these).
  listener.destroy();
  await waitFor('Icecast listener released', async () => (await icecastMounts(icecast.url)).get('/cont.mp3')?.listeners === 0, {
    timeoutMs: 5000,
  });
  await waitFor('front door forgot the stream', () => d.door.counts().streams === 0);
});

test('a listener that half-closes right after its request still gets the stream', async (t) => {
  source('/half.mp3');
  await live('/half.mp3');
  const listener = new RawClient(d.port);
  t.after(() => listener.destroy());
  // The FIN follows the request at once: the listener has nothing more to say, and still reads.
  listener.socket.end('GET /_stream/half.mp3 HTTP/1.1\r\nHost: x\r\nIcy-MetaData: 1\r\n\r\n');
  await waitFor('audio after the half-close', () => listener.received.length > 70_000, { timeoutMs: 10_000 });
  assert.match(listener.text(), /^HTTP\/1\.0 200 OK\r\n/);
  assert.equal(listener.closed, false);
  // Gone for good, it is noticed on the next write and its upstream released.
  listener.destroy();
  await waitFor('Icecast listener released', async () => (await icecastMounts(icecast.url)).get('/half.mp3')?.listeners === 0, {
    timeoutMs: 5000,
  });
  await waitFor('front door forgot the stream', () => d.door.counts().streams === 0);
});

test('a 404 passes through unchanged and is not retried', async () => {
  const c = new RawClient(d.port);
  const t0 = Date.now();
  c.send('GET /_stream/nothing-here.mp3 HTTP/1.0\r\nIcy-MetaData: 1\r\n\r\n');
  await waitFor('closed', () => c.closed, { timeoutMs: 5000 });
  assert.ok(Date.now() - t0 < 2000);
  assert.match(c.text(), /^HTTP\/1\.0 404 File Not Found\r\nServer: Icecast 2\.4\.4\r\n/);
  assert.match(c.text(), /Access-Control-Allow-Origin: \*\r\n/);
  assert.match(c.text(), /404 - The file you requested could not be found/);
});

test('with no source coming back the listener is closed after the bounded wait', async (t) => {
  const d2 = await startDoor({
    localIcecast: { host: icecast.host, port: icecast.port },
    continuity: { waitMs: 1500, intervalMs: 250 },
  });
  t.after(() => d2.close());
  const ff = source('/gone.mp3');
  await live('/gone.mp3');
  const listener = new RawClient(d2.port);
  t.after(() => listener.destroy());
  listener.send('GET /_stream/gone.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 20_000, { timeoutMs: 8000 });
  await ff.stop('SIGKILL');
  const t0 = Date.now();
  await waitFor('listener closed', () => listener.closed, { timeoutMs: 6000 });
  const held = Date.now() - t0;
  assert.ok(held >= 1000 && held < 4500, `held ${held} ms`);
  assert.equal(d2.metrics.count('stream_proxy.reattach_failed'), 1);
  assert.equal(d2.metrics.count('stream_proxy.reattach'), 0);
  t.diagnostic(`listener held ${held} ms before giving up`);
});

test('a burst of feeds opens at most icecastConnectsInFlight connections to Icecast at a time, all served', async (t) => {
  // An upstream that answers each request head 30 ms after it arrived, counting the
  // connections that are open but not yet answered (what overflows Icecast's backlog of 5).
  // One listener per mount: each mount's feed is one connection.
  let unanswered = 0;
  let maxUnanswered = 0;
  const upstream = createServer((sock) => {
    unanswered++;
    maxUnanswered = Math.max(maxUnanswered, unanswered);
    sock.on('error', () => {});
    sock.once('data', () => {
      setTimeout(() => {
        unanswered--;
        sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
        sock.write(mp3Frames(5));
      }, 30);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const door = await startDoor({ localIcecast: { host: '127.0.0.1', port }, limits: { icecastConnectsInFlight: 4 } });
  t.after(() => door.close());

  const listeners = Array.from({ length: 40 }, () => new RawClient(door.port));
  t.after(() => listeners.forEach((l) => l.destroy()));
  listeners.forEach((l, i) => l.send(`GET /_stream/burst${i}.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n`));
  await waitFor('every listener answered', () => listeners.every((l) => l.received.length >= 1000), { timeoutMs: 10_000 });
  for (const l of listeners) assert.match(l.text(), /^HTTP\/1\.0 200 OK\r\n/);
  assert.ok(maxUnanswered <= 4, `${maxUnanswered} connections waited for Icecast at once`);
  assert.ok(maxUnanswered >= 2, 'the burst did overlap');
});

test('listeners of one mount share one upstream connection; each gets the burst from a frame boundary', async (t) => {
  let accepted = 0;
  const upstream = createServer((sock) => {
    accepted++;
    sock.on('error', () => {});
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\nicy-metaint:16000\r\n\r\n');
      sock.write(mp3Frames(20));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const door = await startDoor({ localIcecast: { host: '127.0.0.1', port } });
  t.after(() => door.close());
  const first = new RawClient(door.port);
  t.after(() => first.destroy());
  first.send('GET /_stream/shared.mp3 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('the first listener streams', () => first.received.length >= 19 * 417);
  const later = Array.from({ length: 10 }, () => new RawClient(door.port));
  t.after(() => later.forEach((l) => l.destroy()));
  for (const l of later) l.send('GET /_stream/shared.mp3?x=1 HTTP/1.1\r\nHost: radio\r\n\r\n');
  await waitFor('every later listener got the burst', () => later.every((l) => l.received.length >= 19 * 417));
  assert.equal(accepted, 1, 'one upstream connection for 11 listeners');
  assert.deepEqual([...door.door.listenerCounts()], [['/shared.mp3', 11]]);
  for (const l of [first, ...later]) {
    const i = l.received.indexOf('\r\n\r\n');
    assert.doesNotMatch(l.received.subarray(0, i).toString('latin1'), /^icy-metaint/im, 'not asked for, not sent');
    assert.deepEqual([...l.received.subarray(i + 4, i + 8)], [0xff, 0xfb, 0x90, 0x64], 'the body starts on a frame');
  }
});

test('N listeners of a mount are one Icecast listener; the front door counts N and tells radiod on /_listeners', async (t) => {
  source('/count.mp3');
  await live('/count.mp3');
  const listeners = Array.from({ length: 6 }, () => new RawClient(d.port));
  t.after(() => listeners.forEach((l) => l.destroy()));
  for (const l of listeners) l.send('GET /_stream/count.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('every listener streams', () => listeners.every((l) => l.received.length > 20_000), { timeoutMs: 10_000 });
  await waitFor('Icecast counts one listener', async () => (await icecastMounts(icecast.url)).get('/count.mp3')?.listeners === 1);
  assert.equal(d.door.listenerCounts().get('/count.mp3'), 6);
  const res = await fetch(`http://127.0.0.1:${d.port}/_listeners`);
  assert.equal(res.status, 200);
  const counts = (await res.json()) as { mounts: Record<string, number>; feeds: Record<string, number> };
  assert.equal(counts.mounts['/count.mp3'], 6);
  assert.equal(counts.feeds['/count.mp3'], 1);
  // What radiod makes of it: its own client, Icecast's status as radiod parses it, the node report.
  const stats = parseStatusJson(await (await fetch(`${icecast.url}/status-json.xsl`)).text());
  const frontDoor = await fetchFrontDoorListeners({ host: '127.0.0.1', port: d.port }, 2000);
  const settings = { name: 'n1', addresses: ['127.0.0.1'], icecastPort: icecast.port, maxListeners: 0, bandwidthMbps: 0 };
  const status = buildNodeStatus(settings, stats, 0, Date.now(), {}, { frontDoor });
  assert.equal(status.mounts['/count.mp3'], 6, 'the node reports 6 listeners, not the 1 Icecast sees');
  for (const l of listeners) l.destroy();
  await waitFor('the feed closes after its last listener', async () => (await icecastMounts(icecast.url)).get('/count.mp3')?.listeners === 0, {
    timeoutMs: 6000,
  });
  assert.equal(d.door.listenerCounts().has('/count.mp3'), false);
});

test('ffmpeg decodes through the fan-out across a forced upstream switch without a decode error', { timeout: 90_000 }, async (t) => {
  const first = source('/switch.mp3');
  await live('/switch.mp3');
  await setTitle('/switch.mp3', 'before the switch');
  // Icecast may list a source a moment before it serves its listeners (404 meanwhile).
  await waitFor('the mount serves listeners', async () => (await fetch(`http://127.0.0.1:${d.port}/_stream/switch.mp3`, { method: 'HEAD' })).status === 200);
  const reattached = d.metrics.count('stream_proxy.reattach');
  // ffmpeg asks for ICY metadata itself (its -icy default), so the framing is decoded too.
  const player = startProcess('ffmpeg', [
    '-nostdin', '-v', 'error', '-i', `http://127.0.0.1:${d.port}/_stream/switch.mp3`, '-t', '14', '-f', 'null', '-',
  ]);
  procs.push(player);
  await waitFor('the player is a listener', () => d.door.listenerCounts().get('/switch.mp3') === 1, { timeoutMs: 10_000 });
  await first.stop('SIGKILL');
  // Icecast refuses a second source while it still holds the first.
  await waitFor('mount gone', async () => !(await icecastMounts(icecast.url)).has('/switch.mp3'), { timeoutMs: 5000 });
  source('/switch.mp3');
  await waitFor('the feed re-attached', () => d.metrics.count('stream_proxy.reattach') === reattached + 1, { timeoutMs: 10_000 }).catch((err) => {
    throw new Error(`${(err as Error).message}; reattach ${d.metrics.count('stream_proxy.reattach')} (was ${reattached}); player: ${player.output.join(' | ')}; ${JSON.stringify(d.door.counts())}`);
  });
  const code = await player.exited;
  t.diagnostic(`ffmpeg exit ${code}; stderr: ${JSON.stringify(player.output)}`);
  assert.equal(code, 0);
  assert.deepEqual(player.output, [], 'ffmpeg -v error printed nothing');
});

test('a listener that never reads is skipped, then dropped, and never slows another listener', async (t) => {
  // A fast upstream (about 2 MB/s of MP3 frames) fills a non-reading client's socket buffers quickly.
  let sent = 0;
  const upstream = createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      const timer = setInterval(() => {
        sock.write(mp3Frames(100));
        sent += 41_700;
      }, 20);
      sock.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const door = await startDoor({ localIcecast: { host: '127.0.0.1', port }, limits: { listenerQueueBytes: 65_536, listenerBehindMs: 1500 } });
  t.after(() => door.close());
  const stuck = new RawClient(door.port);
  t.after(() => stuck.destroy());
  stuck.socket.pause();
  stuck.send('GET /_stream/fast.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  const reader = new RawClient(door.port);
  t.after(() => reader.destroy());
  reader.send('GET /_stream/fast.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the reader streams', () => reader.received.length > 100_000, { timeoutMs: 5000 });
  const [bytes0, sent0, t0] = [reader.received.length, sent, Date.now()];
  await waitFor('the stuck listener is skipped', () => door.metrics.count('stream_proxy.slow_skipped') >= 1, { timeoutMs: 20_000 });
  await waitFor('and then dropped', () => door.metrics.count('stream_proxy.slow_dropped') === 1, { timeoutMs: 10_000 });
  await waitFor('the front door let it go', () => door.door.counts().streams === 1, { timeoutMs: 5000 });
  const got = reader.received.length - bytes0;
  const upstreamSent = sent - sent0;
  t.diagnostic(`reader got ${got} B while the upstream sent ${upstreamSent} B in ${Date.now() - t0} ms`);
  // Whole chunks are held back at most a frame at a time: the reader got (nearly) all of it.
  assert.ok(got >= upstreamSent - 50_000, `reader got ${got} of ${upstreamSent} B`);
  assert.equal(door.metrics.count('stream_proxy.slow_dropped'), 1, 'only the stuck listener was dropped');
  assert.equal(reader.closed, false);
});

test('Ogg Vorbis: a listener joining a running feed gets the header pages first and decodes without an error', { timeout: 60_000 }, async (t) => {
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '60',
    '-c:a', 'libvorbis', '-b:a', '64k', '-content_type', 'application/ogg', '-f', 'ogg',
    `icecast://source:srcpw@${icecast.host}:${icecast.port}/late.ogg`,
  ]);
  procs.push(ff);
  await live('/late.ogg');
  await waitFor('the mount serves listeners', async () => (await fetch(`http://127.0.0.1:${d.port}/_stream/late.ogg`, { method: 'HEAD' })).status === 200);
  // The first listener keeps the feed; its header pages (about 4 KB) pass long before the late one comes.
  const first = new RawClient(d.port);
  t.after(() => first.destroy());
  first.send('GET /_stream/late.ogg HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the feed is well past its headers', () => first.received.length > 12_000, { timeoutMs: 15_000 }).catch((err) => {
    throw new Error(`${(err as Error).message}: ${first.received.length} B: ${first.text().slice(0, 600)}`);
  });
  const late = startProcess('ffmpeg', ['-nostdin', '-v', 'error', '-i', `http://127.0.0.1:${d.port}/_stream/late.ogg`, '-t', '3', '-f', 'null', '-']);
  procs.push(late);
  const code = await late.exited;
  t.diagnostic(`late ffmpeg exit ${code}; stderr: ${JSON.stringify(late.output)}`);
  assert.equal(code, 0);
  assert.deepEqual(late.output, [], 'ffmpeg -v error printed nothing');
  // Both shared one feed; the late one has left, the first one stays.
  await waitFor('the late listener gone', () => d.door.listenerCounts().get('/late.ogg') === 1);
  assert.equal(d.door.counts().feeds >= 1, true);
});

test("a feed cut while its mount keeps the source: Icecast's replayed burst is not played twice", { timeout: 60_000 }, async () => {
  // Noise, not a tone: no two stretches of the stream are alike, so a repeat is a real repeat.
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'anoisesrc=color=pink:seed=7', '-t', '40',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:srcpw@${icecast.host}:${icecast.port}/replay.mp3`,
  ]);
  procs.push(ff);
  await live('/replay.mp3');
  await waitFor('the mount serves listeners', async () => (await fetch(`http://127.0.0.1:${d.port}/_stream/replay.mp3`, { method: 'HEAD' })).status === 200);
  const listener = new RawClient(d.port);
  try {
    listener.send('GET /_stream/replay.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
    // Past the first burst, so Icecast holds a full 64 KiB of audio this listener already has.
    await waitFor('the listener has more than a burst', () => listener.received.length > 120_000, { timeoutMs: 15_000 });
    const reattached = d.metrics.count('stream_proxy.reattach');
    const admin = { authorization: basic('admin', icecast.adminPassword) };
    const list = await (await fetch(`${icecast.url}/admin/listclients?mount=/replay.mp3`, { headers: admin })).text();
    const id = /<ID>(\d+)<\/ID>/.exec(list)?.[1];
    assert.ok(id, `the feed is Icecast's listener: ${list}`);
    const kill = await fetch(`${icecast.url}/admin/killclient?mount=/replay.mp3&id=${id}`, { headers: admin });
    assert.equal(kill.status, 200);
    await kill.text();
    await waitFor('the feed re-attached', () => d.metrics.count('stream_proxy.reattach') === reattached + 1, { timeoutMs: 10_000 });
    const atReattach = listener.received.length;
    await waitFor('audio after the re-attach', () => listener.received.length > atReattach + 48_000, { timeoutMs: 15_000 });
    const body = listener.received.subarray(listener.received.indexOf('\r\n\r\n') + 4);
    // Any 2 KiB stretch of noise that shows up twice was played twice.
    const repeats: number[] = [];
    for (let at = 0; at + 2048 <= body.length; at += 1024) {
      const again = body.indexOf(body.subarray(at, at + 2048), at + 1);
      if (again > 0) repeats.push(at);
    }
    assert.deepEqual(repeats.slice(0, 5), [], `${repeats.length} stretches heard twice (body ${body.length} B)`);
  } finally {
    listener.destroy();
    await ff.stop('SIGKILL', 1000);
  }
});

test('an upstream that goes silent but keeps its connection (a hung Icecast) is re-attached; listeners get audio again', async (t) => {
  let connections = 0;
  const upstream = createServer((sock) => {
    sock.on('error', () => {});
    const n = ++connections;
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      sock.write(mp3Frames(20));
      // The first connection hangs after its first frames, like a stopped Icecast; later ones stream.
      if (n === 1) return;
      const timer = setInterval(() => sock.write(mp3Frames(2)), 50);
      sock.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const door = await startDoor({ localIcecast: { host: '127.0.0.1', port }, limits: { feedIdleTimeoutMs: 1000 }, continuity: { waitMs: 5000, intervalMs: 100 } });
  t.after(() => door.close());
  const listener = new RawClient(door.port);
  t.after(() => listener.destroy());
  listener.send('GET /_stream/hang.mp3 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor('the first frames', () => listener.received.length > 5000, { timeoutMs: 5000 });
  const before = listener.received.length;
  await waitFor('the feed gave up on the silent upstream and re-attached', () => door.metrics.count('stream_proxy.reattach') === 1, { timeoutMs: 10_000 });
  await waitFor('audio again', () => listener.received.length > before + 20_000, { timeoutMs: 10_000 });
  assert.equal(connections, 2);
  assert.equal(listener.closed, false);
});

test('300 listeners arriving and leaving in a tight loop leave no listener, feed or upstream connection behind', async (t) => {
  const open = new Set<import('node:net').Socket>();
  const upstream = createServer((sock) => {
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => {});
    sock.once('data', () => {
      sock.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      const timer = setInterval(() => sock.write(mp3Frames(2)), 50);
      sock.on('close', () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  t.after(() => upstream.close());
  const port = (upstream.address() as AddressInfo).port;
  const door = await startDoor({ localIcecast: { host: '127.0.0.1', port } });
  t.after(() => door.close());
  for (let round = 0; round < 30; round++) {
    const clients = Array.from({ length: 10 }, () => new RawClient(door.port));
    // Half write their request a byte at a time, the others in one piece; all leave soon after.
    clients.forEach((c, i) => {
      const request = 'GET /_stream/churn.mp3 HTTP/1.1\r\nHost: x\r\n\r\n';
      if (i % 2 === 0) for (const ch of request) c.send(ch);
      else c.send(request);
    });
    await waitFor('some of them stream', () => clients.some((c) => c.received.length > 0), { timeoutMs: 5000 });
    for (const c of clients) c.destroy();
  }
  await waitFor('no listener counted', () => (door.door.listenerCounts().get('/churn.mp3') ?? 0) === 0, { timeoutMs: 10_000 });
  // The feed lingers 2 s after its last listener, then lets its upstream go.
  await waitFor('no upstream connection left', () => open.size === 0, { timeoutMs: 10_000 });
  assert.equal(door.door.counts().streams, 0);
});
