import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReattachHold } from '../../src/redirectord/http/reattach-hold.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('a hold allows retries until a pause would pass its deadline', () => {
  const c = clock();
  const hold = new ReattachHold(1000, 250, c.now);
  hold.begin();
  assert.equal(hold.mayRetry(), true);
  c.advance(750);
  assert.equal(hold.mayRetry(), true, 'exactly one pause left');
  c.advance(1);
  assert.equal(hold.mayRetry(), false);
});

test('losing the upstream again without audio in between keeps the first deadline', () => {
  const c = clock();
  const hold = new ReattachHold(1000, 100, c.now);
  hold.begin();
  c.advance(800);
  hold.begin(); // an answer of 200 that hung up at once
  c.advance(150);
  assert.equal(hold.mayRetry(), false);
});

test('audio between two losses gives the second a wait of its own', () => {
  const c = clock();
  const hold = new ReattachHold(1000, 100, c.now);
  hold.begin();
  c.advance(800);
  hold.audioFlowed();
  hold.begin();
  c.advance(800);
  assert.equal(hold.mayRetry(), true);
});

test('an attempt is bounded by the time left, but never below half a second', () => {
  const c = clock();
  const hold = new ReattachHold(3000, 100, c.now);
  assert.equal(hold.attemptTimeout(10_000), 10_000, 'not held: the full head timeout');
  hold.begin();
  assert.equal(hold.attemptTimeout(10_000), 3000);
  assert.equal(hold.attemptTimeout(2000), 2000);
  c.advance(2900);
  assert.equal(hold.attemptTimeout(10_000), 500);
});

test('a wait of 0 disables holding; mayRetry is false before any loss', () => {
  assert.equal(new ReattachHold(0, 100).enabled, false);
  assert.equal(new ReattachHold(1, 100).enabled, true);
  assert.equal(new ReattachHold(1000, 100).mayRetry(), false);
});
