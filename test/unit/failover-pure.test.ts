import { test } from 'node:test';
import assert from 'node:assert/strict';
import { depositionQuorum, mayDepose } from '../../src/coordination/deposition-quorum.js';
import { ProbeStreak } from '../../src/radiod/probe-streak.js';
import { leadershipTarget } from '../../src/radiod/raft-leader-move.js';
import { judgeSourceAuth, parseSourceAuthForm } from '../../src/radiod/source-auth/verdict.js';
import type { Mount } from '../../src/coordination/mount.js';

test('deposition needs a strict majority of the live nodes, never counts the leader, and never happens below three nodes', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(depositionQuorum), [1, 2, 2, 3, 3, 4, 4]);
  const three = new Set(['a', 'b', 'c']);
  assert.equal(mayDepose(['b'], three, 'a'), false);
  assert.equal(mayDepose(['b', 'c'], three, 'a'), true);
  assert.equal(mayDepose(['b', 'b', 'b'], three, 'a'), false, 'one node saying it three times is one voice');
  assert.equal(mayDepose(['a', 'b'], three, 'a'), false, 'the leader does not vote on itself');
  assert.equal(mayDepose(['b', 'x'], three, 'a'), false, 'a node that is not live does not vote');
  const five = new Set(['a', 'b', 'c', 'd', 'e']);
  assert.equal(mayDepose(['b', 'c'], five, 'a'), false);
  assert.equal(mayDepose(['b', 'c', 'd'], five, 'a'), true);
  // Two nodes: the survivor alone is never a majority; the lease expires instead.
  assert.equal(mayDepose(['b'], new Set(['a', 'b']), 'a'), false);
});

test('a probe streak: one failure is noise, two in a row are a dead master, any success or a new master starts over', () => {
  const s = new ProbeStreak(2);
  assert.equal(s.follow('k1'), true);
  assert.equal(s.record(false), 'doubtful');
  assert.equal(s.record(true), 'healthy');
  assert.equal(s.record(false), 'doubtful');
  assert.equal(s.record(false), 'dead');
  assert.equal(s.record(false), 'dead');
  assert.equal(s.follow('k1'), false);
  assert.equal(s.follow('k2'), true);
  assert.equal(s.record(false), 'doubtful');
});

test('raft leadership moves off this node only when it is here, to a started voting member', () => {
  const members = [
    { id: '1', clientUrls: ['http://192.0.2.1:2379'] },
    { id: '2', clientUrls: ['http://192.0.2.2:2379'] },
    { id: '3', clientUrls: [] },
    { id: '4', clientUrls: ['http://192.0.2.4:2379'], isLearner: true },
  ];
  assert.equal(leadershipTarget({ answeredBy: '1', leader: '1', members, ownAddresses: ['192.0.2.1'] }), '2');
  assert.equal(leadershipTarget({ answeredBy: '1', leader: '1', members, ownAddresses: ['192.0.2.9'] }), undefined, 'the leader is elsewhere');
  assert.equal(leadershipTarget({ answeredBy: '2', leader: '1', members, ownAddresses: ['192.0.2.1'] }), undefined, 'a follower answered');
  assert.equal(leadershipTarget({ answeredBy: '0', leader: '0', members, ownAddresses: ['192.0.2.1'] }), undefined, 'no leader');
  const local = [{ id: '7', clientUrls: ['http://localhost:2379'] }, { id: '8', clientUrls: ['http://[2001:db8::8]:2379'] }];
  assert.equal(leadershipTarget({ answeredBy: '7', leader: '7', members: local, ownAddresses: [] }), '8');
  assert.equal(leadershipTarget({ answeredBy: '1', leader: '1', members: members.slice(0, 1), ownAddresses: ['192.0.2.1'] }), undefined, 'nobody to take it');
});

const live: Mount = { path: '/live.mp3', username: 'source', password: 'right-password-1' };
const pulled: Mount = { path: '/pulled.mp3', username: 'source', password: 'pulled-pass-123', relayUrl: 'http://example.org/x' };
const mounts = new Map([
  [live.path, live],
  [pulled.path, pulled],
]);
const form = (fields: Record<string, string>) => parseSourceAuthForm(new URLSearchParams(fields).toString());

test("the source authenticator: the mount's own credentials, and only while this node may take sources", () => {
  const ok = { action: 'stream_auth', mount: '/live.mp3', ip: '192.0.2.7', server: 'x', port: '8000', user: 'source', pass: 'right-password-1' };
  assert.deepEqual(judgeSourceAuth(form(ok), mounts, true), { allow: true });
  assert.deepEqual(judgeSourceAuth(form(ok), mounts, false), { allow: false, reason: 'not master' });
  assert.deepEqual(judgeSourceAuth(form({ ...ok, pass: 'right-password-2' }), mounts, true), { allow: false, reason: 'wrong credentials' });
  assert.deepEqual(judgeSourceAuth(form({ ...ok, user: 'other' }), mounts, true), { allow: false, reason: 'wrong credentials' });
  assert.deepEqual(judgeSourceAuth(form({ ...ok, mount: '/other.mp3' }), mounts, true), { allow: false, reason: 'unknown mount' });
  // A mount pulled from an outside URL takes no source, whatever the password.
  assert.deepEqual(judgeSourceAuth(form({ ...ok, mount: '/pulled.mp3', pass: 'pulled-pass-123' }), mounts, true), { allow: false, reason: 'unknown mount' });
  // Icecast also marks a source whose path was escaped (`SOURCE /%6Cive.mp3`) as admin=1: an admin
  // request needs mastership too, or any node would take such a source.
  assert.deepEqual(judgeSourceAuth(form({ ...ok, admin: '1' }), mounts, false), { allow: false, reason: 'not master' });
  assert.deepEqual(judgeSourceAuth(form({ ...ok, admin: '1' }), mounts, true), { allow: true });
  assert.deepEqual(judgeSourceAuth(form({ ...ok, admin: '1', pass: 'x' }), mounts, true), { allow: false, reason: 'wrong credentials' });
  for (const broken of ['', 'action=listener_add&mount=/live.mp3&user=source&pass=right-password-1', 'action=stream_auth&mount=/live.mp3&user=source', '%%%']) {
    assert.deepEqual(judgeSourceAuth(parseSourceAuthForm(broken), mounts, true), { allow: false, reason: 'malformed request' }, broken);
  }
  // A field given twice is ambiguous: refused, whichever copy is right.
  const twice = 'action=stream_auth&mount=/live.mp3&user=source&pass=right-password-1&pass=x';
  assert.deepEqual(judgeSourceAuth(parseSourceAuthForm(twice), mounts, true), { allow: false, reason: 'malformed request' });
  assert.deepEqual(judgeSourceAuth(parseSourceAuthForm(`${twice.replace('&pass=x', '')}&action=stream_auth`), mounts, true), { allow: false, reason: 'malformed request' });
  // Icecast escapes every dot: the form decoding must give the mount back as it is.
  assert.deepEqual(judgeSourceAuth(parseSourceAuthForm('action=stream_auth&mount=%2flive%2emp3&user=source&pass=right%2dpassword%2d1'), mounts, true), { allow: true });
});
