import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../support/wait.js';
import { RawClient, startDoor, type Door } from './front-door-harness.js';
import { StandIn, type StandInMode } from './stand-in-master.js';

/**
 * A wall-clock step (NTP, an operator, a VM resume) on a node while its front door holds a relay
 * or its listeners through a failover. The step is made in this process only, by moving
 * Date.now() (the front door runs in it); the machine's clock is left alone. Holds measure on a
 * monotonic clock, so a step forward of ten minutes must not end them.
 */

const STEP_MS = 10 * 60_000;
const realNow = Date.now;

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  Date.now = realNow;
  for (const c of cleanups.reverse()) await c();
});

const standIn = (mode: StandInMode) => StandIn.start(mode, cleanups);

async function door(localIcecast?: { host: string; port: number }): Promise<Door> {
  const d = await startDoor({ localIcecast, continuity: { waitMs: 20_000, intervalMs: 250 } });
  cleanups.push(() => d.close());
  return d;
}

function client(d: Door, path: string): RawClient {
  const c = new RawClient(d.port);
  c.send(`GET ${path} HTTP/1.0\r\nUser-Agent: test\r\n\r\n`);
  cleanups.push(async () => c.destroy());
  return c;
}

/**
 * Streams, loses the upstream (re-attaches answered 500, as by a master without the source
 * yet), steps the wall clock forward, and brings the audio back: the client must have been
 * held throughout.
 */
async function holdAcrossStep(up: StandIn, c: RawClient): Promise<void> {
  await waitFor('audio', () => c.received.length > 2000, { timeoutMs: 5000 });
  up.mode = { kind: 'status', status: 500 };
  up.dropAll();
  const lostAt = up.connections;
  await waitFor('re-attaches answered 500', () => up.connections >= lostAt + 2, { timeoutMs: 5000 });
  const stepped = realNow() + STEP_MS;
  Date.now = () => realNow() + STEP_MS;
  try {
    assert.ok(Date.now() >= stepped);
    const seen = up.connections;
    // More failed re-attaches after the step: each checks the hold's deadline.
    await waitFor('re-attaches after the step', () => up.connections >= seen + 2 || c.closed, { timeoutMs: 5000 });
    assert.equal(c.closed, false, 'the held client was dropped when the wall clock stepped forward');
    const before = c.received.length;
    up.mode = { kind: 'audio' };
    await waitFor('audio again', () => c.received.length > before + 2000 || c.closed, { timeoutMs: 5000 });
    assert.equal(c.closed, false);
  } finally {
    Date.now = realNow;
  }
}

test('a relay held through a failover survives a wall-clock step forward of ten minutes', async () => {
  const up = await standIn({ kind: 'audio' });
  const d = await door();
  d.master.current = up.at;
  await holdAcrossStep(up.s, client(d, '/_relay/live'));
});

test("a mount's listeners held through a lost upstream survive a wall-clock step forward of ten minutes", async () => {
  const up = await standIn({ kind: 'audio' });
  const d = await door(up.at);
  await holdAcrossStep(up.s, client(d, '/_stream/live'));
});
