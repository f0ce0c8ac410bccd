import { test } from 'node:test';
import assert from 'node:assert/strict';
import { drainDuty } from '../../src/coordination/drain-handover.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { drainRolesText } from '../../src/radioctl/commands/nodes.js';
import { CandidacyGate } from '../../src/radiod/candidacy-gate.js';
import type { MasterCandidacy } from '../../src/radiod/candidacy.js';
import { nodeStatus } from '../support/fixtures.js';

function cluster(nodes: NodeStatus[], drained: string[]) {
  return { nodes: new Map(nodes.map((n) => [n.name, n])), drained: new Set(drained) };
}

test('a node that is not drained serves, whatever the others do', () => {
  assert.deepEqual(drainDuty(cluster([nodeStatus('a'), nodeStatus('b')], ['b']), 'a'), { kind: 'serve' });
  assert.deepEqual(drainDuty({ nodes: new Map() }, 'a'), { kind: 'serve' });
});

test('a drained node hands over to the live, healthy, undrained others', () => {
  const state = cluster([nodeStatus('a'), nodeStatus('c'), nodeStatus('b'), nodeStatus('sick', { icecastOk: false }), nodeStatus('d')], ['a', 'd']);
  assert.deepEqual(drainDuty(state, 'a'), { kind: 'hand-over', successors: ['b', 'c'] });
});

test('a drained node holds its roles when no other node could take them', () => {
  assert.deepEqual(drainDuty(cluster([nodeStatus('a')], ['a']), 'a'), { kind: 'hold', reason: 'no-other-node' });
  // Others exist, but their Icecast is down or they are drained too (by key or by their own report).
  const state = cluster([nodeStatus('a'), nodeStatus('b', { icecastOk: false }), nodeStatus('c'), nodeStatus('d', { draining: true })], ['a', 'c']);
  assert.deepEqual(drainDuty(state, 'a'), { kind: 'hold', reason: 'no-other-node' });
  // A drained node that is not even live has no one to hand to but holds nothing either.
  assert.equal(drainDuty(cluster([], ['a']), 'a').kind, 'hold');
});

test('radioctl drain names where the roles go, or why they stay', () => {
  assert.equal(drainRolesText({ kind: 'hand-over', successors: ['b', 'c'] }), 'its master role and transcoders move to b, c');
  assert.match(drainRolesText({ kind: 'hold', reason: 'no-other-node' }), /no other live node can take over/);
});

/** Records what the gate asks of the candidacy; `active` follows start and stop as the real one does. */
function fakeCandidacy() {
  const calls: string[] = [];
  let active = false;
  const candidacy = {
    get active() {
      return active;
    },
    start() {
      if (!active) calls.push('start');
      active = true;
    },
    stop(reason: string) {
      calls.push(`stop:${reason}`);
      active = false;
      return Promise.resolve();
    },
  };
  const resign = (reason: string) => {
    calls.push(`resign:${reason}`);
    active = false;
    return Promise.resolve();
  };
  return { calls, gate: new CandidacyGate(candidacy as unknown as MasterCandidacy, resign) };
}

test('the gate campaigns only while Icecast is up and the node is not handing over', () => {
  const { calls, gate } = fakeCandidacy();
  gate.setHandingOver(false);
  assert.deepEqual(calls, [], 'no campaign before Icecast answers');
  gate.setIcecastUp(true);
  assert.deepEqual(calls, ['start']);
  gate.setHandingOver(true);
  assert.deepEqual(calls, ['start', 'resign:drained'], 'a drain resigns as a planned stop does');
  assert.equal(gate.withdrawal, 'drained');
  gate.setIcecastUp(false);
  gate.setIcecastUp(true);
  assert.deepEqual(calls, ['start', 'resign:drained'], 'an Icecast restart while drained does not campaign');
  gate.setHandingOver(false);
  assert.deepEqual(calls, ['start', 'resign:drained', 'start'], 'undrained: campaigning again');
  gate.setIcecastUp(false);
  assert.deepEqual(calls.at(-1), 'stop:local icecast is down', 'Icecast down withdraws without the drain resignation');
  assert.equal(gate.withdrawal, 'icecast-down');
});

test('a node started drained never campaigns until undrained', () => {
  const { calls, gate } = fakeCandidacy();
  gate.setHandingOver(true);
  gate.setIcecastUp(true);
  assert.deepEqual(calls, []);
  gate.setHandingOver(false);
  assert.deepEqual(calls, ['start']);
});
