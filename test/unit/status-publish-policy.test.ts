import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  LOAD_MIN_INTERVAL_MS,
  ON_AIR_MIN_INTERVAL_MS,
  REFRESH_MS,
  classifyStatusChange,
  publishDue,
} from '../../src/coordination/status-publish-policy.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus } from '../support/fixtures.js';

const base: NodeStatus = nodeStatus('node1', {
  mounts: { '/a.mp3': 200 },
  listeners: 200,
  bandwidthKbps: 25_600,
  maxListeners: 1000,
  reportedAt: 1,
});

test('health: Icecast state, addresses, port, limits and unknown fields are published at once', () => {
  assert.equal(classifyStatusChange(undefined, base), 'health');
  for (const next of [
    { ...base, icecastOk: false },
    { ...base, addresses: ['192.0.2.2'] },
    { ...base, icecastPort: 8001 },
    { ...base, maxListeners: 500 },
    { ...base, maxBandwidthKbps: 100_000 },
    { ...base, draining: true } as NodeStatus,
  ]) {
    assert.equal(classifyStatusChange(base, next), 'health', JSON.stringify(next));
    assert.equal(publishDue({ status: base, at: 0 }, next, 1), true);
  }
});

test('load: listener moves past the hysteresis wait LOAD_MIN_INTERVAL_MS after the last write', () => {
  const next = { ...base, listeners: 221, mounts: { '/a.mp3': 221 } };
  assert.equal(classifyStatusChange(base, next), 'load');
  assert.equal(publishDue({ status: base, at: 0 }, next, LOAD_MIN_INTERVAL_MS - 1), false);
  assert.equal(publishDue({ status: base, at: 0 }, next, LOAD_MIN_INTERVAL_MS), true);
  assert.equal(classifyStatusChange(base, { ...base, bandwidthKbps: 30_000 }), 'load');
  // A small node: its first listener is load, not detail.
  const idle = { ...base, listeners: 0, mounts: {}, bandwidthKbps: 0 };
  assert.equal(classifyStatusChange(idle, { ...idle, listeners: 1, mounts: { '/a.mp3': 1 } }), 'load');
});

test('near a limit every listener counts as load', () => {
  const near = { ...base, listeners: 900 };
  assert.equal(classifyStatusChange(near, { ...near, listeners: 901 }), 'load');
  const bw = { ...base, maxBandwidthKbps: 30_000, bandwidthKbps: 28_000 };
  assert.equal(classifyStatusChange(bw, { ...bw, bandwidthKbps: 28_100 }), 'load');
});

test('detail: small moves and per-mount counts wait for the refresh; time alone is no change', () => {
  const wobble = { ...base, listeners: 203, bandwidthKbps: 25_900, mounts: { '/a.mp3': 202, '/b.mp3': 1 }, reportedAt: 2 };
  assert.equal(classifyStatusChange(base, wobble), 'detail');
  assert.equal(classifyStatusChange(base, { ...base, reportedAt: 5 }), 'none');
  assert.equal(publishDue({ status: base, at: 0 }, wobble, REFRESH_MS - 1), false);
  assert.equal(publishDue({ status: base, at: 0 }, wobble, REFRESH_MS), true);
  assert.equal(publishDue({ status: base, at: 0 }, { ...base, reportedAt: 5 }, REFRESH_MS), true);
});

test('a node polled every second with wobbling listener counts writes at most once per refresh', () => {
  let written = { status: base, at: 0 };
  let writes = 0;
  for (let t = 1000; t <= 300_000; t += 1000) {
    const listeners = 200 + ((t / 1000) % 7) - 3;
    const next = { ...base, listeners, mounts: { '/a.mp3': listeners }, reportedAt: t };
    if (publishDue(written, next, t)) {
      written = { status: next, at: t };
      writes++;
    }
  }
  assert.equal(writes, 300_000 / REFRESH_MS);
});

test('on air: a source connecting or leaving, or a new title, is written within ON_AIR_MIN_INTERVAL_MS, never faster', () => {
  const onAir = { ...base, onAir: { '/a.mp3': { since: 1000, title: 'First' } } };
  assert.equal(classifyStatusChange(base, onAir), 'on-air');
  assert.equal(classifyStatusChange(onAir, base), 'on-air', 'the source left');
  const retitled = { ...base, onAir: { '/a.mp3': { since: 1000, title: 'Second' } } };
  assert.equal(classifyStatusChange(onAir, retitled), 'on-air');
  assert.equal(publishDue({ status: onAir, at: 0 }, retitled, ON_AIR_MIN_INTERVAL_MS - 1), false);
  assert.equal(publishDue({ status: onAir, at: 0 }, retitled, ON_AIR_MIN_INTERVAL_MS), true);
  assert.ok(ON_AIR_MIN_INTERVAL_MS < LOAD_MIN_INTERVAL_MS);
  // A load move that comes with an on-air change does not wait for the load interval.
  const both = { ...retitled, listeners: 400, mounts: { '/a.mp3': 400 } };
  assert.equal(publishDue({ status: onAir, at: 0 }, both, ON_AIR_MIN_INTERVAL_MS), true);
  // A title changing every second costs one write per interval.
  let written = { status: onAir as NodeStatus, at: 0 };
  let writes = 0;
  for (let t = 1000; t <= 60_000; t += 1000) {
    const next = { ...base, onAir: { '/a.mp3': { since: 1000, title: `Song ${t}` } } };
    if (publishDue(written, next, t)) {
      written = { status: next, at: t };
      writes++;
    }
  }
  assert.equal(writes, 60_000 / ON_AIR_MIN_INTERVAL_MS);
});
