import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, RestartBackoff } from '../../src/radiod/transcoder/backoff.js';

test('restart delays double from 1 s up to 30 s', () => {
  const b = new RestartBackoff();
  const delays = Array.from({ length: 8 }, () => b.afterExit(500));
  assert.deepEqual(delays, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('a run of a minute or more resets the delay; a shorter one does not', () => {
  const b = new RestartBackoff(DEFAULT_BACKOFF);
  b.afterExit(100);
  b.afterExit(100);
  assert.equal(b.afterExit(59_999), 4000);
  assert.equal(b.afterExit(60_000), 1000);
  assert.equal(b.afterExit(10), 2000);
  b.reset();
  assert.equal(b.afterExit(10), 1000);
});
