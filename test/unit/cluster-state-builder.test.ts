import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStateBuilder, type KeyChange } from '../../src/coordination/cluster-state-builder.js';
import { ICECAST_SECRETS_KEY, MASTER_ELECTION_PREFIX, drainKey, forgottenKey, mountKey, nodeKey } from '../../src/coordination/keys.js';
import type { Mount } from '../../src/coordination/mount.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import type { MasterInfo } from '../../src/coordination/cluster-state.js';
import { nodeStatus } from '../support/fixtures.js';

let rev = 10;

function put(key: string, value: unknown, createRevision?: number): KeyChange {
  rev++;
  return {
    type: 'put',
    key,
    value: typeof value === 'string' ? value : JSON.stringify(value),
    createRevision: String(createRevision ?? rev),
    modRevision: String(rev),
  };
}

function del(key: string): KeyChange {
  rev++;
  return { type: 'delete', key, value: '', createRevision: '0', modRevision: String(rev) };
}

function mount(path: string, extra: Partial<Mount> = {}): Mount {
  return { path, username: 'source', password: 'source-password', ...extra };
}

function node(name: string, extra: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { reportedAt: 1_700_000_000_000, ...extra });
}

function master(name: string): MasterInfo {
  return { name, addresses: ['192.0.2.9'], icecastPort: 8000 };
}

function recorder() {
  const invalid: { key: string; problem: string }[] = [];
  const builder = new ClusterStateBuilder((key, problem) => invalid.push({ key, problem }));
  return { builder, invalid };
}

test('a new builder is empty at revision 0', () => {
  const { builder } = recorder();
  const s = builder.snapshot(false);
  assert.equal(s.mounts.size, 0);
  assert.equal(s.nodes.size, 0);
  assert.equal(s.master, undefined);
  assert.equal(s.revision, '0');
  assert.equal(s.connected, false);
  assert.equal(builder.currentRevision, '0');
});

test('reset loads mounts, nodes and the master from a full read and ignores other keys', () => {
  const { builder, invalid } = recorder();
  const a = mount('/a.mp3');
  const b = mount('/dir/b.mp3', { fallback: '/a.mp3' });
  builder.reset(
    [
      put(mountKey(a.path), a),
      put(mountKey(b.path), b),
      put(nodeKey('n1'), node('n1')),
      put(nodeKey('n2'), node('n2')),
      put(`${MASTER_ELECTION_PREFIX}694d7c1f`, master('n2')),
      put(ICECAST_SECRETS_KEY, { adminPassword: 'admin-password-0123', relayPassword: 'relay-password-0123' }),
      put('/autoradio/v1/election/transcoder/a.mp3/1', 'n1'),
    ],
    '100',
  );
  const s = builder.snapshot(true);
  assert.deepEqual([...s.mounts.keys()].sort(), ['/a.mp3', '/dir/b.mp3']);
  assert.deepEqual(s.mounts.get('/dir/b.mp3'), b);
  assert.deepEqual([...s.nodes.keys()].sort(), ['n1', 'n2']);
  assert.deepEqual(s.master, master('n2'));
  assert.equal(s.revision, '100');
  assert.equal(s.connected, true);
  assert.deepEqual(invalid, []);

  // A second reset replaces everything: keys absent from the new read are gone.
  builder.reset([put(mountKey(a.path), a)], '120');
  const s2 = builder.snapshot(true);
  assert.deepEqual([...s2.mounts.keys()], ['/a.mp3']);
  assert.equal(s2.nodes.size, 0);
  assert.equal(s2.master, undefined);
  assert.equal(s2.revision, '120');
});

test("the Icecast admin password reaches the state (for listclients); a malformed value keeps the last one and is reported", () => {
  const { builder, invalid } = recorder();
  builder.reset([], '50');
  assert.equal(builder.snapshot(true).icecastAdminPassword, undefined);
  assert.equal(builder.apply([put(ICECAST_SECRETS_KEY, { adminPassword: 'admin-password-0123', relayPassword: 'relay-password-0123' })], '51'), true);
  assert.equal(builder.snapshot(true).icecastAdminPassword, 'admin-password-0123');
  for (const bad of ['{', '"x"', JSON.stringify({ adminPassword: 'short', relayPassword: 'relay-password-0123' }), JSON.stringify({ adminPassword: 'a b c d e f g h i j', relayPassword: 'relay-password-0123' })]) {
    assert.equal(builder.apply([put(ICECAST_SECRETS_KEY, bad)], '52'), false, bad);
    assert.equal(builder.snapshot(true).icecastAdminPassword, 'admin-password-0123', bad);
  }
  assert.equal(invalid.length, 4);
  assert.equal(invalid[0]!.key, ICECAST_SECRETS_KEY);
});

test('apply puts and deletes mounts and reports whether anything changed', () => {
  const { builder } = recorder();
  builder.reset([], '5');
  assert.equal(builder.apply([put(mountKey('/a.mp3'), mount('/a.mp3'))], '6'), true);
  assert.equal(builder.snapshot(true).mounts.has('/a.mp3'), true);
  const edited = mount('/a.mp3', { relayUrl: 'http://example.com/x' });
  assert.equal(builder.apply([put(mountKey('/a.mp3'), edited)], '7'), true);
  assert.deepEqual(builder.snapshot(true).mounts.get('/a.mp3'), edited);
  assert.equal(builder.apply([del(mountKey('/a.mp3'))], '8'), true);
  assert.equal(builder.snapshot(true).mounts.has('/a.mp3'), false);
  assert.equal(builder.apply([del(mountKey('/never.mp3'))], '9'), false);
  assert.equal(builder.apply([put('/autoradio/v1/unrelated', 'x')], '10'), false);
  assert.equal(builder.currentRevision, '10');
});

test('snapshots are independent copies', () => {
  const { builder } = recorder();
  builder.reset([put(mountKey('/a.mp3'), mount('/a.mp3'))], '5');
  const before = builder.snapshot(true);
  builder.apply([del(mountKey('/a.mp3'))], '6');
  assert.equal(before.mounts.has('/a.mp3'), true);
  assert.equal(before.revision, '5');
});

test('a malformed mount value keeps the previous valid mount and calls onInvalid', () => {
  const { builder, invalid } = recorder();
  const good = mount('/a.mp3', { fallback: '/b.mp3' });
  builder.reset([put(mountKey('/a.mp3'), good), put(mountKey('/b.mp3'), mount('/b.mp3'))], '5');

  assert.equal(builder.apply([put(mountKey('/a.mp3'), '{not json')], '6'), false);
  assert.deepEqual(builder.snapshot(true).mounts.get('/a.mp3'), good);
  assert.equal(invalid.length, 1);
  assert.equal(invalid[0]!.key, mountKey('/a.mp3'));
  assert.match(invalid[0]!.problem, /not valid JSON/);

  // Valid JSON, invalid mount; and a value whose path does not match its key.
  builder.apply([put(mountKey('/a.mp3'), { ...good, password: '' })], '7');
  builder.apply([put(mountKey('/a.mp3'), mount('/other.mp3'))], '8');
  assert.deepEqual(builder.snapshot(true).mounts.get('/a.mp3'), good);
  assert.equal(invalid.length, 3);
  assert.match(invalid[2]!.problem, /does not match the key/);

  // A malformed value for a mount never seen before adds nothing.
  builder.apply([put(mountKey('/new.mp3'), 'garbage')], '9');
  assert.equal(builder.snapshot(true).mounts.has('/new.mp3'), false);
  assert.equal(invalid.length, 4);

  // A full re-read with the broken value still keeps the last valid version.
  builder.reset([put(mountKey('/a.mp3'), 'still garbage'), put(mountKey('/b.mp3'), mount('/b.mp3'))], '10');
  assert.deepEqual(builder.snapshot(true).mounts.get('/a.mp3'), good);
  assert.equal(invalid.length, 5);

  // A fixed value replaces it.
  const fixed = mount('/a.mp3');
  builder.apply([put(mountKey('/a.mp3'), fixed)], '11');
  assert.deepEqual(builder.snapshot(true).mounts.get('/a.mp3'), fixed);
});

test('a malformed node status is ignored and reported', () => {
  const { builder, invalid } = recorder();
  builder.reset([put(nodeKey('n1'), node('n1', { listeners: 3 }))], '5');
  const serial = builder.snapshot(true).membershipSerial;

  assert.equal(builder.apply([put(nodeKey('n1'), '{"name":')], '6'), false);
  assert.equal(builder.apply([put(nodeKey('n1'), node('n1', { listeners: -1 }))], '7'), false);
  assert.equal(builder.apply([put(nodeKey('n1'), node('n1', { addresses: ['not-an-ip'] }))], '8'), false);
  assert.equal(builder.apply([put(nodeKey('n1'), node('other'))], '9'), false);
  const s = builder.snapshot(true);
  assert.equal(s.nodes.get('n1')!.listeners, 3, 'the last valid status stays');
  assert.equal(s.membershipSerial, serial);
  assert.equal(invalid.length, 4);
  assert.ok(invalid.every((i) => i.key === nodeKey('n1')));

  // An invalid status of an unknown node does not make it a member.
  assert.equal(builder.apply([put(nodeKey('n2'), 'nope')], '10'), false);
  assert.equal(builder.snapshot(true).nodes.has('n2'), false);
  assert.equal(builder.snapshot(true).membershipSerial, serial);
});

test('membershipSerial changes when nodes join or leave, not on status updates', () => {
  const { builder } = recorder();
  builder.reset([], '5');
  const s0 = builder.snapshot(true).membershipSerial;

  builder.apply([put(nodeKey('n1'), node('n1'))], '20');
  const s1 = builder.snapshot(true).membershipSerial;
  assert.notEqual(s1, s0, 'join');
  assert.equal(s1, 20);

  builder.apply([put(nodeKey('n1'), node('n1', { listeners: 50, bandwidthKbps: 123 }))], '21');
  assert.equal(builder.snapshot(true).membershipSerial, s1, 'status update');
  assert.equal(builder.snapshot(true).nodes.get('n1')!.listeners, 50);

  builder.apply([put(mountKey('/a.mp3'), mount('/a.mp3'))], '22');
  assert.equal(builder.snapshot(true).membershipSerial, s1, 'mount change');

  builder.apply([put(nodeKey('n2'), node('n2'))], '23');
  const s2 = builder.snapshot(true).membershipSerial;
  assert.ok(s2 > s1, 'second join moves the serial forward');

  builder.apply([del(nodeKey('n1'))], '24');
  const s3 = builder.snapshot(true).membershipSerial;
  assert.ok(s3 > s2, 'leave');
  assert.deepEqual([...builder.snapshot(true).nodes.keys()], ['n2']);

  // Leave and join in one batch: the set differs, so the serial moves.
  builder.apply([del(nodeKey('n2')), put(nodeKey('n3'), node('n3'))], '25');
  const s4 = builder.snapshot(true).membershipSerial;
  assert.ok(s4 > s3);

  // A full re-read with the same members keeps the serial; with different members moves it.
  builder.reset([put(nodeKey('n3'), node('n3', { listeners: 9 }))], '30');
  assert.equal(builder.snapshot(true).membershipSerial, s4);
  builder.reset([put(nodeKey('n3'), node('n3')), put(nodeKey('n4'), node('n4'))], '31');
  assert.equal(builder.snapshot(true).membershipSerial, 31);
});

test('membershipSerial stays a nonzero 32-bit number for huge revisions', () => {
  const { builder } = recorder();
  builder.reset([], '1');
  builder.apply([put(nodeKey('n1'), node('n1'))], String(2n ** 32n));
  const serial = builder.snapshot(true).membershipSerial;
  assert.ok(serial >= 1 && serial < 2 ** 32, String(serial));
  builder.apply([del(nodeKey('n1'))], String(2n ** 32n + 7n));
  assert.equal(builder.snapshot(true).membershipSerial, 7);
});

test('the master is the candidate with the lowest create revision; deleting its key promotes the next', () => {
  const { builder } = recorder();
  builder.reset([], '1');
  const k1 = `${MASTER_ELECTION_PREFIX}aaaa`;
  const k2 = `${MASTER_ELECTION_PREFIX}bbbb`;
  const k3 = `${MASTER_ELECTION_PREFIX}0001`; // sorts first by name, but was created last
  builder.apply([put(k2, master('n2'), 50)], '50');
  builder.apply([put(k1, master('n1'), 40)], '51'); // created earlier (e.g. seen first after a resync)
  builder.apply([put(k3, master('n3'), 60)], '60');
  assert.equal(builder.snapshot(true).master?.name, 'n1');

  // A leader re-writing its value (proclaim) keeps its create revision and stays leader.
  builder.apply([put(k1, { ...master('n1'), icecastPort: 8001 }, 40)], '61');
  assert.deepEqual(builder.snapshot(true).master, { ...master('n1'), icecastPort: 8001 });

  assert.equal(builder.apply([del(k1)], '62'), true);
  assert.equal(builder.snapshot(true).master?.name, 'n2');
  builder.apply([del(k2)], '63');
  assert.equal(builder.snapshot(true).master?.name, 'n3');
  builder.apply([del(k3)], '64');
  assert.equal(builder.snapshot(true).master, undefined);
});

test('create revisions compare as numbers, not strings', () => {
  const { builder } = recorder();
  builder.reset(
    [put(`${MASTER_ELECTION_PREFIX}a`, master('late'), 100), put(`${MASTER_ELECTION_PREFIX}b`, master('early'), 99)],
    '100',
  );
  assert.equal(builder.snapshot(true).master?.name, 'early');
});

test('a leading candidate with a malformed value gives no master and is reported', () => {
  const { builder, invalid } = recorder();
  builder.reset(
    [put(`${MASTER_ELECTION_PREFIX}a`, 'not json', 5), put(`${MASTER_ELECTION_PREFIX}b`, master('n2'), 6)],
    '6',
  );
  assert.equal(builder.snapshot(true).master, undefined);
  assert.ok(invalid.some((i) => i.key === `${MASTER_ELECTION_PREFIX}a`));
  builder.apply([put(`${MASTER_ELECTION_PREFIX}a`, { name: 'n1' }, 5)], '7');
  assert.equal(builder.snapshot(true).master, undefined, 'missing fields');
  builder.apply([del(`${MASTER_ELECTION_PREFIX}a`)], '8');
  assert.equal(builder.snapshot(true).master?.name, 'n2');
});

test('a snapshot after a status-only change carries the same mounts map; a mount change a new one', () => {
  const b = new ClusterStateBuilder(() => {});
  b.reset([put(mountKey('/a.mp3'), mount('/a.mp3')), put(nodeKey('n1'), nodeStatus('n1'))], String(rev));
  const first = b.snapshot(true).mounts;
  b.apply([put(nodeKey('n1'), nodeStatus('n1', { listeners: 5 }))], String(rev));
  assert.equal(b.snapshot(true).mounts, first, 'a node status report does not change the mounts');
  b.apply([put(mountKey('/a.mp3'), '{broken')], String(rev));
  assert.equal(b.snapshot(true).mounts, first, 'an invalid mount value keeps the last valid one');
  b.apply([put(mountKey('/b.mp3'), mount('/b.mp3'))], String(rev));
  const second = b.snapshot(true).mounts;
  assert.notEqual(second, first);
  assert.deepEqual([...second.keys()], ['/a.mp3', '/b.mp3']);
  assert.deepEqual([...first.keys()], ['/a.mp3'], 'a map handed out is never changed afterwards');
  b.apply([del(mountKey('/b.mp3'))], String(rev));
  assert.notEqual(b.snapshot(true).mounts, second);
});

test('the membership serial keeps moving forward when etcd is replaced and its revision goes back', () => {
  const builder = new ClusterStateBuilder(() => {});
  const at = (r: number) => ({ type: 'put' as const, key: nodeKey(`n${r}`), value: JSON.stringify(nodeStatus(`n${r}`)), createRevision: String(r), modRevision: String(r) });
  builder.reset([at(5000)], '5000');
  builder.apply([at(5001)], '5001');
  const beforeReplacement = builder.snapshot(true).membershipSerial;
  assert.equal(beforeReplacement, 5001);
  // An empty etcd at the same address: revisions start again from 1.
  builder.reset([at(3)], '3');
  const afterReset = builder.snapshot(true).membershipSerial;
  assert.ok(afterReset > beforeReplacement, `serial ${afterReset} after ${beforeReplacement}`);
  builder.apply([at(4)], '4');
  const afterJoin = builder.snapshot(true).membershipSerial;
  assert.ok(afterJoin > afterReset, `serial ${afterJoin} after ${afterReset}`);
  // Once etcd's revisions are past the serial again, they are the serial again.
  builder.apply([at(9000)], '9000');
  assert.equal(builder.snapshot(true).membershipSerial, 9000);
});

test('a drain key marks the live node draining whatever it reported, survives its status rewrites, and goes with undrain', () => {
  const { builder } = recorder();
  builder.reset([put(nodeKey('a'), node('a')), put(nodeKey('b'), node('b')), put(drainKey('a'), { since: 'x', by: 'h' })], String(rev));
  let s = builder.snapshot(true);
  assert.equal(s.nodes.get('a')!.draining, true);
  assert.equal(s.nodes.get('b')!.draining, undefined);
  assert.deepEqual([...s.drained!], ['a']);
  // The node rewrites its status without the flag: the drain key still decides.
  assert.equal(builder.apply([put(nodeKey('a'), node('a', { listeners: 3 }))], String(rev)), true);
  assert.equal(builder.snapshot(true).nodes.get('a')!.draining, true);
  // A drained node that is not running is remembered, not listed as live.
  assert.equal(builder.apply([put(drainKey('gone'), {})], String(rev)), true);
  s = builder.snapshot(true);
  assert.equal(s.nodes.has('gone'), false);
  assert.deepEqual([...s.drained!].sort(), ['a', 'gone']);
  assert.equal(builder.apply([del(drainKey('a'))], String(rev)), true);
  assert.equal(builder.snapshot(true).nodes.get('a')!.draining, undefined);
});

test('forgotten markers are listed by name until deleted; a repeated put changes nothing', () => {
  const { builder } = recorder();
  builder.reset([put(nodeKey('a'), node('a')), put(forgottenKey('old'), { since: 'x', by: 'h' })], String(rev));
  assert.deepEqual([...builder.snapshot(true).forgotten!], ['old']);
  assert.equal(builder.apply([put(forgottenKey('old'), { since: 'y', by: 'h' })], String(rev)), false);
  assert.equal(builder.apply([del(forgottenKey('old'))], String(rev)), true);
  assert.deepEqual([...builder.snapshot(true).forgotten!], []);
});
