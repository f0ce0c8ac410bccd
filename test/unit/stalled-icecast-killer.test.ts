import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import pino from 'pino';
import { IcecastStallGuard } from '../../src/radiod/icecast/stall-guard.js';
import { StalledIcecastKiller } from '../../src/radiod/icecast/stalled-icecast-killer.js';
import { IcecastPid } from '../../src/radiod/icecast/icecast-pid.js';
import { RecordingMetrics } from '../support/fixtures.js';

/** A process that ignores SIGTERM as a deadlocked Icecast does; the killer's target. */
function stubborn() {
  const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
  return child;
}

function logLines() {
  const lines: { level: number; msg: string; pid?: number; silentSeconds?: number }[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { log, lines };
}

function killer(o: { pid: () => Promise<number>; answers: boolean; now: { t: number }; isIcecast?: boolean; ageMs?: number }) {
  const { log, lines } = logLines();
  const metrics = new RecordingMetrics();
  const k = new StalledIcecastKiller({
    guard: new IcecastStallGuard(() => 10_000),
    pid: { description: 'test', find: o.pid, isIcecast: async () => o.isIcecast ?? true, ageMs: async () => o.ageMs ?? 3_600_000 } as unknown as IcecastPid,
    responds: async () => o.answers,
    clock: () => o.now.t,
    log,
    metrics,
  });
  return { k, lines, metrics };
}

test('a process that answers nothing for the whole delay is killed with SIGKILL, logged as an error and counted', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const now = { t: 0 };
  const { k, lines, metrics } = killer({ pid: async () => child.pid!, answers: false, now });
  const exited = once(child, 'exit');
  for (; now.t <= 9000; now.t += 1000) k.observe(false);
  await k.settled();
  assert.equal(child.exitCode, null, 'not killed before the delay');
  now.t = 10_000;
  k.observe(false);
  await k.settled();
  const [, signal] = await exited;
  assert.equal(signal, 'SIGKILL');
  const error = lines.find((l) => l.level === 50);
  assert.ok(error, 'an error line');
  assert.equal(error.pid, child.pid);
  assert.equal(error.silentSeconds, 10);
  assert.match(error.msg, /answered nothing for 10 s/);
  assert.equal(metrics.count('icecast.stall_kills'), 1);
});

test('an Icecast that answers the last, patient question (any HTTP answer) is not killed', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const now = { t: 0 };
  const { k, lines, metrics } = killer({ pid: async () => child.pid!, answers: true, now });
  for (; now.t <= 10_000; now.t += 1000) k.observe(false);
  await k.settled();
  assert.equal(child.exitCode, null);
  assert.equal(child.signalCode, null);
  assert.ok(lines.some((l) => l.level === 40 && /but it answers: not killed/.test(l.msg)));
  assert.equal(metrics.count('icecast.stall_kills'), 0);
});

test('no single process to kill (none, or several without a pidfile): a warning, nothing killed', async () => {
  const now = { t: 0 };
  const { k, lines, metrics } = killer({ pid: async () => { throw new Error('2 icecast2 processes are running (10, 11); set a pidfile to pick one'); }, answers: false, now });
  for (; now.t <= 10_000; now.t += 1000) k.observe(false);
  await k.settled();
  const warn = lines.find((l) => l.level === 40);
  assert.ok(warn && /no single icecast process/.test(warn.msg));
  assert.equal(metrics.count('icecast.stall_kills'), 0);
});

test('a slow last question lets no second kill start meanwhile', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  let lookups = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const now = { t: 0 };
  const { log } = logLines();
  const k = new StalledIcecastKiller({
    guard: new IcecastStallGuard(() => 1000),
    pid: { description: 'test', find: async () => { lookups++; return child.pid!; }, isIcecast: async () => true, ageMs: async () => 3_600_000 } as unknown as IcecastPid,
    responds: async () => { await gate; return false; },
    clock: () => now.t,
    log,
    metrics: new RecordingMetrics(),
  });
  for (; now.t <= 30_000; now.t += 500) k.observe(false);
  release();
  await k.settled();
  assert.equal(lookups, 1);
});

test('a pid that is not an Icecast (a stale pidfile, the pid reused) is never killed', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const now = { t: 0 };
  const { k, lines, metrics } = killer({ pid: async () => child.pid!, answers: false, now, isIcecast: false });
  for (; now.t <= 10_000; now.t += 1000) k.observe(false);
  await k.settled();
  assert.equal(child.signalCode, null);
  assert.ok(lines.some((l) => l.level === 40 && /no single icecast process/.test(l.msg)));
  assert.equal(metrics.count('icecast.stall_kills'), 0);
});

test('IcecastPid tells an Icecast from another process by its name', async (t) => {
  const { IcecastPid } = await import('../../src/radiod/icecast/icecast-pid.js');
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  assert.equal(await new IcecastPid().isIcecast(child.pid!), false);
  assert.equal(await new IcecastPid({ processName: 'node' }).isIcecast(child.pid!), true);
  assert.equal(await new IcecastPid().isIcecast(2 ** 22 + 1), false, 'no such process');
});

test('icecastResponds: any HTTP answer counts (an error status, a body that is no JSON); silence and refusal do not', async (t) => {
  const { createServer } = await import('node:http');
  const { createServer: createTcpServer } = await import('node:net');
  const { icecastResponds } = await import('../../src/radiod/icecast/stats-poller.js');
  const broken = createServer((_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"icestats": {"source": [{"title": "a \\ broken\u0001 title"');
  });
  // Accepts connections (the kernel does, for a deadlocked Icecast too) and never answers.
  const held = new Set<import('node:net').Socket>();
  const silent = createTcpServer((socket) => void held.add(socket));
  await Promise.all([new Promise<void>((r) => broken.listen(0, '127.0.0.1', r)), new Promise<void>((r) => silent.listen(0, '127.0.0.1', r))]);
  t.after(() => {
    broken.close();
    broken.closeAllConnections();
    for (const socket of held) socket.destroy();
    silent.close();
  });
  const port = (s: { address(): unknown }) => (s.address() as { port: number }).port;
  assert.equal(await icecastResponds(`http://127.0.0.1:${port(broken)}`, 2000), true);
  const began = performance.now();
  assert.equal(await icecastResponds(`http://127.0.0.1:${port(silent)}`, 300), false);
  assert.ok(performance.now() - began < 2000, 'the deadline holds');
  const closed = port(silent);
  for (const socket of held) socket.destroy();
  await new Promise<void>((r) => silent.close(() => r()));
  assert.equal(await icecastResponds(`http://127.0.0.1:${closed}`, 2000), false);
});

test('an Icecast younger than the delay is not killed for a silence that began before it (a start after a long stop)', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const now = { t: 0 };
  const { k, lines, metrics } = killer({ pid: async () => child.pid!, answers: false, now, ageMs: 400 });
  for (; now.t <= 60_000; now.t += 1000) k.observe(false);
  await k.settled();
  assert.equal(child.exitCode, null);
  assert.equal(child.signalCode, null);
  assert.equal(metrics.count('icecast.stall_kills'), 0);
  assert.ok(lines.some((l) => l.level === 40 && /younger than the stall delay/.test(l.msg)));
});

test('IcecastPid.ageMs: a process just started is young, pid 1 is not', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const pid = new IcecastPid();
  const young = await pid.ageMs(child.pid!);
  assert.ok(young >= 0 && young < 5000, `just started: ${young} ms`);
  assert.ok((await pid.ageMs(1)) >= young);
});

test('radiod stopping during the last question: nothing killed', async (t) => {
  const child = stubborn();
  t.after(() => child.kill('SIGKILL'));
  const now = { t: 0 };
  let stopping = false;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { log, lines } = logLines();
  const metrics = new RecordingMetrics();
  const k = new StalledIcecastKiller({
    guard: new IcecastStallGuard(() => 10_000),
    pid: { description: 'test', find: async () => child.pid!, isIcecast: async () => true, ageMs: async () => 3_600_000 } as unknown as IcecastPid,
    responds: async () => { await gate; return false; },
    clock: () => now.t,
    log,
    metrics,
    stopping: () => stopping,
  });
  for (; now.t <= 10_000; now.t += 1000) k.observe(false);
  stopping = true; // SIGTERM while the last question waits
  release();
  await k.settled();
  assert.equal(child.signalCode, null);
  assert.equal(metrics.count('icecast.stall_kills'), 0);
  assert.ok(lines.some((l) => /radiod is stopping/.test(l.msg)));
});
