import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { LoneRadiod } from '../support/lone-radiod.js';
import { holdsFor, waitFor } from '../support/wait.js';
import { MOUNTS_PREFIX, mountKey } from '../../src/coordination/keys.js';

/**
 * Attacks on radiod's --icecast-kill-stalled-after with a real Icecast: a healthy Icecast must
 * never be killed, however slow its reloads, and a wedged one must be.
 */

const KILL_AFTER_S = 2;

let node: LoneRadiod;

const kills = () => node.kills().length;

async function putMounts(from: number, to: number): Promise<void> {
  const ops = [];
  for (let i = from; i < to; i++) {
    const path = `/m${i}.mp3`;
    ops.push(node.client.put(mountKey(path)).value(JSON.stringify({ path, username: 'source', password: `pass-${i}-12345` })));
  }
  await Promise.all(ops);
}

async function mountsInConfig(): Promise<number> {
  return ((await node.config()).match(/<mount type/g) ?? []).length;
}

before(async () => {
  // ATTACK_RADIOD runs the attacks against another build (e.g. the one before a fix).
  node = await LoneRadiod.start({ killStalledAfterS: KILL_AFTER_S, ...(process.env.ATTACK_RADIOD ? { radiod: process.env.ATTACK_RADIOD } : {}) });
});

after(async () => {
  await node?.stop();
});

test('an Icecast started after a long silence is not killed while it starts', { timeout: 60_000 }, async () => {
  // No Icecast at all for longer than the delay (stopped by an operator, or a crash loop that
  // systemd gave up on): radiod finds nothing to kill.
  await waitFor('a stall verdict with nothing to kill', () => node.events().some((e) => /no single icecast process to kill/.test(e.msg)), { timeoutMs: 20_000, intervalMs: 100 });
  const icecast = await node.startIcecast();
  await waitFor('radiod to see Icecast up', () => node.count('local icecast is up') >= 1, { timeoutMs: 15_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}; icecast signal ${icecast.process.child.signalCode}\n${node.tail(10)}`));
  await holdsFor('the starting Icecast alive', 3 * KILL_AFTER_S * 1000, () => icecast.process.child.signalCode === null)
    .catch((err: Error) => assert.fail(`${err.message}: a starting Icecast was killed\n${node.tail(10)}`));
  assert.equal(kills(), 0);
  await icecast.process.stop('SIGTERM', 5000);
  node.icecasts.pop();
  await waitFor('radiod to see Icecast down', () => node.count('local icecast is down') >= 1, { timeoutMs: 15_000, intervalMs: 100 });
});

test('SIGSTOP/SIGCONT flapping around the delay is not killed; then a real stop is', { timeout: 90_000 }, async () => {
  const ups = node.count('local icecast is up');
  const icecast = await node.startIcecast();
  const child = icecast.process.child;
  await waitFor('radiod to see Icecast up', () => node.count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  // The stimulus's own timing (how long Icecast is stopped, then runs), not a wait for a state.
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Stopped just under, at, and over the delay, continued briefly in between: slow, not wedged.
  for (const stoppedMs of [1800, 1900, 2000, 2100, 2300, 2600, 3000, 4000]) {
    child.kill('SIGSTOP');
    await pause(stoppedMs);
    child.kill('SIGCONT');
    await pause(250);
  }
  // Alive through any last question still under way (5 s).
  await holdsFor('the flapping Icecast alive', 6000, () => child.signalCode === null)
    .catch((err: Error) => assert.fail(`${err.message}: a flapping Icecast was killed\n${node.tail(10)}`));
  assert.equal(kills(), 0);
  // A spared verdict must not blind the guard: a real wedge now is still killed.
  child.kill('SIGSTOP');
  await waitFor('the stopped Icecast to be killed', () => child.signalCode !== null, { timeoutMs: 30_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}\n${node.tail(10)}`));
  assert.equal(child.signalCode, 'SIGKILL');
  assert.equal(kills(), 1);
  node.icecasts.pop();
  await icecast.process.exited;
});

test('a healthy Icecast with 400 URL-auth mounts, reloaded in bursts, is never killed', { timeout: 400_000 }, async () => {
  const N = Number(process.env.ATTACK_MOUNTS ?? 400);
  const killsBefore = kills();
  // Icecast first, then the mounts: radiod reloads an Icecast that comes up, and with 400 mounts
  // in its file that reload stalls it past launchIcecast's 10 s wait.
  const ups = node.count('local icecast is up');
  const icecast = await node.startIcecast();
  await waitFor('radiod to see Icecast up', () => node.count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  const t0 = Date.now();
  await putMounts(0, N);
  await waitFor('the mounts in icecast.xml', async () => (await mountsInConfig()) >= N, { timeoutMs: 30_000, intervalMs: 200 });
  await waitFor('Icecast serving the mounts', async () => {
    const res = await fetch(`${icecast.url}/admin/listmounts`, { headers: { authorization: `Basic ${Buffer.from(`admin:${node.adminPassword}`).toString('base64')}` }, signal: AbortSignal.timeout(1000) }).catch(() => undefined);
    return res?.ok && node.count('local icecast is up') > node.count('local icecast is down');
  }, { timeoutMs: 120_000, intervalMs: 500 });
  console.log(`${N} mounts added and Icecast answering after ${Date.now() - t0} ms`);
  assert.equal(icecast.process.child.signalCode, null, `a healthy Icecast was killed:\n${node.tail(15)}`);
  // Remove them all at once: the reload that follows tears down every URL authenticator.
  const t1 = Date.now();
  const upsBefore = node.count('local icecast is up');
  await node.client.delete().prefix(MOUNTS_PREFIX);
  await waitFor('the mounts gone from icecast.xml', async () => (await mountsInConfig()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
  await waitFor('Icecast back up after the removal', () => node.count('local icecast is up') > upsBefore || icecast.process.child.signalCode !== null, { timeoutMs: 120_000, intervalMs: 200 }).catch(() => undefined);
  console.log(`removal: down ${node.count('local icecast is down')} times, back after ${Date.now() - t1} ms, signal ${icecast.process.child.signalCode}`);
  assert.equal(icecast.process.child.signalCode, null, `a healthy Icecast was killed:\n${node.tail(15)}`);
  assert.equal(kills(), killsBefore, 'no kill of this healthy Icecast');
  // Bursts: add and remove a hundred at a time, a second apart, while Icecast is still reloading.
  for (let round = 0; round < 6; round++) {
    if (round % 2 === 0) await putMounts(0, N);
    else await node.client.delete().prefix(MOUNTS_PREFIX);
    // The bursts' own spacing (the stimulus), not a wait for a state.
    await new Promise((r) => setTimeout(r, 1000 + round * 700));
  }
  await node.client.delete().prefix(MOUNTS_PREFIX);
  await waitFor('the mounts gone from icecast.xml', async () => (await mountsInConfig()) === 0, { timeoutMs: 30_000, intervalMs: 100 });
  const downs = node.count('local icecast is down');
  await waitFor('Icecast up after the bursts', () => node.count('local icecast is up') > downs || icecast.process.child.signalCode !== null, { timeoutMs: 200_000, intervalMs: 200 }).catch(() => undefined);
  console.log(`bursts: down ${node.count('local icecast is down')} times, signal ${icecast.process.child.signalCode}`);
  // Icecast must stay up until every delay in force has run out.
  await holdsFor('the reloaded Icecast alive', 5000, () => icecast.process.child.signalCode === null)
    .catch((err: Error) => assert.fail(`${err.message}: a healthy Icecast was killed\n${node.tail(15)}`));
  assert.equal(kills(), killsBefore, 'no kill of this healthy Icecast');
  // The longest silence radiod saw, and the verdicts it spared.
  let downAt: number | undefined;
  let longest = 0;
  for (const e of node.events()) {
    if (e.msg === 'local icecast is down') downAt = Date.parse(e.time);
    if (e.msg === 'local icecast is up' && downAt !== undefined) {
      longest = Math.max(longest, Date.parse(e.time) - downAt);
      downAt = undefined;
    }
  }
  const spared = node.events().filter((e) => /not killed/.test(e.msg)).length;
  console.log(`longest time radiod saw Icecast down: ${longest} ms; verdicts spared: ${spared}`);
  await icecast.process.stop('SIGTERM', 5000);
  node.icecasts.pop();
  await waitFor('radiod to see Icecast down', () => node.count('local icecast is down') >= node.count('local icecast is up'), { timeoutMs: 15_000, intervalMs: 100 });
});

test('a connection storm (400 clients reconnecting without pause, backlog 5) does not get a healthy Icecast killed', { timeout: 120_000 }, async () => {
  const ups = node.count('local icecast is up');
  const icecast = await node.startIcecast();
  await waitFor('radiod to see Icecast up', () => node.count('local icecast is up') > ups, { timeoutMs: 15_000, intervalMs: 100 });
  const killsBefore = kills();
  const downsBefore = node.count('local icecast is down');
  let stop = false;
  let answered = 0;
  let failed = 0;
  const one = () => new Promise<void>((resolve) => {
    const req = request({ host: '127.0.0.1', port: node.port, path: '/nothing-here.mp3', agent: false, timeout: 10_000 }, (res) => {
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
  // The storm lasts 30 s; Icecast must live through it.
  const survived = holdsFor('the stormed Icecast alive', 30_000, () => icecast.process.child.signalCode === null);
  await survived.finally(() => (stop = true)).catch(() => undefined);
  await Promise.all(loops);
  console.log(`storm: ${answered} answered, ${failed} failed, radiod saw it down ${node.count('local icecast is down') - downsBefore} times`);
  await survived.catch((err: Error) => assert.fail(`${err.message}\n${node.tail(10)}`));
  // And through any last question the storm left under way (5 s).
  await holdsFor('the stormed Icecast alive after the storm', 6000, () => icecast.process.child.signalCode === null)
    .catch((err: Error) => assert.fail(`${err.message}: a healthy, stormed Icecast was killed\n${node.tail(10)}`));
  assert.equal(kills(), killsBefore);
});
