import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { launchIcecast, makeIcecastDir, type TestIcecast } from '../support/icecast.js';
import { freePort } from '../support/ports.js';
import { startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { ICECAST_SECRETS_KEY } from '../../src/coordination/keys.js';

/**
 * A real Icecast that runs but answers nothing (stopped with SIGSTOP: like the deadlocked Icecast
 * 2.4.4 seen in the field, it ignores SIGTERM and serves no one) is killed by radiod with
 * --icecast-kill-stalled-after, so that its supervisor (here the test, as systemd in the package)
 * starts a fresh one; radiod then takes it up again.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
const RADIOD = join(ROOT, 'dist/radiod/main.js');
const KILL_AFTER_S = 2;

let etcd: TestEtcd;
let client: Etcd3;
let radiod: Managed;
let dir: string;
let port: number;
let configPath: string;
let adminPassword: string;
const icecasts: TestIcecast[] = [];

interface LogEvent {
  level: number;
  msg: string;
  pid?: number;
  silentSeconds?: number;
}

function events(): LogEvent[] {
  return radiod.output.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogEvent];
    } catch {
      return [];
    }
  });
}

const count = (msg: string) => events().filter((e) => e.msg === msg).length;

async function startIcecast(): Promise<TestIcecast> {
  const icecast = await launchIcecast({ host: '127.0.0.1', port, dir, configPath, sourcePassword: 'unused', adminPassword });
  icecasts.push(icecast);
  return icecast;
}

before(async () => {
  assert.ok(existsSync(RADIOD), `${RADIOD} is missing: build with npx tsc -p tsconfig.json first`);
  etcd = await startEtcd();
  client = new Etcd3({ hosts: etcd.url });
  dir = await makeIcecastDir();
  port = await freePort();
  configPath = join(dir, 'icecast.xml');
  radiod = startProcess(
    'node',
    [
      RADIOD,
      '--etcd-urls', etcd.url,
      '--domain', 'radio.test',
      '--name', 'node1',
      '--ip', '127.0.0.1',
      '--metrics-listen', 'off',
      '--icecast-config', configPath,
      '--icecast-port', String(port),
      '--icecast-bind', '127.0.0.1',
      '--icecast-logdir', join(dir, 'log'),
      '--icecast-pidfile', join(dir, 'icecast.pid'),
      '--lease-ttl', '4',
      '--status-interval', '300',
      '--icecast-kill-stalled-after', String(KILL_AFTER_S),
      '--relay-via', 'direct',
      '--log-level', 'info',
    ],
    { cwd: ROOT },
  );
  await waitFor('radiod\'s first config', async () => (await readFile(configPath, 'utf8').catch(() => '')).includes('<icecast>'), { timeoutMs: 15_000 });
  adminPassword = (JSON.parse((await client.get(ICECAST_SECRETS_KEY).string())!) as { adminPassword: string }).adminPassword;
});

after(async () => {
  await radiod?.stop('SIGTERM', 5000);
  for (const i of icecasts) {
    i.process.child.kill('SIGCONT');
    await i.stop();
  }
  client?.close();
  await etcd?.stop();
});

test('radiod kills a running Icecast that answers nothing, and takes up the one its supervisor starts', async () => {
  const first = await startIcecast();
  await waitFor('radiod to see Icecast up', () => count('local icecast is up') >= 1, { timeoutMs: 15_000, intervalMs: 100 });
  const pid = first.process.child.pid!;
  first.process.child.kill('SIGSTOP');
  await waitFor('the stopped Icecast to be killed', () => first.process.child.signalCode !== null, { timeoutMs: 20_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}\n${radiod.output.slice(-20).join('\n')}`));
  assert.equal(first.process.child.signalCode, 'SIGKILL');
  const kill = events().find((e) => e.level === 50 && /killed it/.test(e.msg));
  assert.ok(kill, 'radiod logs the kill as an error');
  assert.equal(kill.pid, pid);
  assert.ok((kill.silentSeconds ?? 0) >= KILL_AFTER_S, `killed after ${kill.silentSeconds} s of silence, not before ${KILL_AFTER_S}`);
  assert.ok(count('local icecast is down') >= 1, 'the node went down first');

  // The supervisor's restart: radiod takes the new Icecast up and leaves it alone.
  const second = await startIcecast();
  await waitFor('radiod to see the new Icecast up', () => count('local icecast is up') >= 2, { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(second.process.child.signalCode, null);
  assert.equal(events().filter((e) => /killed it/.test(e.msg)).length, 1);
});

test('an Icecast that exited leaves nothing to kill: a warning, no kill', async () => {
  const current = icecasts.at(-1)!;
  await current.process.stop('SIGTERM', 5000);
  await waitFor('radiod to see Icecast down', () => count('local icecast is down') >= 2, { timeoutMs: 15_000, intervalMs: 100 });
  await waitFor('the stall delay to pass', () => events().some((e) => e.level === 40 && /no single icecast process to kill/.test(e.msg)), { timeoutMs: 20_000, intervalMs: 100 });
  assert.equal(events().filter((e) => e.level === 50 && /killed it/.test(e.msg)).length, 1, 'only the first, stopped Icecast was killed');
});
