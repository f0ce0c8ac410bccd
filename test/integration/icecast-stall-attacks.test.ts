import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { startEtcd, type TestEtcd } from '../support/etcd.js';
import { launchIcecast, makeIcecastDir, type TestIcecast } from '../support/icecast.js';
import { freePort } from '../support/ports.js';
import { collectLines, startProcess, type Managed } from '../support/processes.js';
import { waitFor } from '../support/wait.js';
import { ICECAST_SECRETS_KEY, MOUNTS_PREFIX, mountKey } from '../../src/coordination/keys.js';

/**
 * Attacks on radiod's --icecast-kill-stalled-after with a real Icecast: a healthy Icecast must
 * never be killed, however slow its reloads, and a wedged one must be.
 */

const ROOT = new URL('../..', import.meta.url).pathname;
// ATTACK_RADIOD runs the attacks against another build (e.g. the one before a fix).
const RADIOD = process.env.ATTACK_RADIOD ?? join(ROOT, 'dist/radiod/main.js');
const KILL_AFTER_S = 2;

let etcd: TestEtcd;
let client: Etcd3;
let radiod: Managed;
/** Every line radiod logged (Managed keeps only the last 200, and 400 mounts log more). */
const radiodLines: string[] = [];
let dir: string;
let port: number;
let configPath: string;
let adminPassword: string;
const icecasts: TestIcecast[] = [];

interface LogEvent {
  level: number;
  time: string;
  msg: string;
  pid?: number;
  silentSeconds?: number;
}

function events(): LogEvent[] {
  return radiodLines.flatMap((line) => {
    try {
      return [JSON.parse(line) as LogEvent];
    } catch {
      return [];
    }
  });
}

const count = (msg: string) => events().filter((e) => e.msg === msg).length;
const kills = () => events().filter((e) => e.level === 50 && /killed it/.test(e.msg)).length;

async function startIcecast(): Promise<TestIcecast> {
  const icecast = await launchIcecast({ host: '127.0.0.1', port, dir, configPath, sourcePassword: 'unused', adminPassword });
  icecasts.push(icecast);
  return icecast;
}

async function putMounts(from: number, to: number): Promise<void> {
  const ops = [];
  for (let i = from; i < to; i++) {
    const path = `/m${i}.mp3`;
    ops.push(client.put(mountKey(path)).value(JSON.stringify({ path, username: 'source', password: `pass-${i}-12345` })));
  }
  await Promise.all(ops);
}

async function mountsInConfig(): Promise<number> {
  return ((await readFile(configPath, 'utf8').catch(() => '')).match(/<mount type/g) ?? []).length;
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
  collectLines(radiod.child.stdout, radiodLines);
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

test('an Icecast started after a long silence is not killed while it starts', { timeout: 60_000 }, async () => {
  // No Icecast at all for longer than the delay (stopped by an operator, or a crash loop that
  // systemd gave up on): radiod finds nothing to kill.
  await waitFor('a stall verdict with nothing to kill', () => events().some((e) => /no single icecast process to kill/.test(e.msg)), { timeoutMs: 20_000, intervalMs: 100 });
  const icecast = await startIcecast();
  await waitFor('radiod to see Icecast up', () => count('local icecast is up') >= 1, { timeoutMs: 15_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}; icecast signal ${icecast.process.child.signalCode}\n${radiod.output.slice(-10).join('\n')}`));
  await new Promise((r) => setTimeout(r, 3 * KILL_AFTER_S * 1000));
  assert.equal(icecast.process.child.signalCode, null, `a starting Icecast was killed:\n${radiod.output.slice(-10).join('\n')}`);
  assert.equal(kills(), 0);
  await icecast.process.stop('SIGTERM', 5000);
  icecasts.pop();
  await waitFor('radiod to see Icecast down', () => count('local icecast is down') >= 1, { timeoutMs: 15_000, intervalMs: 100 });
});

test('SIGSTOP/SIGCONT flapping around the delay is not killed; then a real stop is', { timeout: 90_000 }, async () => {
  const ups = count('local icecast is up');
  const icecast = await startIcecast();
  const child = icecast.process.child;
  await waitFor('radiod to see Icecast up', () => count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Stopped just under, at, and over the delay, continued briefly in between: slow, not wedged.
  for (const stoppedMs of [1800, 1900, 2000, 2100, 2300, 2600, 3000, 4000]) {
    child.kill('SIGSTOP');
    await pause(stoppedMs);
    child.kill('SIGCONT');
    await pause(250);
  }
  await pause(6000); // any last question still under way
  assert.equal(child.signalCode, null, `a flapping Icecast was killed:\n${radiod.output.slice(-10).join('\n')}`);
  assert.equal(kills(), 0);
  // A spared verdict must not blind the guard: a real wedge now is still killed.
  child.kill('SIGSTOP');
  await waitFor('the stopped Icecast to be killed', () => child.signalCode !== null, { timeoutMs: 30_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}\n${radiod.output.slice(-10).join('\n')}`));
  assert.equal(child.signalCode, 'SIGKILL');
  assert.equal(kills(), 1);
  icecasts.pop();
  await icecast.process.exited;
});

test('a healthy Icecast with 400 URL-auth mounts, reloaded in bursts, is never killed', { timeout: 400_000 }, async () => {
  const N = Number(process.env.ATTACK_MOUNTS ?? 400);
  // Icecast first, then the mounts: radiod reloads an Icecast that comes up, and with 400 mounts
  // in its file that reload stalls it past launchIcecast's 10 s wait.
  const ups = count('local icecast is up');
  const icecast = await startIcecast();
  await waitFor('radiod to see Icecast up', () => count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  const t0 = Date.now();
  await putMounts(0, N);
  await waitFor('the mounts in icecast.xml', async () => (await mountsInConfig()) >= N, { timeoutMs: 30_000, intervalMs: 200 });
  await waitFor('Icecast serving the mounts', async () => {
    const res = await fetch(`${icecast.url}/admin/listmounts`, { headers: { authorization: `Basic ${Buffer.from(`admin:${adminPassword}`).toString('base64')}` }, signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    return res?.ok && count('local icecast is up') > count('local icecast is down');
  }, { timeoutMs: 120_000, intervalMs: 500 });
  console.log(`${N} mounts added and Icecast answering after ${Date.now() - t0} ms`);
  assert.equal(icecast.process.child.signalCode, null, `a healthy Icecast was killed:\n${radiod.output.slice(-15).join('\n')}`);
  // Remove them all at once: the reload that follows tears down every URL authenticator.
  const t1 = Date.now();
  const upsBefore = count('local icecast is up');
  await client.delete().prefix(MOUNTS_PREFIX);
  await waitFor('the mounts gone from icecast.xml', async () => (await mountsInConfig()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
  await waitFor('Icecast back up after the removal', () => count('local icecast is up') > upsBefore || icecast.process.child.signalCode !== null, { timeoutMs: 120_000, intervalMs: 200 }).catch(() => undefined);
  console.log(`removal: down ${count('local icecast is down')} times, back after ${Date.now() - t1} ms, signal ${icecast.process.child.signalCode}`);
  assert.equal(icecast.process.child.signalCode, null, `a healthy Icecast was killed:\n${radiod.output.slice(-15).join('\n')}`);
  assert.equal(kills(), 1, 'only the wedged Icecast of the test before');
  // Bursts: add and remove a hundred at a time, a second apart, while Icecast is still reloading.
  for (let round = 0; round < 6; round++) {
    if (round % 2 === 0) await putMounts(0, N);
    else await client.delete().prefix(MOUNTS_PREFIX);
    await new Promise((r) => setTimeout(r, 1000 + round * 700));
  }
  await client.delete().prefix(MOUNTS_PREFIX);
  await waitFor('the mounts gone from icecast.xml', async () => (await mountsInConfig()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
  const downs = count('local icecast is down');
  await waitFor('Icecast up after the bursts', () => count('local icecast is up') > downs || icecast.process.child.signalCode !== null, { timeoutMs: 200_000, intervalMs: 200 }).catch(() => undefined);
  console.log(`bursts: down ${count('local icecast is down')} times, signal ${icecast.process.child.signalCode}`);
  // Icecast must stay up until every delay in force has run out.
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(icecast.process.child.signalCode, null, `a healthy Icecast was killed:\n${radiod.output.slice(-15).join('\n')}`);
  assert.equal(kills(), 1, 'only the wedged Icecast of the test before');
  // The longest silence radiod saw, and the verdicts it spared.
  let downAt: number | undefined;
  let longest = 0;
  for (const e of events()) {
    if (e.msg === 'local icecast is down') downAt = Date.parse(e.time);
    if (e.msg === 'local icecast is up' && downAt !== undefined) {
      longest = Math.max(longest, Date.parse(e.time) - downAt);
      downAt = undefined;
    }
  }
  const spared = events().filter((e) => /not killed/.test(e.msg)).length;
  console.log(`longest time radiod saw Icecast down: ${longest} ms; verdicts spared: ${spared}`);
  await icecast.process.stop('SIGTERM', 5000);
  icecasts.pop();
  await waitFor('radiod to see Icecast down', () => count('local icecast is down') >= count('local icecast is up'), { timeoutMs: 15_000, intervalMs: 100 });
});

test('a connection storm (400 clients reconnecting without pause, backlog 5) does not get a healthy Icecast killed', { timeout: 120_000 }, async () => {
  const ups = count('local icecast is up');
  const icecast = await startIcecast();
  await waitFor('radiod to see Icecast up', () => count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  const killsBefore = kills();
  const downsBefore = count('local icecast is down');
  const { request } = await import('node:http');
  let stop = false;
  let answered = 0;
  let failed = 0;
  const one = () => new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/nothing-here.mp3', agent: false, timeout: 10_000 }, (res) => {
      res.resume();
      res.on('end', () => { answered++; resolve(); });
    });
    req.on('error', () => { failed++; resolve(); });
    req.on('timeout', () => req.destroy());
    req.end();
  });
  const loops = Array.from({ length: Number(process.env.ATTACK_STORM ?? 400) }, async () => {
    while (!stop) await one();
  });
  await new Promise((r) => setTimeout(r, 30_000));
  stop = true;
  await Promise.all(loops);
  console.log(`storm: ${answered} answered, ${failed} failed, radiod saw it down ${count('local icecast is down') - downsBefore} times`);
  await new Promise((r) => setTimeout(r, 6000));
  assert.equal(icecast.process.child.signalCode, null, `a healthy, stormed Icecast was killed:\n${radiod.output.slice(-10).join('\n')}`);
  assert.equal(kills(), killsBefore);
});
