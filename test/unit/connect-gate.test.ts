import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectGate } from '../../src/redirectord/http/connect-gate.js';

test('at most maxInFlight run at once; the others start in arrival order as slots free up', () => {
  const gate = new ConnectGate(2);
  const started: number[] = [];
  const releases = new Map<number, () => void>();
  for (let i = 0; i < 5; i++) gate.enter((release) => {
    started.push(i);
    releases.set(i, release);
  });
  assert.deepEqual(started, [0, 1]);
  assert.equal(gate.running(), 2);
  assert.equal(gate.waiting(), 3);
  releases.get(1)!();
  releases.get(1)!(); // a second release gives nothing back twice
  assert.deepEqual(started, [0, 1, 2]);
  assert.equal(gate.running(), 2);
  releases.get(0)!();
  releases.get(2)!();
  assert.deepEqual(started, [0, 1, 2, 3, 4]);
  releases.get(3)!();
  releases.get(4)!();
  assert.equal(gate.running(), 0);
  assert.equal(gate.waiting(), 0);
});

test('a waiting entry that leaves never starts and holds no slot; leaving a running one releases it', () => {
  const gate = new ConnectGate(1);
  const started: string[] = [];
  let releaseA!: () => void;
  const leaveA = gate.enter((r) => {
    started.push('a');
    releaseA = r;
  });
  const leaveB = gate.enter(() => started.push('b'));
  gate.enter(() => started.push('c'));
  leaveB();
  leaveA();
  assert.deepEqual(started, ['a', 'c']);
  assert.equal(gate.running(), 1);
  releaseA(); // already given back by leaveA
  assert.equal(gate.running(), 1);
});

test('a newcomer does not overtake waiting entries', () => {
  const gate = new ConnectGate(1);
  const order: string[] = [];
  let release!: () => void;
  gate.enter((r) => {
    order.push('first');
    release = r;
  });
  gate.enter((r) => {
    order.push('second');
    r();
  });
  release();
  gate.enter((r) => {
    order.push('third');
    r();
  });
  assert.deepEqual(order, ['first', 'second', 'third']);
});

test('a long queue drains completely (the consumed prefix is dropped along the way)', () => {
  const gate = new ConnectGate(3);
  const pending: (() => void)[] = [];
  let started = 0;
  for (let i = 0; i < 5000; i++) gate.enter((r) => {
    started++;
    pending.push(r);
  });
  while (pending.length) pending.shift()!();
  assert.equal(started, 5000);
  assert.equal(gate.waiting(), 0);
  assert.equal(gate.running(), 0);
});

test('the queue is bounded in length: a newcomer beyond it is refused at once, as "full"', () => {
  const gate = new ConnectGate(1, { maxWaiting: 2 });
  const refused: string[] = [];
  const started: number[] = [];
  for (let i = 0; i < 5; i++) gate.enter(() => started.push(i), (why) => refused.push(`${i}:${why}`));
  assert.deepEqual(started, [0]);
  assert.equal(gate.waiting(), 2);
  assert.deepEqual(refused, ['3:full', '4:full']);
});

test('a withdrawn entry frees its place in the bounded queue', () => {
  const gate = new ConnectGate(1, { maxWaiting: 1 });
  gate.enter(() => {});
  const leave = gate.enter(() => assert.fail('withdrawn'));
  leave();
  assert.equal(gate.waiting(), 0);
  let refused = false;
  gate.enter(() => {}, () => (refused = true));
  assert.equal(refused, false);
  assert.equal(gate.waiting(), 1);
});

test('waiting is bounded in time: expired entries are refused in order, never started', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'] });
  // The mocked Date moves with the mocked timers; performance.now() would not.
  const gate = new ConnectGate(1, { maxWaitMs: 1000, clock: () => Date.now() });
  const events: string[] = [];
  let release!: () => void;
  gate.enter((r) => (release = r));
  gate.enter(() => events.push('a started'), (why) => events.push(`a ${why}`));
  t.mock.timers.tick(400);
  gate.enter(() => events.push('b started'), (why) => events.push(`b ${why}`));
  t.mock.timers.tick(600);
  assert.deepEqual(events, ['a expired']);
  assert.equal(gate.waiting(), 1);
  release();
  assert.deepEqual(events, ['a expired', 'b started']);
  t.mock.timers.tick(5000);
  assert.deepEqual(events, ['a expired', 'b started']);
  assert.equal(gate.waiting(), 0);
});
