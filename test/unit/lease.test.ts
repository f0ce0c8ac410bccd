import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { pino } from 'pino';
import type { Etcd3 } from 'etcd3';
import { KeptLease } from '../../src/coordination/lease.js';
import { fencingBudget } from '../../src/coordination/fencing-budget.js';

const TTL = 4;
const WINDOW_MS = fencingBudget(TTL).confirmationWindowMs;
const silent = pino({ level: 'silent' });

/** An etcd client whose lease answers the grant and then `okKeepalives` keepalives, then times out. */
function fakeClient(okKeepalives: number): Etcd3 {
  let answered = 0;
  const lease = Object.assign(new EventEmitter(), {
    grant: async () => '1234',
    keepaliveOnce: async () => {
      if (answered++ < okKeepalives) return { TTL: String(TTL) };
      throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded');
    },
    release: () => {},
    revoke: async () => {},
  });
  return { lease: () => lease } as unknown as Etcd3;
}

/** Runs `body` with Date.now() moved by `stepMs` (an NTP step, an operator, a VM resume). */
async function withWallClockStep(stepMs: number, body: () => Promise<void>): Promise<void> {
  const realNow = Date.now;
  Date.now = () => realNow() + stepMs;
  try {
    await body();
  } finally {
    Date.now = realNow;
  }
}

function deadline(ms: number, what: string): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(what)), ms).unref());
}

test('a lease whose keepalives stop being answered reports unconfirmed within its window', async () => {
  const kept = new KeptLease(fakeClient(1), fencingBudget(TTL), silent);
  const started = performance.now();
  kept.start();
  await once(kept, 'unconfirmed');
  const took = performance.now() - started;
  assert.equal(kept.confirmed, false);
  // Confirmed for the window after the last answered keepalive was sent (one interval in), not longer.
  assert.ok(took >= WINDOW_MS && took < WINDOW_MS + kept.intervalMs + 500, `unconfirmed after ${took} ms`);
  await kept.stop();
});

test('the window follows the injected monotonic clock alone', async () => {
  let now = 1_000_000;
  const kept = new KeptLease(fakeClient(0), fencingBudget(TTL), silent, () => now);
  kept.start();
  await once(kept, 'confirmed');
  now += WINDOW_MS - 1;
  assert.equal(kept.confirmed, true);
  await withWallClockStep(-10_000, async () => assert.equal(kept.confirmed, true));
  now += 1;
  assert.equal(kept.confirmed, false);
  await withWallClockStep(+10_000, async () => assert.equal(kept.confirmed, false));
  await kept.stop();
});

test('a wall clock stepped back 10 s does not keep a cut-off lease confirmed', async () => {
  const kept = new KeptLease(fakeClient(0), fencingBudget(TTL), silent);
  kept.start();
  await once(kept, 'confirmed');
  const confirmedAt = performance.now();
  await withWallClockStep(-10_000, async () => {
    await Promise.race([once(kept, 'unconfirmed'), deadline(WINDOW_MS + 1000, 'still confirmed after the window')]);
  });
  const took = performance.now() - confirmedAt;
  assert.equal(kept.confirmed, false);
  assert.ok(took < WINDOW_MS + 200, `unconfirmed after ${took} ms`);
  await kept.stop();
});

test('a wall clock stepped forward 10 s does not fence a healthy lease', async () => {
  const kept = new KeptLease(fakeClient(1000), fencingBudget(TTL), silent);
  let unconfirmed = 0;
  kept.on('unconfirmed', () => unconfirmed++);
  kept.start();
  await once(kept, 'confirmed');
  await withWallClockStep(+10_000, async () => {
    assert.equal(kept.confirmed, true);
    // Across more than one window of keepalives, the lease never counts as unconfirmed.
    const until = performance.now() + WINDOW_MS + kept.intervalMs;
    while (performance.now() < until) {
      assert.equal(kept.confirmed, true);
      await once(kept, 'confirmed');
    }
  });
  assert.equal(unconfirmed, 0);
  await kept.stop();
});

test('the window is reported closed even when the timer fires before the clock agrees', async () => {
  let lagMs = 0;
  // From the first confirmation on the clock runs 5 ms behind the timers: the watchdog wakes "too early".
  const kept = new KeptLease(fakeClient(0), fencingBudget(TTL), silent, () => performance.now() - lagMs);
  kept.start();
  await once(kept, 'confirmed');
  lagMs = 5;
  await Promise.race([once(kept, 'unconfirmed'), deadline(WINDOW_MS + 1000, 'never reported unconfirmed')]);
  assert.equal(kept.confirmed, false);
  await kept.stop();
});
