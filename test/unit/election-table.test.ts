import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ElectionTable, type CandidateChange } from '../../src/coordination/election-table.js';
import {
  ELECTION_ROOT,
  MASTER_ELECTION_PREFIX,
  TRANSCODER_ELECTION_ROOT,
  electionOfKey,
  transcoderElectionPrefix,
} from '../../src/coordination/keys.js';

const put = (key: string, createRevision: number): CandidateChange => ({ type: 'put', key, createRevision: String(createRevision) });
const del = (key: string): CandidateChange => ({ type: 'delete', key, createRevision: '0' });

test('no transcoder election prefix is a prefix of another mount\'s', () => {
  const paths = ['/live', '/live/low', '/live/low/x', '/live.mp3', '/live-2', '/a/b', '/a_b', '/a.b'];
  for (const a of paths) {
    for (const b of paths) {
      if (a === b) continue;
      const pa = transcoderElectionPrefix(a);
      const pb = transcoderElectionPrefix(b);
      assert.ok(!pb.startsWith(pa), `${a} (${pa}) is a prefix of ${b} (${pb})`);
    }
  }
  // Single-segment paths keep the key they had before (old and new nodes share those elections).
  assert.equal(transcoderElectionPrefix('/live.mp3'), `${TRANSCODER_ELECTION_ROOT}live.mp3/`);
  assert.equal(transcoderElectionPrefix('/live/low'), `${TRANSCODER_ELECTION_ROOT}live%2Flow/`);
});

test('a candidate key splits into its exact election and its own segment', () => {
  assert.deepEqual(electionOfKey(`${MASTER_ELECTION_PREFIX}694d7c1f`), { election: MASTER_ELECTION_PREFIX, candidate: '694d7c1f' });
  assert.deepEqual(electionOfKey(`${transcoderElectionPrefix('/live/low')}ab`), { election: transcoderElectionPrefix('/live/low'), candidate: 'ab' });
  assert.equal(electionOfKey(`${ELECTION_ROOT}x`), undefined);
  assert.equal(electionOfKey('/autoradio/v1/nodes/n1'), undefined);
  assert.equal(electionOfKey(`${MASTER_ELECTION_PREFIX}`), undefined);
});

test('the leader is the lowest create revision; deletes hand over; a new value keeps the place', () => {
  const t = new ElectionTable();
  const m = MASTER_ELECTION_PREFIX;
  t.reset([put(`${m}bbbb`, 7), put(`${m}aaaa`, 9), put(`${m}0001`, 12)], 20n);
  assert.equal(t.leader(m), `${m}bbbb`);
  assert.equal(t.revision, 20n);
  assert.deepEqual([...t.apply([put(`${m}bbbb`, 7)], 21n)], [m]);
  assert.equal(t.leader(m), `${m}bbbb`);
  t.apply([del(`${m}bbbb`)], 22n);
  assert.equal(t.leader(m), `${m}aaaa`);
  assert.ok(!t.has(`${m}bbbb`));
  t.apply([del(`${m}aaaa`), del(`${m}0001`)], 23n);
  assert.equal(t.leader(m), undefined);
  assert.equal(t.candidateCount(m), 0);
});

test('/live/low\'s candidates never count in /live\'s election, in either key layout', () => {
  const t = new ElectionTable();
  const live = transcoderElectionPrefix('/live');
  const low = transcoderElectionPrefix('/live/low');
  // A node of the previous layout campaigns for /live/low under live/low/<lease>.
  const oldLow = `${TRANSCODER_ELECTION_ROOT}live/low/1`;
  t.reset([put(`${low}2`, 3), put(oldLow, 4), put(`${live}5`, 8)], 10n);
  assert.equal(t.leader(live), `${live}5`);
  assert.equal(t.candidateCount(live), 1);
  assert.equal(t.leader(low), `${low}2`);
  const touched = t.apply([del(`${low}2`)], 11n);
  assert.deepEqual([...touched], [low]);
  assert.equal(t.leader(live), `${live}5`);
});

test('a full read reports the elections that disappeared as changed', () => {
  const t = new ElectionTable();
  const a = transcoderElectionPrefix('/a');
  const b = transcoderElectionPrefix('/b');
  t.reset([put(`${a}1`, 1)], 5n);
  const touched = t.reset([put(`${b}1`, 6)], 7n);
  assert.deepEqual([...touched].sort(), [a, b].sort());
  assert.equal(t.leader(a), undefined);
});
