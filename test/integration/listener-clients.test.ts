import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIcecast, type TestIcecast } from '../support/icecast.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { icecastMounts, startDoor, type Door } from './front-door-harness.js';

/**
 * The players people use, each decoding a mount through the front door's fan-out (`/_stream`)
 * from a real Icecast 2.4.4 fed by ffmpeg: curl, ffmpeg, mpv, VLC and GStreamer. Each one writes
 * what it decoded to a file (PCM), so a player that connects but cannot decode fails. Chromium's
 * `<audio>` is in browser-stream.test.ts.
 */

let icecast: TestIcecast;
let d: Door;
let dir: string;
const procs: Managed[] = [];
const MOUNT = '/players.mp3';
/** One second of 16-bit stereo PCM at 44.1 kHz: every decoder below writes at least this. */
const ONE_SECOND_PCM = 176_400;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoradio-players-'));
  // Writable by the unprivileged user VLC runs as.
  await chmod(dir, 0o777);
  icecast = await startIcecast({ sourcePassword: 'srcpw' });
  const ice = { host: icecast.host, port: icecast.port };
  d = await startDoor({ master: ice, localIcecast: ice });
  const source = startProcess('ffmpeg', [
    '-nostdin', '-loglevel', 'error', '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100', '-ac', '2',
    '-c:a', 'libmp3lame', '-b:a', '128k', '-content_type', 'audio/mpeg', '-f', 'mp3',
    `icecast://source:srcpw@${icecast.host}:${icecast.port}${MOUNT}`,
  ]);
  procs.push(source);
  await waitFor('the source on Icecast', async () => (await icecastMounts(icecast.url)).has(MOUNT), { timeoutMs: 15_000 });
  await waitFor('the mount serves listeners', async () => (await fetch(`http://127.0.0.1:${d.port}/_stream${MOUNT}`, { method: 'HEAD' })).status === 200);
});

after(async () => {
  for (const p of procs) await p.stop('SIGKILL', 1000);
  await d?.close();
  await icecast?.stop();
  await rm(dir, { recursive: true, force: true });
});

const url = () => `http://127.0.0.1:${d.port}/_stream${MOUNT}`;

async function sizeOf(file: string): Promise<number> {
  return (await stat(file).catch(() => undefined))?.size ?? 0;
}

/** Runs a player until it has decoded `bytes` into `file` (or fails), then stops it. */
async function decodes(name: string, argv: string[], file: string, bytes = ONE_SECOND_PCM, stopSignal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const player = startProcess(argv[0]!, argv.slice(1));
  procs.push(player);
  try {
    await waitFor(`${name} decoding`, async () => {
      if (player.child.exitCode !== null && (await sizeOf(file)) < bytes) throw new Error(`${name} exited ${player.child.exitCode}: ${player.output.slice(-10).join(' | ')}`);
      return (await sizeOf(file)) >= bytes;
    }, { timeoutMs: 30_000, intervalMs: 100 });
  } finally {
    await player.stop(stopSignal, 3000);
  }
  await waitFor(`${name} gone from the front door's count`, () => (d.door.listenerCounts().get(MOUNT) ?? 0) === 0, { timeoutMs: 10_000 });
}

test('curl receives MPEG audio frames', async () => {
  const file = join(dir, 'curl.mp3');
  await decodes('curl', ['curl', '-s', '-o', file, '--max-time', '20', url()], file, 32_000);
  const body = await readFile(file);
  assert.equal(body[0], 0xff, 'the body starts on an MPEG frame sync');
  assert.equal(body[1]! & 0xe0, 0xe0);
});

test('ffmpeg decodes to PCM', async () => {
  const file = join(dir, 'ffmpeg.wav');
  await decodes('ffmpeg', ['ffmpeg', '-nostdin', '-v', 'error', '-i', url(), '-f', 'wav', '-y', file], file);
});

test('mpv decodes to PCM', async () => {
  const file = join(dir, 'mpv.wav');
  await decodes('mpv', ['mpv', '--no-config', '--no-video', '--ao=pcm', `--ao-pcm-file=${file}`, '--really-quiet', url()], file);
});

test('VLC decodes to PCM', async () => {
  const file = join(dir, 'vlc.wav');
  // VLC refuses to run as root (CI runs the tests as root): then it runs as nobody.
  const vlc = process.getuid?.() === 0 ? ['runuser', '-u', 'nobody', '--', 'cvlc'] : ['cvlc'];
  await decodes('VLC', [...vlc, '--no-video', '--aout', 'afile', '--audiofile-file', file, '--audiofile-wav', url()], file);
});

test('GStreamer (souphttpsrc, decodebin) decodes to PCM', async () => {
  const file = join(dir, 'gst.wav');
  await decodes(
    'GStreamer',
    ['gst-launch-1.0', '-q', '-e', 'souphttpsrc', `location=${url()}`, '!', 'decodebin', '!', 'audioconvert', '!', 'wavenc', '!', 'filesink', `location=${file}`],
    file,
    ONE_SECOND_PCM,
    'SIGINT',
  );
});
