import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { RawClient, startDoor, type Door } from './front-door-harness.js';
import { StandIn, type StandInMode } from './stand-in-master.js';

/**
 * The relay path (`/_relay<mount>`, the local Icecast pulling from whichever Icecast is master)
 * against upstreams that misbehave: answer an error, close mid-stream, or accept and never
 * answer (a master whose Icecast port is dropped or whose Icecast is stopped). The upstreams
 * are stand-ins speaking Icecast's listener protocol, so each misbehaviour is exact.
 */

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const standIn = (mode: StandInMode) => StandIn.start(mode, cleanups);

async function door(): Promise<Door> {
  // The head timeout as in production (10 s): it is what a stalled upstream costs.
  const d = await startDoor({ continuity: { waitMs: 20_000, intervalMs: 250 } });
  cleanups.push(() => d.close());
  return d;
}

function relayClient(d: Door): RawClient {
  const c = new RawClient(d.port);
  c.send('GET /_relay/live HTTP/1.0\r\nUser-Agent: Icecast 2.4.4\r\n\r\n');
  cleanups.push(async () => c.destroy());
  return c;
}

test('a relay asking a master that never answers moves to the new master at once, not after the head timeout', async () => {
  const d = await door();
  const old = await standIn({ kind: 'stall' });
  const next = await standIn({ kind: 'audio' });
  d.master.current = old.at;
  const c = relayClient(d);
  await waitFor('the relay waiting on the old master', () => old.s.stalled === 1, { timeoutMs: 5000 });

  d.master.current = next.at;
  d.door.onMasterChange();
  const startedAt = Date.now();
  await waitFor('audio from the new master', () => c.text().startsWith('HTTP/1.0 200') && c.received.length > 2000, { timeoutMs: 3000 });
  assert.ok(Date.now() - startedAt < 3000);
  assert.equal(old.s.stalled, 0, 'the attempt on the old master is abandoned');
});

test('a relay re-attaching to a master that stopped answering moves to the new master at once', async () => {
  const d = await door();
  const old = await standIn({ kind: 'audio' });
  const next = await standIn({ kind: 'audio' });
  d.master.current = old.at;
  const c = relayClient(d);
  await waitFor('audio from the first master', () => c.received.length > 2000, { timeoutMs: 5000 });

  // The master's Icecast drops the relay and then hangs: the re-attach attempts go unanswered.
  old.s.mode = { kind: 'stall' };
  old.s.dropAll();
  await waitFor('a re-attach waiting on the hung master', () => old.s.stalled >= 1, { timeoutMs: 5000 });
  const before = c.received.length;

  d.master.current = next.at;
  d.door.onMasterChange();
  await waitFor('audio again, from the new master', () => next.s.connections === 1 && c.received.length > before + 2000, { timeoutMs: 3000 });
  assert.equal(c.closed, false, 'the local Icecast keeps its relay connection');
});

test('a relay re-attaching is answered 500 and 404 by the master until its source is back, then continues', async () => {
  const d = await door();
  const up = await standIn({ kind: 'audio' });
  d.master.current = up.at;
  const c = relayClient(d);
  await waitFor('audio', () => c.received.length > 2000, { timeoutMs: 5000 });

  up.s.mode = { kind: 'status', status: 500 };
  up.s.dropAll();
  await waitFor('re-attaches answered 500', () => up.s.connections >= 3, { timeoutMs: 5000 });
  up.s.mode = { kind: 'status', status: 404 };
  const seen = up.s.connections;
  await waitFor('re-attaches answered 404', () => up.s.connections >= seen + 2, { timeoutMs: 5000 });
  const before = c.received.length;
  up.s.mode = { kind: 'audio' };
  await waitFor('audio again', () => c.received.length > before + 2000, { timeoutMs: 5000 });
  assert.equal(c.closed, false);
  // The error answers never reached the local Icecast's relay: it saw one head only.
  assert.equal(c.text().split('HTTP/1.0 ').length - 1, 1);
});

for (const status of [401, 404, 500]) {
  test(`a relay whose first answer is ${status} gets that answer and is closed, without a retry loop`, async () => {
    const d = await door();
    const up = await standIn({ kind: 'status', status });
    d.master.current = up.at;
    const c = relayClient(d);
    await waitFor('the relay closed', () => c.closed, { timeoutMs: 5000 });
    assert.match(c.text(), new RegExp(`^HTTP/1\\.0 ${status} `));
    assert.equal(up.s.connections, 1, 'an error answer is not retried');
  });
}

test('a relay re-attaching to a master that answers 200 and hangs up, again and again, is closed once the wait is over', async () => {
  const d = await startDoor({ continuity: { waitMs: 1500, intervalMs: 100 } });
  cleanups.push(() => d.close());
  const up = await standIn({ kind: 'audio' });
  d.master.current = up.at;
  const c = relayClient(d);
  await waitFor('audio', () => c.received.length > 2000, { timeoutMs: 5000 });

  up.s.mode = { kind: 'hangup' };
  const cutAt = performance.now();
  up.s.dropAll();
  await waitFor('the relay closed', () => c.closed, { timeoutMs: 6000 });
  // Each empty 200 used to start the 1.5 s wait over, holding the relay on silence for ever.
  const heldMs = performance.now() - cutAt;
  assert.ok(heldMs < 2500, `held ${Math.round(heldMs)} ms`);
  assert.ok(up.s.connections >= 3, 'it was re-attached meanwhile');
});

test('a relay with no master known is answered 503 at once', async () => {
  const d = await door();
  d.master.current = undefined;
  const c = relayClient(d);
  await waitFor('the relay closed', () => c.closed, { timeoutMs: 3000 });
  assert.match(c.text(), /^HTTP\/1\.[01] 503 /);
});
