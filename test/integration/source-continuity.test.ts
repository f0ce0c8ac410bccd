import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { startIcecast, type TestIcecast } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { loadCaptures } from '../support/captures.js';
import type { HostPort } from '../../src/coordination/host-port.js';
import { RawClient, feed, icecastMounts, makeMp3, startDoor, startEzstream, type Door } from './front-door-harness.js';

/**
 * Source continuity: a streaming MP3 source client is kept open across the death of its
 * master's Icecast or a master change, and its audio lands on the new master without the
 * client ever reconnecting. Two real Icecasts (A and B) carry the mount's credentials; the
 * test moves the front door's master() between them.
 */

const PW = 'mountpw1';
const MOUNTS = ['/live.mp3', '/live.ogg']
  .map((m) => `<mount><mount-name>${m}</mount-name><username>source</username><password>${PW}</password></mount>`)
  .join('');
const icecastOpts = { sourcePassword: 'globalpw1', adminPassword: 'adminpw1', extraXml: MOUNTS };
/** A held source gives up after this long on the main door. */
const HOLD_MS = 15_000;
/** The master's death before the new one is known: a scenario parameter, not a synchronisation. */
const OUTAGE_MS = 2000;

const execFileP = promisify(execFile);
let a: TestIcecast;
let b: TestIcecast;
let d: Door;
let mp3: Awaited<ReturnType<typeof makeMp3>>;
const procs: Managed[] = [];

const ep = (i: TestIcecast): HostPort => ({ host: i.host, port: i.port });

function setMaster(door: Door, to: HostPort | undefined): void {
  door.master.current = to;
  door.door.onMasterChange();
}

function ffmpegSource(mount: string, codec: 'mp3' | 'vorbis', password = PW, seconds = 40): Managed {
  const enc =
    codec === 'mp3'
      ? ['-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3']
      : ['-c:a', 'libvorbis', '-content_type', 'application/ogg', '-f', 'ogg'];
  const p = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', String(seconds),
    ...enc, `icecast://source:${password}@127.0.0.1:${d.port}${mount}`,
  ]);
  procs.push(p);
  return p;
}

const running = (p: Managed) => p.child.exitCode === null && p.child.signalCode === null;

async function hasMount(i: TestIcecast, mount: string): Promise<boolean> {
  return (await icecastMounts(i.url)).has(mount);
}

/** A curl listener for a few seconds, then ffprobe on what it got: [bytes, codec]. */
let listens = 0;
async function listen(i: TestIcecast, mount: string): Promise<[number, string]> {
  const file = join(mp3.dir, `listen-${++listens}.mp3`);
  await execFileP('curl', ['-s', '--max-time', '2', '-o', file, `${i.url}${mount}`]).catch((err: { code?: number }) => {
    if (err.code !== 28) throw err; // 28: the time limit, expected for an endless stream
  });
  const { stdout } = await execFileP('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', file]);
  return [(await stat(file)).size, stdout.trim()];
}

function measured(name: string, value: number): void {
  console.log(`# measured: ${name}=${value}`);
}

before(async () => {
  [a, b] = await Promise.all([startIcecast(icecastOpts), startIcecast(icecastOpts)]);
  d = await startDoor({ master: ep(a), continuity: { sourceHoldMs: HOLD_MS } });
  mp3 = await makeMp3(40);
});

after(async () => {
  for (const p of procs) await p.stop('SIGKILL', 1000);
  await d?.close();
  await Promise.all([a?.stop(), b?.stop()]);
  await mp3?.cleanup();
});

test('a wrong password still gets Icecast\'s 401 and is never held', async () => {
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.mp3', 'mp3', 'WRONG', 3);
  assert.notEqual(await ff.exited, 0);
  assert.match(ff.output.join('\n'), /401/);
  await waitFor('session gone', () => d.door.counts().sources === 0, { timeoutMs: 3000 });
  assert.equal(d.metrics.count('source_proxy.hold'), 0);
  assert.equal(await hasMount(a, '/live.mp3'), false);
});

test('an Ogg source is closed on a master change, not held (its stream headers cannot be replayed)', async () => {
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.ogg', 'vorbis');
  await waitFor('ogg live on A', () => hasMount(a, '/live.ogg'), { timeoutMs: 8000 });
  setMaster(d, ep(b));
  await waitFor('session closed', () => d.door.counts().sources === 0, { timeoutMs: 3000 });
  const code = await Promise.race([ff.exited, delay(5000, 'still running')]);
  assert.notEqual(code, 'still running', 'ffmpeg noticed the close');
  assert.equal(d.metrics.count('source_proxy.hold'), 0);
  await waitFor('A dropped the ogg source', async () => !(await hasMount(a, '/live.ogg')), { timeoutMs: 8000 });
  assert.equal(await hasMount(b, '/live.ogg'), false);
});

test('master change with the old master alive: the MP3 session moves to B, A loses it, ffmpeg never notices', async () => {
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.mp3', 'mp3');
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const reattached = d.metrics.count('source_proxy.reattach');
  const t0 = Date.now();
  setMaster(d, ep(b));
  await waitFor('live on B', () => hasMount(b, '/live.mp3'), { timeoutMs: 5000 });
  measured('source_move_live_on_b_ms', Date.now() - t0);
  await waitFor('A lost the source', async () => !(await hasMount(a, '/live.mp3')), { timeoutMs: 8000 });
  assert.equal(d.metrics.count('source_proxy.reattach'), reattached + 1);
  const [bytes, codec] = await listen(b, '/live.mp3');
  assert.equal(codec, 'mp3');
  assert.ok(bytes > 16_000, `listener on B got ${bytes} bytes`);
  assert.ok(running(ff), ff.output.join('\n'));
  assert.equal(d.door.counts().sources, 1);
  await ff.stop('SIGKILL');
  await waitFor('B dropped the source', async () => !(await hasMount(b, '/live.mp3')), { timeoutMs: 8000 });
});

test('the master dies (kill -9): ffmpeg is held, never exits, and streams on B once B is master', async () => {
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.mp3', 'mp3');
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const holds = d.metrics.count('source_proxy.hold');
  const discardedBefore = d.metrics.count('source_proxy.discarded_bytes');
  a.process.child.kill('SIGKILL');
  await a.process.exited;
  await waitFor('session held', () => d.metrics.count('source_proxy.hold') === holds + 1, { timeoutMs: 3000 });
  // master() still names the dead Icecast for a while, as during a real election.
  await delay(OUTAGE_MS);
  assert.ok(running(ff), `ffmpeg exited during the outage: ${ff.output.join('\n')}`);
  const t0 = Date.now();
  setMaster(d, ep(b));
  await waitFor('live on B', () => hasMount(b, '/live.mp3'), { timeoutMs: 5000 });
  const switchMs = Date.now() - t0;
  const [bytes, codec] = await listen(b, '/live.mp3');
  assert.equal(codec, 'mp3');
  assert.ok(bytes > 16_000, `listener on B got ${bytes} bytes`);
  assert.ok(running(ff), ff.output.join('\n'));
  const discarded = d.metrics.count('source_proxy.discarded_bytes') - discardedBefore;
  // About 2 s of 128 kbit/s audio was read and dropped while held.
  assert.ok(discarded > 16_000, `discarded ${discarded}`);
  measured('source_kill_switch_to_live_on_b_ms', switchMs);
  measured('source_kill_discarded_bytes', discarded);
  await ff.stop('SIGKILL');
  await waitFor('B dropped the source', async () => !(await hasMount(b, '/live.mp3')), { timeoutMs: 8000 });
  await a.stop();
  a = await startIcecast(icecastOpts);
});

test('a libshout client (ezstream) survives its master\'s death the same way', async () => {
  setMaster(d, ep(b));
  const ez = await startEzstream({ port: d.port, password: PW, mount: '/live.mp3', mp3 });
  procs.push(ez);
  await waitFor('live on B', () => hasMount(b, '/live.mp3'), { timeoutMs: 10_000 });
  const holds = d.metrics.count('source_proxy.hold');
  const reattached = d.metrics.count('source_proxy.reattach');
  b.process.child.kill('SIGKILL');
  await b.process.exited;
  await waitFor('session held', () => d.metrics.count('source_proxy.hold') === holds + 1, { timeoutMs: 3000 });
  await delay(OUTAGE_MS);
  const t0 = Date.now();
  setMaster(d, ep(a));
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 5000 });
  measured('source_ezstream_switch_to_live_ms', Date.now() - t0);
  assert.equal(d.metrics.count('source_proxy.reattach'), reattached + 1);
  const [, codec] = await listen(a, '/live.mp3');
  assert.equal(codec, 'mp3');
  assert.ok(running(ez), `ezstream exited: ${ez.output.join('\n')}`);
  await ez.stop('SIGTERM', 2000);
  await waitFor('A dropped the source', async () => !(await hasMount(a, '/live.mp3')), { timeoutMs: 8000 });
});

test('the new master refuses until its mount is configured (401): the session is held and attached after the reload', async (t) => {
  // C knows only the global password at first, like a new master whose config is not live yet.
  const c = await startIcecast({ sourcePassword: 'globalpw1', adminPassword: 'adminpw1' });
  t.after(() => c.stop());
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.mp3', 'mp3');
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const reattached = d.metrics.count('source_proxy.reattach');
  setMaster(d, ep(c));
  await waitFor('A lost the source', async () => !(await hasMount(a, '/live.mp3')), { timeoutMs: 8000 });
  // A few refused attempts (every 300 ms) go by; the client hears nothing of them.
  await delay(1000);
  assert.equal(d.metrics.count('source_proxy.reattach'), reattached);
  assert.equal(await hasMount(c, '/live.mp3'), false);
  assert.ok(running(ff), ff.output.join('\n'));
  const config = await readFile(c.configPath, 'utf8');
  await writeFile(c.configPath, config.replace('</icecast>', `${MOUNTS}</icecast>`));
  const t0 = Date.now();
  c.reload();
  await waitFor('live on C', () => hasMount(c, '/live.mp3'), { timeoutMs: 6000 });
  measured('source_reload_to_live_ms', Date.now() - t0);
  assert.equal(d.metrics.count('source_proxy.reattach'), reattached + 1);
  assert.ok(running(ff), ff.output.join('\n'));
  await ff.stop('SIGKILL');
  setMaster(d, ep(a));
});

test('no master comes back: a held darkice session (bare LF head) is closed after the hold, never answered', async (t) => {
  const shortHold = 1500;
  const door = await startDoor({ master: ep(a), continuity: { sourceHoldMs: shortHold } });
  t.after(() => door.close());
  const capture = loadCaptures().find((v) => v.file === 'darkice-proxy.txt' && v.conn === 1 && v.direction === 'request');
  assert.ok(capture);
  const head = Buffer.from(
    capture.bytes
      .toString('latin1')
      .replace('/cap.mp3', '/live.mp3')
      .replace(/Basic \S+/, `Basic ${Buffer.from(`source:${PW}`).toString('base64')}`),
    'latin1',
  );
  const audio = await readFile(mp3.file);
  const c = new RawClient(door.port);
  t.after(() => c.destroy());
  c.send(head);
  await waitFor('200', () => c.text() === 'HTTP/1.0 200 OK\r\n\r\n');
  const feeder = feed(c, audio);
  t.after(() => feeder.stop());
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const t0 = Date.now();
  setMaster(door, undefined);
  assert.equal(door.metrics.count('source_proxy.hold'), 1);
  await delay(shortHold / 2);
  assert.equal(c.closed, false, 'held, not closed');
  await waitFor('client closed', () => c.closed, { timeoutMs: shortHold + 3000 });
  const heldMs = Date.now() - t0;
  measured('source_hold_expired_after_ms', heldMs);
  assert.ok(heldMs >= shortHold, `closed after ${heldMs} ms`);
  assert.equal(c.text(), 'HTTP/1.0 200 OK\r\n\r\n', 'nothing written during the hold');
  assert.equal(door.metrics.count('source_proxy.reattach_failed'), 1);
  assert.equal(door.metrics.count('source_proxy.reattach'), 0);
  await waitFor('session gone', () => door.door.counts().sources === 0, { timeoutMs: 2000 });
  assert.equal(await hasMount(a, '/live.mp3'), false);
});

test('an Icecast that accepts and drops at once does not keep a client held beyond the hold', async (t) => {
  const shortHold = 1500;
  // Answers every source request 200, then closes.
  const flaky = createServer((sock) => {
    sock.on('error', () => {});
    sock.once('data', () => sock.end('HTTP/1.0 200 OK\r\n\r\n'));
  });
  await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
  t.after(() => flaky.close());
  const door = await startDoor({ master: ep(a), continuity: { sourceHoldMs: shortHold } });
  t.after(() => door.close());
  const c = new RawClient(door.port);
  t.after(() => c.destroy());
  c.send(`SOURCE /live.mp3 HTTP/1.0\r\nAuthorization: Basic ${Buffer.from(`source:${PW}`).toString('base64')}\r\nContent-Type: audio/mpeg\r\n\r\n`);
  await waitFor('200', () => c.text() === 'HTTP/1.0 200 OK\r\n\r\n');
  const feeder = feed(c, await readFile(mp3.file));
  t.after(() => feeder.stop());
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const t0 = Date.now();
  setMaster(door, { host: '127.0.0.1', port: (flaky.address() as AddressInfo).port });
  await waitFor('client closed', () => c.closed, { timeoutMs: shortHold + 3000 });
  const heldMs = Date.now() - t0;
  assert.ok(door.metrics.count('source_proxy.reattach') >= 2, 'it did attach, more than once');
  assert.equal(door.metrics.count('source_proxy.reattach_failed'), 1);
  assert.ok(heldMs >= shortHold && heldMs < shortHold + 2000, `closed after ${heldMs} ms`);
  assert.equal(c.text(), 'HTTP/1.0 200 OK\r\n\r\n');
});

test('a replay to a hung Icecast, killed -9 while it waits, then the master back on A: ffmpeg streams on A again', async () => {
  setMaster(d, ep(a));
  const ff = ffmpegSource('/live.mp3', 'mp3');
  await waitFor('live on A', () => hasMount(a, '/live.mp3'), { timeoutMs: 8000 });
  const holds = d.metrics.count('source_proxy.hold');
  const reattached = d.metrics.count('source_proxy.reattach');
  // B accepts connections (the kernel does) and never answers.
  b.process.child.kill('SIGSTOP');
  setMaster(d, ep(b));
  await waitFor('held', () => d.metrics.count('source_proxy.hold') === holds + 1, { timeoutMs: 3000 });
  await waitFor('A let the source go', async () => !(await hasMount(a, '/live.mp3')), { timeoutMs: 8000 });
  b.process.child.kill('SIGKILL');
  await b.process.exited;
  assert.ok(running(ff), ff.output.join('\n'));
  setMaster(d, ep(a));
  await waitFor('live on A again', () => hasMount(a, '/live.mp3'), { timeoutMs: 5000 });
  assert.equal(d.metrics.count('source_proxy.reattach'), reattached + 1);
  assert.equal(d.metrics.count('source_proxy.reattach_failed'), 0);
  const [bytes, codec] = await listen(a, '/live.mp3');
  assert.equal(codec, 'mp3');
  assert.ok(bytes > 16_000, `listener on A got ${bytes} bytes`);
  assert.ok(running(ff), ff.output.join('\n'));
  await ff.stop('SIGKILL');
  await waitFor('A dropped the source', async () => !(await hasMount(a, '/live.mp3')), { timeoutMs: 8000 });
  await b.stop();
  b = await startIcecast(icecastOpts);
});
