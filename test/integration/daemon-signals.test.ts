import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/ports.js';

/**
 * A signal while a daemon still waits for etcd's first answer (an etcd that accepts the
 * connection and never answers): the daemon stops cleanly, status 0, within its force-exit
 * budget (5 s), not killed by the signal.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const BUDGET_MS = 5000;
let dir: string;
let silentEtcd: Server;
let silentUrl: string;
const sockets = new Set<Socket>();
/** Resolvers waiting for the next connection to the silent etcd. */
let onConnection: (() => void)[] = [];

before(async () => {
  for (const daemon of ['radiod', 'redirectord']) assert.ok(existsSync(join(ROOT, `dist/${daemon}/main.js`)), 'build with npx tsc first');
  dir = await mkdtemp(join(tmpdir(), 'autoradio-signals-'));
  silentEtcd = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {}).on('close', () => sockets.delete(s));
    const waiting = onConnection;
    onConnection = [];
    for (const resolve of waiting) resolve();
  });
  await new Promise<void>((r) => silentEtcd.listen(0, '127.0.0.1', r));
  silentUrl = `http://127.0.0.1:${(silentEtcd.address() as { port: number }).port}`;
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((r) => silentEtcd.close(r));
  await rm(dir, { recursive: true, force: true });
});

async function daemonArgs(daemon: 'radiod' | 'redirectord'): Promise<string[]> {
  const common = ['--etcd-urls', silentUrl, '--domain', 'radio.test', '--name', 'n1', '--ip', '127.0.0.1', '--metrics-listen', 'off'];
  if (daemon === 'redirectord') {
    return [...common, '--http-port', String(await freePort()), '--http-bind', '127.0.0.1', '--dns-port', String(await freePort()), '--dns-bind', '127.0.0.1'];
  }
  return [...common, '--icecast-config', join(dir, 'icecast.xml'), '--icecast-port', String(await freePort()), '--icecast-logdir', dir, '--icecast-pidfile', join(dir, 'n1.pid')];
}

/** Starts the daemon, waits until it is connected to the silent etcd, sends the signals. */
async function signalWhileWaitingForEtcd(daemon: 'radiod' | 'redirectord', signals: NodeJS.Signals[]) {
  const connected = new Promise<void>((r) => onConnection.push(r));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AUTORADIO_')));
  const child = spawn(process.execPath, [join(ROOT, `dist/${daemon}/main.js`), ...(await daemonArgs(daemon))], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  await Promise.race([connected, exited.then(() => assert.fail(`${daemon} exited before reaching etcd: ${output}`))]);
  const sentAt = Date.now();
  for (const signal of signals) child.kill(signal);
  const killer = setTimeout(() => child.kill('SIGKILL'), BUDGET_MS + 5000);
  const end = await exited;
  clearTimeout(killer);
  return { ...end, ms: Date.now() - sentAt, output };
}

for (const daemon of ['redirectord', 'radiod'] as const) {
  for (const signals of [['SIGTERM'], ['SIGINT'], ['SIGTERM', 'SIGTERM']] as NodeJS.Signals[][]) {
    test(`${daemon}: ${signals.join(' + ')} before etcd answers: status 0 within the budget`, async () => {
      const end = await signalWhileWaitingForEtcd(daemon, signals);
      assert.deepEqual([end.code, end.signal], [0, null], end.output);
      assert.ok(end.ms < BUDGET_MS + 1000, `${end.ms} ms`);
      assert.doesNotMatch(end.output, /started"/);
    });
  }
}
