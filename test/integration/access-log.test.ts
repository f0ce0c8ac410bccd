import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../support/wait.js';
import { startProcess, type Managed } from '../support/processes.js';
import { ffmpegSource, startStack, type Stack } from './hardening-harness.js';

/**
 * The real redirectord's --access-log: a listener through /_stream (real Icecast, curl) leaves
 * one line in Icecast's access.log format when it leaves, with its user agent, the bytes it got
 * and its duration; SIGHUP (logrotate's postrotate) makes redirectord write to a new file.
 */

let stack: Stack;
let dir: string;
const procs: Managed[] = [];
const MOUNT = '/live.mp3';

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoradio-access-'));
  stack = await startStack({ mountPaths: [MOUNT], redirectord: { extraArgs: ['--access-log', join(dir, 'access.log')] } });
  const { username, password } = stack.mounts[0]!;
  procs.push(ffmpegSource(`icecast://${username}:${password}@127.0.0.1:${stack.redirectord.httpPort}${MOUNT}`));
});

after(async () => {
  await Promise.all(procs.map((p) => p.stop('SIGKILL')));
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

const read = (name: string) => readFile(join(dir, name), 'utf8').catch(() => '');

async function listenFor(seconds: number, userAgent: string, extra: string[] = []): Promise<void> {
  const url = `http://127.0.0.1:${stack.redirectord.httpPort}/_stream${MOUNT}`;
  await waitFor('a listener gets audio', async () => {
    const curl = startProcess('curl', [...extra, '-s', '-o', '/dev/null', '-A', userAgent, '--max-time', String(seconds), '-w', '%{size_download}', url]);
    await curl.exited;
    return Number(curl.output.join('').trim()) > 8000;
  }, { timeoutMs: 20_000, intervalMs: 500 });
}

test('a finished /_stream session is one combined-format line with address, user agent, bytes and seconds', async () => {
  await listenFor(3, 'RoyaltyReport/1.0 (test)');
  const line = await waitFor('line written', async () => (await read('access.log')).split('\n').find((l) => l.includes('RoyaltyReport/1.0') && l.includes('" 200 ')));
  // Attempts before the source was up were logged too, with Icecast's answer.
  for (const l of (await read('access.log')).split('\n').filter(Boolean)) assert.match(l, /^127\.0\.0\.1 - - \[.*" (200|404) \d+ "-" ".*" \d+$/);
  const m = /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/live\.mp3 HTTP\/1\.1" 200 (\d+) "-" "RoyaltyReport\/1\.0 \(test\)" (\d+)$/.exec(line);
  assert.ok(m, line);
  assert.ok(Number(m[1]) > 8000, `bytes ${m[1]}`);
  assert.ok(Number(m[2]) >= 2 && Number(m[2]) <= 4, `seconds ${m[2]}`);
});

test('SIGHUP reopens the file: after a rotation new sessions go to the new file', async () => {
  await rename(join(dir, 'access.log'), join(dir, 'access.log.1'));
  process.kill(stack.redirectord.pid, 'SIGHUP');
  await waitFor('reopened', () => stack.redirectord.lines.some((l) => l.includes('access log reopened')));
  // The listener claims another address: the log keeps the one its connection came from.
  await listenFor(2, 'AfterRotation/2.0', ['-H', 'X-Forwarded-For: 198.51.100.66']);
  const line = await waitFor('line in the new file', async () => (await read('access.log')).split('\n').find((l) => l.includes('"AfterRotation/2.0"')));
  assert.match(line, /^127\.0\.0\.1 - - /);
  assert.doesNotMatch(await read('access.log'), /198\.51\.100\.66/);
  assert.doesNotMatch(await read('access.log.1'), /AfterRotation/);
  // Still running: SIGHUP no longer ends the daemon.
  assert.equal(stack.redirectord.proc.child.exitCode, null);
});
