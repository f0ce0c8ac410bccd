import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startIcecast, type TestIcecast } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { loadCaptures, type CaptureVector } from '../support/captures.js';
import {
  RawClient,
  basic,
  feed,
  icecastAdminStats,
  icecastMounts,
  makeMp3,
  startDoor,
  startEzstream,
  type Door,
} from './front-door-harness.js';

/**
 * Source clients through the front door into a real Icecast 2.4.4 (source password "srcpw",
 * the one in the newer captures; the older captures carry "hackme" and so meet a 401).
 */

let icecast: TestIcecast;
let d: Door;
let mp3: Awaited<ReturnType<typeof makeMp3>>;
const procs: Managed[] = [];
const vectors = loadCaptures();

function vector(file: string, conn: number): Buffer {
  const v = vectors.find((x: CaptureVector) => x.file === file && x.conn === conn && x.direction === 'request');
  assert.ok(v, `${file} conn ${conn}`);
  return v.bytes;
}

before(async () => {
  icecast = await startIcecast({ sourcePassword: 'srcpw', adminPassword: 'adminpw1' });
  d = await startDoor({ master: { host: icecast.host, port: icecast.port }, localIcecast: { host: icecast.host, port: icecast.port } });
  mp3 = await makeMp3(12);
});

after(async () => {
  for (const p of procs) await p.stop('SIGKILL', 1000);
  await d?.close();
  await icecast?.stop();
  await mp3?.cleanup();
});

async function mountGone(path: string): Promise<void> {
  await waitFor(`${path} gone`, async () => !(await icecastMounts(icecast.url)).has(path), { timeoutMs: 8000 });
}

test('replayed libshout dialogue (ezstream captures): every answer is Icecast\'s own', async (t) => {
  const file = 'ezstream-mp3-proxy.txt';
  const { readFile } = await import('node:fs/promises');
  const audio = await readFile(mp3.file);

  // TLS upgrade probe: Icecast closes without a word, and so must the front door.
  const probe = new RawClient(d.port);
  probe.send(vector(file, 1));
  await waitFor('probe closed', () => probe.closed);
  assert.equal(probe.received.length, 0);

  const poke = new RawClient(d.port);
  poke.send(vector(file, 2));
  await waitFor('poke answered', () => poke.closed);
  assert.match(poke.text(), /^HTTP\/1\.0 400 Bad Request\r\nServer: Icecast 2\.4\.4\r\n/);

  const unauth = new RawClient(d.port);
  unauth.send(vector(file, 3));
  await waitFor('401', () => unauth.closed);
  assert.match(unauth.text(), /^HTTP\/1\.0 401 Authentication Required\r\n/);
  assert.match(unauth.text(), /WWW-Authenticate: Basic realm="Icecast2 Server"\r\n/);

  const source = new RawClient(d.port);
  t.after(() => source.destroy());
  source.send(vector(file, 4));
  await waitFor('200', () => source.text() === 'HTTP/1.0 200 OK\r\n\r\n');
  const feeder = feed(source, audio);
  t.after(() => feeder.stop());
  await waitFor('mount live', async () => (await icecastMounts(icecast.url)).has('/cap.mp3'));

  const metaUnauth = new RawClient(d.port);
  metaUnauth.send(vector(file, 7));
  await waitFor('metadata 401', () => metaUnauth.closed);
  assert.match(metaUnauth.text(), /^HTTP\/1\.0 401 /);
  const meta = new RawClient(d.port);
  meta.send(vector(file, 8));
  await waitFor('metadata 200', () => meta.closed);
  assert.match(meta.text(), /^HTTP\/1\.0 200 OK\r\n[\s\S]*<return>1<\/return>/);
  await waitFor('title applied', async () => (await icecastMounts(icecast.url)).get('/cap.mp3')?.title === 'tone 440');

  source.destroy();
  await mountGone('/cap.mp3');
  await waitFor('front door forgot the sources', () => d.door.counts().sources === 0);
});

test('replayed darkice (bare LF head), liquidsoap and ffmpeg PUT / legacy SOURCE heads', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const audio = await readFile(mp3.file);

  for (const file of ['darkice-proxy.txt', 'liquidsoap-proxy.txt']) {
    const c = new RawClient(d.port);
    t.after(() => c.destroy());
    c.send(vector(file, 1));
    await waitFor(`${file} 200`, () => c.text() === 'HTTP/1.0 200 OK\r\n\r\n');
    c.send(audio.subarray(0, 64_000));
    await waitFor(`${file} mount live`, async () => (await icecastMounts(icecast.url)).has('/cap.mp3'));
    c.destroy();
    await mountGone('/cap.mp3');
  }

  // ffmpeg PUT: Icecast's 100 Continue and 200 come back untouched, in order.
  const put = new RawClient(d.port);
  t.after(() => put.destroy());
  put.send(vector('ffmpeg-mp3-proxy.txt', 1));
  await waitFor('100 then 200', () => put.text().includes('HTTP/1.0 200 OK\r\n\r\n'));
  assert.equal(put.text(), 'HTTP/1.1 100 Continue\r\nContent-Length: 0\r\n\r\nHTTP/1.0 200 OK\r\n\r\n');
  put.send(audio.subarray(0, 64_000));
  await waitFor('PUT mount live', async () => (await icecastMounts(icecast.url)).has('/cap.mp3'));
  put.destroy();
  await mountGone('/cap.mp3');

  // Legacy SOURCE: head and audio in one write; the audio behind the head must reach Icecast.
  const legacy = vector('ffmpeg-5.1-legacy-source-with-icecast-2.4.4.txt', 1);
  const withOurPassword = Buffer.from(
    legacy.toString('latin1').replace('c291cmNlOmhhY2ttZQ==', Buffer.from('source:srcpw').toString('base64')),
    'latin1',
  );
  const src = new RawClient(d.port);
  t.after(() => src.destroy());
  src.send(Buffer.concat([withOurPassword, audio.subarray(0, 64_000)]));
  await waitFor('legacy 200', () => src.text() === 'HTTP/1.0 200 OK\r\n\r\n');
  await waitFor('legacy mount live', async () => (await icecastMounts(icecast.url)).has('/test.mp3'));
  // Icecast publishes byte counters every few seconds, and only while audio flows.
  const feeder = feed(src, audio.subarray(64_000));
  t.after(() => feeder.stop());
  const bytesRead = await waitFor(
    'Icecast counted the audio sent with the head',
    async () => {
      const stats = await icecastAdminStats(icecast.url, icecast.adminPassword);
      const n = Number(/<source mount="\/test\.mp3">[\s\S]*?<total_bytes_read>(\d+)</.exec(stats)?.[1]);
      return n >= 64_000 + 45 ? n : undefined;
    },
    { timeoutMs: 12_000, intervalMs: 250 },
  );
  assert.ok(bytesRead >= 64_045);
  feeder.stop();
  src.destroy();
  await mountGone('/test.mp3');

  // The older captures carry another password: Icecast's 401 comes back and no source appears.
  const wrong = new RawClient(d.port);
  wrong.send(vector('ffmpeg-5.1-put-with-icecast-2.4.4.txt', 1));
  await waitFor('401', () => wrong.closed);
  assert.match(wrong.text(), /^HTTP\/1\.0 401 Authentication Required\r\n/);
  assert.equal((await icecastMounts(icecast.url)).has('/test.mp3'), false);
});

test('ffmpeg PUT streams through the front door and a /_stream listener hears it', async () => {
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '6',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:srcpw@127.0.0.1:${d.port}/test.mp3`,
  ]);
  procs.push(ff);
  await waitFor('mount live', async () => (await icecastMounts(icecast.url)).has('/test.mp3'), { timeoutMs: 8000 });
  const listener = new RawClient(d.port);
  listener.send('GET /_stream/test.mp3 HTTP/1.1\r\nHost: radio.example\r\nUser-Agent: t\r\n\r\n');
  await waitFor('audio', () => listener.received.length > 20_000, { timeoutMs: 8000 });
  const text = listener.text();
  assert.match(text, /^HTTP\/1\.0 200 OK\r\n/);
  assert.match(text, /Content-Type: audio\/mpeg\r\n/);
  assert.match(text, /Access-Control-Allow-Origin: \*\r\n/);
  const body = listener.received.subarray(listener.received.indexOf('\r\n\r\n') + 4);
  assert.ok(body.includes(Buffer.from([0xff, 0xfb])), 'MP3 frame sync in the body');
  listener.destroy();
  assert.equal(await ff.exited, 0, ff.output.join('\n'));
  await mountGone('/test.mp3');
});

test('a wrong password: the client sees Icecast\'s 401 and no source appears', async () => {
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '3',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:WRONG@127.0.0.1:${d.port}/wrong.mp3`,
  ]);
  procs.push(ff);
  const code = await ff.exited;
  assert.notEqual(code, 0);
  assert.match(ff.output.join('\n'), /401/);
  assert.equal((await icecastMounts(icecast.url)).has('/wrong.mp3'), false);
});

test('ezstream (libshout with its TLS probe) streams through the front door', async () => {
  const probesBefore = d.metrics.count('front_door.source');
  const ez = await startEzstream({ port: d.port, password: 'srcpw', mount: '/ez.mp3', mp3 });
  procs.push(ez);
  await waitFor('ezstream mount live', async () => (await icecastMounts(icecast.url)).has('/ez.mp3'), {
    timeoutMs: 10_000,
  });
  const stats = await icecastAdminStats(icecast.url, icecast.adminPassword);
  assert.match(stats, /<source mount="\/ez\.mp3">[\s\S]*?<user_agent>libshout\/2\.4\.6<\/user_agent>/);
  // OPTIONS probe, POKE, 401 SOURCE, authenticated SOURCE: four connections at least.
  assert.ok(d.metrics.count('front_door.source') - probesBefore >= 4);
  await ez.stop('SIGTERM', 2000);
  await mountGone('/ez.mp3');
});

// An Ogg source cannot be resumed mid-stream on another Icecast (its headers are sent once), so
// it is closed; MP3/AAC sources are held and moved instead (source-continuity.test.ts).
test('a master change closes an Ogg source connection; the client is free to reconnect', async () => {
  await waitFor('earlier sources gone', () => d.door.counts().sources === 0);
  const ff = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '30',
    '-c:a', 'libvorbis', '-content_type', 'application/ogg', '-f', 'ogg',
    `icecast://source:srcpw@127.0.0.1:${d.port}/move.ogg`,
  ]);
  procs.push(ff);
  await waitFor('mount live', async () => (await icecastMounts(icecast.url)).has('/move.ogg'), { timeoutMs: 8000 });
  d.door.onMasterChange(); // unchanged master: nothing happens
  assert.equal(d.door.counts().sources, 1);
  const t0 = Date.now();
  d.master.current = { host: '127.0.0.1', port: 9 };
  d.door.onMasterChange();
  await waitFor('source dropped', () => d.door.counts().sources === 0, { timeoutMs: 3000 });
  await mountGone('/move.ogg');
  const code = await Promise.race([ff.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
  assert.notEqual(code, 'still running', 'ffmpeg noticed the close');
  assert.ok(Date.now() - t0 < 8000);
  d.master.current = { host: icecast.host, port: icecast.port };
});

test('admin credentials work on Icecast directly, yet the front door refuses its admin pages', async () => {
  const auth = basic('admin', icecast.adminPassword);
  const direct = await fetch(`${icecast.url}/admin/stats`, { headers: { authorization: auth } });
  assert.equal(direct.status, 200);
  await direct.text();
  const via = await fetch(`http://127.0.0.1:${d.port}/admin/stats`, { headers: { authorization: auth } });
  assert.equal(via.status, 403);
});
