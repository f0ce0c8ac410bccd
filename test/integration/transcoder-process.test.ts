import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { TranscoderProcess, transcoderLabel, type TranscoderExit } from '../../src/radiod/transcoder/process.js';
import { transcoderScript } from '../../src/radiod/transcoder/script.js';

const dirs: string[] = [];
const procs: TranscoderProcess[] = [];
const children: Managed[] = [];
after(async () => {
  await Promise.all(procs.map((p) => p.stop()));
  await Promise.all(children.map((c) => c.stop('SIGKILL')));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'autoradio-tc-proc-'));
  dirs.push(dir);
  return dir;
}

function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

/** Alive = exists and not a zombie (PID 1 here may be slow to reap reparented children). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function fakeLiquidsoap(dir: string, body: string): Promise<string> {
  const path = join(dir, 'fake-liquidsoap');
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

const mp3Env = (mount: string) =>
  transcoderScript(
    { source: '/main.mp3', codec: 'mp3', bitrate: 64, samplerate: 44100, channels: 2 },
    { icecast: { host: '127.0.0.1', port: 1 }, sourceMount: '/main.mp3', targetMount: mount, username: 'u1', password: 'password1' },
  );

test('a crashing liquidsoap is restarted with doubling delays, its lines logged with the mount', async () => {
  const dir = await tempDir();
  // Stands in for liquidsoap: one log line in liquidsoap's format, then a crash.
  const fake = await fakeLiquidsoap(dir, 'echo "2026/11/22 02:20:45 [clock.main:2] boom for $AUTORADIO_TRANSCODER_MOUNT $3"; exit 3');
  const { log, lines } = capturingLogger();
  const proc = new TranscoderProcess({
    mount: '/crash.mp3',
    liquidsoapPath: fake,
    scriptPath: join(dir, 'unused.liq'),
    env: { AUTORADIO_TRANSCODER_MOUNT: '/crash.mp3' },
    log,
    backoff: { initialMs: 100, maxMs: 400, resetAfterMs: 60_000 },
  });
  procs.push(proc);
  const exits: TranscoderExit[] = [];
  proc.on('exit', (e: TranscoderExit) => exits.push(e));
  proc.start();
  await waitFor('five exits', () => exits.length >= 5, { timeoutMs: 10_000 });
  await proc.stop();
  const count = exits.length;
  assert.deepEqual(exits.slice(0, 5).map((e) => e.code), [3, 3, 3, 3, 3]);
  assert.deepEqual(exits.slice(0, 5).map((e) => e.restartInMs), [100, 200, 400, 400, 400]);
  assert.ok(proc.restarts >= 4);
  const boom = lines.find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('boom'));
  assert.ok(boom, 'liquidsoap output reaches the log');
  assert.equal(boom['mount'], '/crash.mp3');
  assert.equal(boom['level'], 40, 'liquidsoap level 2 (severe) is logged as a warning');
  assert.equal(boom['msg'], `boom for /crash.mp3 ${transcoderLabel('/crash.mp3')}`);
  // Stopped: no restart afterwards.
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(exits.length, count, 'no restart after stop()');
});

test('stop() signals the whole process group and escalates to SIGKILL', async () => {
  const dir = await tempDir();
  const pidFile = join(dir, 'grandchild.pid');
  // Ignores SIGTERM and has a child of its own: both must be gone after stop().
  const fake = await fakeLiquidsoap(dir, `trap '' TERM; sleep 1000 & echo $! > ${pidFile}; wait; wait`);
  const { log } = capturingLogger();
  const proc = new TranscoderProcess({
    mount: '/stubborn.mp3', liquidsoapPath: fake, scriptPath: 'x.liq', env: {}, log, stopGraceMs: 500,
  });
  procs.push(proc);
  let exit: TranscoderExit | undefined;
  proc.on('exit', (e: TranscoderExit) => (exit = e));
  proc.start();
  const pid = proc.pid!;
  const grandchild = await waitFor('grandchild pid', async () => Number(await readFile(pidFile, 'utf8').catch(() => '')) || undefined);
  assert.ok(await alive(pid));
  const t0 = Date.now();
  await proc.stop();
  const took = Date.now() - t0;
  assert.equal(exit?.signal, 'SIGKILL');
  assert.equal(exit?.restartInMs, undefined);
  assert.ok(took >= 450 && took < 3000, `stop took ${took} ms`);
  await waitFor('grandchild gone', async () => !(await alive(grandchild)), { timeoutMs: 3000 });
});

test('real liquidsoap: logs reach pino, SIGTERM stops it, and a SIGKILLed parent leaves no orphan', async (t) => {
  const dir = await tempDir();
  const scriptPath = join(dir, 'orphan.liq');
  await writeFile(scriptPath, mp3Env('/orphan.mp3').text);
  const inProcessScript = join(dir, 'inproc.liq');
  await writeFile(inProcessScript, mp3Env('/inproc.mp3').text);

  // 1. In this process: a real liquidsoap whose log lines come back tagged with the mount.
  const { log, lines } = capturingLogger();
  const proc = new TranscoderProcess({
    mount: '/inproc.mp3', liquidsoapPath: 'liquidsoap', scriptPath: inProcessScript, env: mp3Env('/inproc.mp3').env, log,
  });
  procs.push(proc);
  let exit: TranscoderExit | undefined;
  proc.on('exit', (e: TranscoderExit) => (exit = e));
  proc.start();

  // 2. In a child node process that is then SIGKILLed (runs meanwhile: liquidsoap starts slowly).
  const child = startProcess(process.execPath, ['--import', 'tsx', 'test/integration/transcoder-orphan-child.ts', scriptPath, '/orphan.mp3']);
  children.push(child);
  const orphanPid = await waitFor(
    'child reports the liquidsoap pid',
    () => {
      const line = child.output.find((l) => l.startsWith('{"pid"'));
      return line ? (JSON.parse(line) as { pid: number }).pid : undefined;
    },
    { timeoutMs: 20_000 },
  );
  const cmdline = (await readFile(`/proc/${orphanPid}/cmdline`, 'utf8')).split('\0');
  assert.ok(cmdline[0]!.endsWith('liquidsoap'), `setpriv execs liquidsoap: ${cmdline.join(' ')}`);
  assert.ok(cmdline.includes(transcoderLabel('/orphan.mp3')));
  // Let liquidsoap get past start-up, so the kill hits a running transcoder.
  await waitFor('in-process liquidsoap streaming loop', () =>
    lines.some((l) => l['mount'] === '/inproc.mp3' && l['source'] === 'clock.main'), { timeoutMs: 45_000, intervalMs: 200 });
  assert.ok(await alive(orphanPid), 'child liquidsoap running');
  child.child.kill('SIGKILL');
  const t0 = Date.now();
  await waitFor('liquidsoap of the killed parent gone', async () => !(await alive(orphanPid)), { timeoutMs: 5000, intervalMs: 20 });
  const orphanGoneMs = Date.now() - t0;
  assert.ok(orphanGoneMs < 2000, `orphan lived ${orphanGoneMs} ms`);

  const pid = proc.pid!;
  const t1 = Date.now();
  await proc.stop();
  const stopMs = Date.now() - t1;
  assert.notEqual(exit?.signal, 'SIGKILL', `liquidsoap should stop on SIGTERM (took ${stopMs} ms)`);
  assert.ok(!(await alive(pid)));
  const started = lines.find((l) => l['msg'] === 'liquidsoap started');
  assert.equal(started?.['mount'], '/inproc.mp3');
  assert.ok(lines.every((l) => !JSON.stringify(l).includes('password1')), 'the password never reaches the log');
  t.diagnostic(`orphan gone ${orphanGoneMs} ms after its parent's SIGKILL; SIGTERM stop took ${stopMs} ms`);
});

test('a script liquidsoap rejects is one error with its reason, not a line per restart', async () => {
  const dir = await tempDir();
  // The real liquidsoap, on a script with a type error: the start-up check fails every time.
  const script = join(dir, 'bad.liq');
  await writeFile(script, 'x = getenv(1)\noutput.dummy(blank())\n');
  const { log, lines } = capturingLogger();
  const proc = new TranscoderProcess({
    mount: '/rejected.mp3',
    liquidsoapPath: 'liquidsoap',
    scriptPath: script,
    env: {},
    log,
    backoff: { initialMs: 100, maxMs: 200, resetAfterMs: 60_000 },
  });
  procs.push(proc);
  const rejections = () => lines.filter((l) => l['msg'] === 'liquidsoap rejects the transcoder script' || l['msg'] === 'liquidsoap rejects the transcoder script again');
  proc.start();
  await waitFor('two rejected runs', () => rejections().length >= 2, { timeoutMs: 60_000 });
  await proc.stop();
  const errors = lines.filter((l) => l['level'] === 50);
  assert.equal(errors.length, 1, JSON.stringify(errors));
  assert.match(String(errors[0]!['reason']), /Error \d+: /);
  assert.match(String(errors[0]!['reason']), /line 1/);
  assert.deepEqual(rejections().slice(1).map((l) => l['level']), rejections().slice(1).map(() => 20));
  // liquidsoap's own lines of the check are in the reason, not logged one by one at info.
  assert.equal(lines.filter((l) => l['level'] === 30 && /^Error \d+/.test(String(l['msg']))).length, 0);
});
