import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { LoneRadiod } from '../support/lone-radiod.js';
import { waitFor } from '../support/wait.js';

/**
 * A real Icecast that runs but answers nothing (stopped with SIGSTOP: like the deadlocked Icecast
 * 2.4.4 seen in the field, it ignores SIGTERM and serves no one) is killed by radiod with
 * --icecast-kill-stalled-after, so that its supervisor (here the test, as systemd in the package)
 * starts a fresh one; radiod then takes it up again.
 */

const KILL_AFTER_S = 2;

let node: LoneRadiod;

before(async () => {
  node = await LoneRadiod.start({ killStalledAfterS: KILL_AFTER_S });
});

after(async () => {
  await node?.stop();
});

test('radiod kills a running Icecast that answers nothing, and takes up the one its supervisor starts', async () => {
  const first = await node.startIcecast();
  await waitFor('radiod to see Icecast up', () => node.count('local icecast is up') >= 1, { timeoutMs: 15_000, intervalMs: 100 });
  const pid = first.process.child.pid!;
  first.process.child.kill('SIGSTOP');
  await waitFor('the stopped Icecast to be killed', () => first.process.child.signalCode !== null, { timeoutMs: 20_000, intervalMs: 100 })
    .catch((err: Error) => assert.fail(`${err.message}\n${node.tail(20)}`));
  assert.equal(first.process.child.signalCode, 'SIGKILL');
  const kill = node.kills()[0];
  assert.ok(kill, 'radiod logs the kill as an error');
  assert.equal(kill.pid, pid);
  assert.ok((kill.silentSeconds ?? 0) >= KILL_AFTER_S, `killed after ${kill.silentSeconds} s of silence, not before ${KILL_AFTER_S}`);
  assert.ok(node.count('local icecast is down') >= 1, 'the node went down first');

  // The supervisor's restart: radiod takes the new Icecast up and leaves it alone.
  const second = await node.startIcecast();
  await waitFor('radiod to see the new Icecast up', () => node.count('local icecast is up') >= 2, { timeoutMs: 15_000, intervalMs: 100 });
  assert.equal(second.process.child.signalCode, null);
  assert.equal(node.kills().length, 1);
});

test('an Icecast that exited leaves nothing to kill: a warning, no kill', async () => {
  const current = node.icecasts.at(-1)!;
  await current.process.stop('SIGTERM', 5000);
  await waitFor('radiod to see Icecast down', () => node.count('local icecast is down') >= 2, { timeoutMs: 15_000, intervalMs: 100 });
  await waitFor('the stall delay to pass', () => node.events().some((e) => e.level === 40 && /no single icecast process to kill/.test(e.msg)), { timeoutMs: 20_000, intervalMs: 100 });
  assert.equal(node.kills().length, 1, 'only the first, stopped Icecast was killed');
});
