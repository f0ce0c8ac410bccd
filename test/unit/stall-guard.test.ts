import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IcecastStallGuard, stallDelayMs } from '../../src/radiod/icecast/stall-guard.js';

test('an Icecast that answers is never killed, however long', () => {
  const g = new IcecastStallGuard(() => 20_000);
  for (let t = 0; t < 600_000; t += 1000) assert.equal(g.observe(true, t), undefined);
  assert.deepEqual(g.state, { name: 'answering' });
});

test('silence kills once it has lasted the whole delay, counted from the first unanswered poll', () => {
  const g = new IcecastStallGuard(() => 20_000);
  assert.equal(g.observe(true, 0), undefined);
  assert.equal(g.observe(false, 1000), undefined);
  assert.deepEqual(g.state, { name: 'silent', since: 1000 });
  assert.equal(g.observe(false, 20_999), undefined);
  assert.equal(g.silentForMs(20_999), 19_999);
  assert.equal(g.observe(false, 21_000), 'kill');
  assert.deepEqual(g.state, { name: 'killed', since: 1000, at: 21_000 });
  assert.equal(g.silentForMs(21_000), 20_000);
});

test('one answer in the silence starts the count again', () => {
  const g = new IcecastStallGuard(() => 10_000);
  g.observe(false, 0);
  g.observe(false, 9000);
  g.observe(true, 9500);
  assert.equal(g.observe(false, 10_000), undefined);
  assert.equal(g.observe(false, 19_999), undefined);
  assert.equal(g.observe(false, 20_000), 'kill');
});

test('after a kill, the next one waits the whole delay again (a restart is not a new stall)', () => {
  const g = new IcecastStallGuard(() => 10_000);
  g.observe(false, 0);
  assert.equal(g.observe(false, 10_000), 'kill');
  for (let t = 11_000; t < 20_000; t += 1000) assert.equal(g.observe(false, t), undefined);
  assert.equal(g.observe(false, 20_000), 'kill');
  assert.equal(g.silentForMs(20_000), 20_000, 'the silence is counted from its start');
  // The restarted Icecast answers: all is forgotten.
  assert.equal(g.observe(true, 21_000), undefined);
  assert.equal(g.silentForMs(21_000), 0);
  assert.equal(g.observe(false, 22_000), undefined);
  assert.equal(g.observe(false, 31_999), undefined);
  assert.equal(g.observe(false, 32_000), 'kill');
});

test('a delay of 0 turns the guard off', () => {
  const g = new IcecastStallGuard(() => 0);
  for (let t = 0; t < 600_000; t += 1000) assert.equal(g.observe(false, t), undefined);
  assert.deepEqual(g.state, { name: 'answering' });
});

test('silence that starts at radiod\'s start counts too (a wedged Icecast found at start)', () => {
  const g = new IcecastStallGuard(() => 5000);
  assert.equal(g.observe(false, 100), undefined);
  assert.equal(g.observe(false, 5100), 'kill');
});

test('the delay is the operator\'s, or longer with many mounts (a healthy reload blocks ~90 ms per mount); off stays off', () => {
  assert.equal(stallDelayMs(20, 3), 20_000);
  assert.equal(stallDelayMs(20, 100), 20_000);
  assert.equal(stallDelayMs(20, 400), 80_000);
  assert.equal(stallDelayMs(0, 400), 0);
});

test('the delay is asked at every poll: mounts added during a silence lengthen it', () => {
  let delay = 10_000;
  const g = new IcecastStallGuard(() => delay);
  g.observe(false, 0);
  delay = 30_000;
  assert.equal(g.observe(false, 10_000), undefined);
  assert.equal(g.observe(false, 30_000), 'kill');
});

test('a delay stays in force for its own length: removing many mounts does not shorten the wait for the reload it causes', () => {
  let delay = 80_000; // 400 mounts
  const g = new IcecastStallGuard(() => delay);
  assert.equal(g.observe(true, 0), undefined);
  delay = 2000; // all removed: the reload that tears their authenticators down is still to come
  assert.equal(g.observe(true, 1000), undefined);
  assert.equal(g.observe(false, 2000), undefined);
  for (let t = 3000; t < 80_000; t += 1000) assert.equal(g.observe(false, t), undefined, `killed at ${t}`);
  assert.equal(g.observe(false, 80_000), 'kill', 'the long delay has run out: the short one applies again');
  // Once the long delay has expired, the short one is the rule.
  assert.equal(g.observe(true, 100_000), undefined);
  assert.equal(g.observe(false, 101_000), undefined);
  assert.equal(g.observe(false, 103_000), 'kill');
});

test('turning the guard off forgets the delays held', () => {
  let delay = 80_000;
  const g = new IcecastStallGuard(() => delay);
  g.observe(true, 0);
  delay = 0;
  assert.equal(g.observe(false, 1000), undefined);
  delay = 2000;
  g.observe(false, 2000);
  assert.equal(g.observe(false, 4000), 'kill');
});
