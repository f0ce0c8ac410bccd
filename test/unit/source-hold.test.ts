import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_SILENCE_MS, Hold, STABLE_ATTACH_MS, clientSilent, continuesHold } from '../../src/redirectord/http/source-hold.js';

test('a hold ends at its deadline; the last retry falls on it', () => {
  const h = new Hold(1000, 30_000);
  assert.equal(h.remainingMs(1000), 30_000);
  assert.equal(h.retryDelayMs(300, 1000), 300);
  assert.equal(h.retryDelayMs(300, 30_900), 100, 'cut at the deadline');
  assert.equal(h.retryDelayMs(300, 31_000), undefined);
  assert.equal(h.retryDelayMs(300, 45_000), undefined);
  assert.equal(h.heldMs(11_000), 10_000);
});

test('one attempt step is cut at the deadline, but never below 100 ms', () => {
  const h = new Hold(0, 5000);
  assert.equal(h.stepMs(1000, 0), 1000);
  assert.equal(h.stepMs(3000, 4500), 500);
  assert.equal(h.stepMs(3000, 4950), 100);
  assert.equal(h.stepMs(3000, 9000), 100);
});

test('an upstream lost right after re-attaching continues the hold, unless the master moved', () => {
  assert.equal(continuesHold(10_000, 10_000 + STABLE_ATTACH_MS - 1, false), true);
  assert.equal(continuesHold(10_000, 10_000 + STABLE_ATTACH_MS, false), false);
  assert.equal(continuesHold(10_000, 10_001, true), false);
});

test('a client is silent once it sent nothing for the silence time', () => {
  assert.equal(clientSilent(0, CLIENT_SILENCE_MS - 1), false);
  assert.equal(clientSilent(0, CLIENT_SILENCE_MS), true);
});
