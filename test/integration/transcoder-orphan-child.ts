/**
 * Helper for transcoder-process.test.ts (not a test itself): a parent that starts one
 * supervised liquidsoap and prints `{"pid":N}` once it runs, so the test can SIGKILL this
 * process and check that liquidsoap does not outlive it.
 * Usage: node --import tsx test/integration/transcoder-orphan-child.ts SCRIPT_PATH MOUNT
 */
import { pino } from 'pino';
import { TranscoderProcess } from '../../src/radiod/transcoder/process.js';
import { transcoderScript } from '../../src/radiod/transcoder/script.js';

const [scriptPath, mount] = process.argv.slice(2) as [string, string];
const { env } = transcoderScript(
  { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
  { icecast: { host: '127.0.0.1', port: 1 }, sourceMount: '/main.mp3', targetMount: mount, username: 'u1', password: 'password1' },
);
const proc = new TranscoderProcess({
  mount,
  liquidsoapPath: 'liquidsoap',
  scriptPath,
  env,
  log: pino({ level: 'warn' }, pino.destination(2)),
});
proc.on('spawn', (pid) => void process.stdout.write(`${JSON.stringify({ pid })}\n`));
proc.start();
