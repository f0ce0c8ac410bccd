import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Etcd3 } from 'etcd3';
import { askStatus } from '../support/http-probe.js';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';
import { freePort } from '../support/ports.js';
import { collectLines } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/**
 * redirectord under socket activation: a holder keeps port 80's socket (as systemd's .socket unit
 * does) and redirectord is restarted on it while a client keeps connecting. No connection is
 * refused: those that arrive while no redirectord runs wait in the socket's backlog. On code that
 * ignores LISTEN_FDS redirectord cannot even start (the holder has the port).
 */
const ROOT = new URL('../..', import.meta.url).pathname;
let etcd: TestEtcd;
etcdPerFile((e: TestEtcd, _c: Etcd3) => {
  etcd = e;
});

async function redirectordArgv(port: number): Promise<string[]> {
  return [
    process.execPath, join(ROOT, 'dist/redirectord/main.js'),
    '--etcd-urls', etcd.url, '--domain', 'radio.test', '--name', 'n1', '--ip', '127.0.0.1',
    '--http-port', String(port), '--dns-port', String(await freePort()), '--dns-bind', '127.0.0.1',
    '--https-port', '0', '--metrics-listen', 'off', '--log-level', 'warn',
  ];
}

test('a restart of redirectord under socket activation refuses no connection', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const argv = await redirectordArgv(port);
  const holder = spawn('python3', [join(ROOT, 'test/support/socket-holder.py'), '127.0.0.1', String(port), ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  const output: string[] = [];
  collectLines(holder.stdout, output);
  collectLines(holder.stderr, output);
  try {
    await waitFor('redirectord answers on the inherited socket', async () => (await askStatus(port)) === '200', { timeoutMs: 30_000, intervalMs: 200 }).catch(
      (err: Error) => assert.fail(`${err.message}\n${output.join('\n')}`),
    );
    const answers: string[] = [];
    let running = true;
    const client = (async () => {
      while (running) {
        answers.push(await askStatus(port));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await waitFor('some answers before the restart', () => answers.length >= 5);
    const before = answers.length;
    holder.stdin.write('restart\n');
    await waitFor('restarted', () => output.some((l) => l.startsWith('restarted')), { timeoutMs: 10_000 });
    await waitFor('answers after the restart', () => answers.slice(before).filter((a) => a === '200').length >= 10, { timeoutMs: 30_000 });
    running = false;
    await client;
    const failures = answers.filter((a) => a !== '200');
    assert.deepEqual(failures, [], `answers: ${answers.join(' ')}\n${output.join('\n')}`);
  } finally {
    // The holder stops redirectord (SIGTERM) and waits for it before it exits.
    const exited = new Promise((r) => holder.once('exit', r));
    holder.stdin.end();
    const force = setTimeout(() => holder.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(force);
    holder.stdout.destroy();
    holder.stderr.destroy();
  }
});

test('a request on a connection accepted just before SIGTERM is answered, not cut', { timeout: 120_000 }, async () => {
  // Under socket activation the next redirectord takes every connection the stopping one has not
  // accepted; one it has accepted, whose request is still on the way, must not be lost either.
  const port = await freePort();
  // Info level: the test writes its request once redirectord says it is shutting down.
  const [node, ...args] = (await redirectordArgv(port)).map((a) => (a === 'warn' ? 'info' : a));
  const daemon = spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  collectLines(daemon.stdout, output);
  collectLines(daemon.stderr, output);
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  try {
    await waitFor('redirectord answers', async () => (await askStatus(port)) === '200', { timeoutMs: 30_000, intervalMs: 200 }).catch(
      (err: Error) => assert.fail(`${err.message}\n${output.join('\n')}`),
    );
    const early = connect(port, '127.0.0.1');
    await once(early, 'connect');
    let answer = '';
    early.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise<void>((r) => early.once('close', () => r()));
    early.on('error', () => {});
    // Connections are accepted in order: once this later one is answered, the first was accepted.
    assert.equal(await askStatus(port), '200');
    daemon.kill('SIGTERM');
    await waitFor('redirectord to begin its shutdown', () => output.some((l) => l.includes('"shutting down"')), { timeoutMs: 10_000, intervalMs: 5 });
    // Its request comes as a client's may, a moment after the connect: here once the stop began.
    early.write('GET /status.json HTTP/1.1\r\nHost: radio.test\r\nConnection: close\r\n\r\n');
    await closed;
    assert.match(answer, /^HTTP\/1\.1 200 /, `the early connection got: ${JSON.stringify(answer.slice(0, 80))}\n${output.join('\n')}`);
    assert.equal(await exited, 0, output.join('\n'));
  } finally {
    daemon.kill('SIGKILL');
  }
});
