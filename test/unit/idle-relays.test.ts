import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdleRelays } from '../../src/radiod/icecast/idle-relays.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { nodeStatus } from '../support/fixtures.js';

const AFTER = 60_000;

function mounts(...paths: string[]): Map<string, Mount> {
  return new Map(paths.map((p) => [p, { path: p, username: 'source', password: 'x' }]));
}

/** A cluster whose master is m and reports `onAir`; `report: false` has no master report at all. */
function state(paths: string[], onAir: string[] | false) {
  const nodes = new Map<string, NodeStatus>();
  if (onAir !== false) nodes.set('m', nodeStatus('m', { onAir: Object.fromEntries(onAir.map((p) => [p, { since: 1 }])) }));
  return { mounts: mounts(...paths), nodes, master: onAir === false ? undefined : { name: 'm', addresses: ['192.0.2.1'], icecastPort: 8000 } };
}

test('a mount off air for the whole delay gets an on-demand relay; on air again, at once an always-on one', () => {
  const idle = new IdleRelays(AFTER);
  assert.deepEqual([...idle.observe(state(['/a', '/b'], ['/a']), 0)], []);
  assert.deepEqual([...idle.observe(state(['/a', '/b'], ['/a']), AFTER - 1)], []);
  assert.deepEqual([...idle.observe(state(['/a', '/b'], ['/a']), AFTER)], ['/b']);
  assert.deepEqual([...idle.observe(state(['/a', '/b'], ['/a', '/b']), AFTER + 1)], [], 'a source came: pulled all the time again');
});

test('a failover gap never flips a relay: off air for seconds, or no master report at all', () => {
  const idle = new IdleRelays(AFTER);
  idle.observe(state(['/a'], ['/a']), 0);
  // The new master reports before its source arrived, then with it.
  assert.deepEqual([...idle.observe(state(['/a'], []), 1_000)], []);
  assert.deepEqual([...idle.observe(state(['/a'], ['/a']), 4_000)], []);
  // Nobody is master for longer than the delay: nothing is known, nothing changes.
  assert.deepEqual([...idle.observe(state(['/a'], false), 4_000 + 2 * AFTER)], []);
  // Off air is counted from the report that said so, not from the last time it was on air.
  assert.deepEqual([...idle.observe(state(['/a'], []), 10 * AFTER)], []);
  assert.deepEqual([...idle.observe(state(['/a'], []), 11 * AFTER)], ['/a']);
});

test('a mount seen first without a master report counts as off air from then; a deleted mount is forgotten', () => {
  const idle = new IdleRelays(AFTER);
  idle.observe(state(['/a'], false), 0);
  assert.deepEqual([...idle.observe(state(['/a'], false), AFTER)], ['/a']);
  idle.observe(state([], false), AFTER + 1);
  assert.deepEqual([...idle.observe(state(['/a'], []), AFTER + 2)], [], 'created again: a fresh delay');
});
