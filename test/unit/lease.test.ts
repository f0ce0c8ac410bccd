import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { pino } from 'pino';
import type { Etcd3 } from 'etcd3';
import { KeptLease } from '../../src/coordination/lease.js';

/** An etcd client whose lease answers the grant and then `okKeepalives` keepalives, then times out. */
function fakeClient(okKeepalives: number): Etcd3 {
  let answered = 0;
  const lease = Object.assign(new EventEmitter(), {
    grant: async () => '1234',
    keepaliveOnce: async () => {
      if (answered++ < okKeepalives) return { TTL: '1' };
      throw new Error('4 DEADLINE_EXCEEDED: Deadline exceeded');
    },
    release: () => {},
    revoke: async () => {},
  });
  return { lease: () => lease } as unknown as Etcd3;
}

test('a lease whose keepalives stop being answered reports unconfirmed within its window', async () => {
  const kept = new KeptLease(fakeClient(1), 1, pino({ level: 'silent' }));
  const started = Date.now();
  kept.start();
  await once(kept, 'unconfirmed');
  const took = Date.now() - started;
  assert.equal(kept.confirmed, false);
  // Confirmed for TTL/2 after the last answered keepalive was sent (about 250 ms in), not longer.
  assert.ok(took >= 500 && took < 1500, `unconfirmed after ${took} ms`);
  await kept.stop();
});

test('the window is reported closed even when the timer fires before Date.now() agrees', async () => {
  const realNow = Date.now;
  const kept = new KeptLease(fakeClient(0), 1, pino({ level: 'silent' }));
  kept.start();
  await once(kept, 'confirmed');
  // From here Date.now() runs 5 ms behind the timers: the watchdog wakes "too early".
  Date.now = () => realNow() - 5;
  try {
    const unconfirmed = once(kept, 'unconfirmed');
    const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('never reported unconfirmed')), 2000));
    await Promise.race([unconfirmed, deadline]);
    assert.equal(kept.confirmed, false);
  } finally {
    Date.now = realNow;
    await kept.stop();
  }
});
