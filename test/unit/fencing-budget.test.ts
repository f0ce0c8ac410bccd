import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  FENCE_TAKES_EFFECT_MS,
  KEEPALIVES_PER_WINDOW,
  MAX_LEASE_TTL_SECONDS,
  CONFIRMATION_WINDOW_MS,
  presenceBudget,
  MIN_LEASE_TTL_SECONDS,
  fencingBudget,
  requireFencingBudget,
} from '../../src/coordination/fencing-budget.js';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { Elector } from '../../src/coordination/elector.js';
import { parseRadiodOptions, radiodCommand } from '../../src/radiod/options.js';

test('for every allowed TTL a fenced master stops taking sources before its lease can expire', () => {
  for (let ttl = MIN_LEASE_TTL_SECONDS; ttl <= MAX_LEASE_TTL_SECONDS; ttl++) {
    const b = fencingBudget(ttl);
    // The earliest moment another node can win after an expiry is the last confirmed send + TTL.
    assert.ok(b.confirmationWindowMs + FENCE_TAKES_EFFECT_MS <= ttl * 1000, `TTL ${ttl}: ${JSON.stringify(b)}`);
    assert.ok(b.marginMs >= 0);
    assert.equal(b.confirmationWindowMs, CONFIRMATION_WINDOW_MS);
    // After a revocation by peers the successor waits out the whole window and the fencing.
    assert.equal(b.takeoverWaitMs, b.confirmationWindowMs + FENCE_TAKES_EFFECT_MS);
    assert.ok(b.keepaliveIntervalMs * KEEPALIVES_PER_WINDOW <= b.confirmationWindowMs);
  }
});

test('the figures for the usual TTLs', () => {
  const rows = [4, 5, 10].map((ttl) => {
    const b = fencingBudget(ttl);
    return [ttl, b.confirmationWindowMs, b.keepaliveIntervalMs, b.fencedByMs, b.marginMs, b.takeoverWaitMs];
  });
  assert.deepEqual(rows, [
    [4, 700, 175, 1100, 2900, 1100],
    [5, 700, 175, 1100, 3900, 1100],
    [10, 700, 175, 1100, 8900, 1100],
  ]);
  // Presence fences nothing: half its TTL, three keepalives in it.
  assert.deepEqual([presenceBudget(5).confirmationWindowMs, presenceBudget(5).keepaliveIntervalMs], [2500, 833]);
});

test('TTLs too short for fencing to take effect are refused, by the budget and by radiod', () => {
  for (const ttl of [0, 1, 2, 3, Number.NaN]) assert.throws(() => requireFencingBudget(ttl), RangeError);
  // Elections refuse such a lease; presence, which fences nothing, may use one (half its TTL as window).
  assert.throws(() => new Elector({} as Etcd3, { ttlSeconds: 2, log: pino({ level: 'silent' }) }), /at least 4 s/);
  assert.equal(presenceBudget(2).confirmationWindowMs, 1000);
  assert.equal(fencingBudget(1).confirmationWindowMs, 500);
  const parse = (ttl: string) =>
    parseRadiodOptions(['node', 'radiod', '--domain', 'radio.test', '--name', 'n1', '--ip', '10.0.0.1', '--lease-ttl', ttl], radiodCommand().exitOverride().configureOutput({ writeErr: () => {} }));
  // Below 4 s an ordinary raft election (1-2 s without answers) would expire every lease.
  assert.throws(() => parse('2'), /lease-ttl/);
  assert.throws(() => parse('3'), /lease-ttl/);
  assert.equal(parse('4').leaseTtl, 4);
});
