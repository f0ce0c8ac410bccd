import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalIcecastHealth } from '../../src/radiod/local-icecast-health.js';

test('up on the first answer; down only after N failures in a row', () => {
  const h = new LocalIcecastHealth(3);
  assert.equal(h.observe(false), undefined, 'failures while down change nothing');
  assert.equal(h.observe(true), 'came-up');
  assert.equal(h.observe(true), undefined);
  assert.equal(h.observe(false), undefined);
  assert.equal(h.observe(false), undefined);
  assert.equal(h.observe(true), undefined, 'an answer resets the count');
  assert.equal(h.observe(false), undefined);
  assert.equal(h.observe(false), undefined);
  assert.equal(h.observe(false), 'went-down');
  assert.equal(h.consecutiveFailures, 3);
  assert.equal(h.observe(false), undefined);
  assert.equal(h.observe(true), 'came-up');
});
