import { test } from 'node:test';
import assert from 'node:assert/strict';
import { masterReportOf, parseMasterReport, type MasterReport } from '../../src/coordination/master-report.js';
import { choosePeerMaster, masterToFollow } from '../../src/coordination/peer-master-choice.js';
import { waitFor } from '../support/wait.js';
import { makeApp, node, state } from '../support/http-fixtures.js';
import { lookupOfN1, SettableView } from '../support/peer-master-fixtures.js';

/** The cut node's last view: n1 (itself) master, n2 and n3 live. */
const n1 = node('n1', { addresses: ['10.0.0.1'], icecastPort: 8000 });
const n2 = node('n2', { addresses: ['10.0.0.2', '2001:db8::2'], icecastPort: 8000 });
const n3 = node('n3', { addresses: ['10.0.0.3'], icecastPort: 8000 });
const cutView = state([n1, n2, n3], [], { connected: false, revision: '100' });

function report(over: Partial<MasterReport> = {}): MasterReport {
  return { node: 'n2', connected: true, revision: '120', master: { name: 'n2', addresses: ['10.0.0.2'], icecastPort: 8000 }, ...over };
}

test('peers in touch with etcd are believed, the freshest view wins', () => {
  const chosen = choosePeerMaster(
    [
      { asked: 'n2', report: report({ revision: '120' }) },
      { asked: 'n3', report: report({ node: 'n3', revision: '130', master: { name: 'n3', addresses: ['10.0.0.3'], icecastPort: 8000 } }) },
    ],
    cutView,
  );
  assert.equal(chosen?.master?.name, 'n3');
  assert.equal(chosen?.from, 'n3');
  assert.equal(chosen?.revision, 130n);
  // Revisions are 64-bit: compared as integers, never as text or doubles.
  const big = choosePeerMaster(
    [
      { asked: 'n2', report: report({ revision: '9007199254740993' }) },
      { asked: 'n3', report: report({ node: 'n3', revision: '9007199254740992', master: null }) },
    ],
    cutView,
  );
  assert.equal(big?.from, 'n2');
});

test('a peer that is cut from etcd too, or answers for another node, is not believed', () => {
  assert.equal(choosePeerMaster([{ asked: 'n2', report: report({ connected: false }) }], cutView), undefined);
  assert.equal(choosePeerMaster([{ asked: 'n2', report: report({ node: 'n3' }) }], cutView), undefined);
  // A node the last view never listed is not a peer.
  assert.equal(choosePeerMaster([{ asked: 'n9', report: report({ node: 'n9' }) }], cutView), undefined);
});

test("source credentials only ever go to a node etcd listed, at an address and port etcd gave for it", () => {
  const claims = [
    { name: 'n9', addresses: ['10.0.0.9'], icecastPort: 8000 },
    { name: 'n2', addresses: ['203.0.113.66'], icecastPort: 8000 },
    { name: 'n2', addresses: ['10.0.0.2', '203.0.113.66'], icecastPort: 8000 },
    { name: 'n2', addresses: ['10.0.0.2'], icecastPort: 2222 },
  ];
  for (const master of claims) {
    assert.equal(choosePeerMaster([{ asked: 'n2', report: report({ master }) }], cutView), undefined, JSON.stringify(master));
  }
  const v6 = choosePeerMaster([{ asked: 'n2', report: report({ master: { name: 'n2', addresses: ['2001:db8::2'], icecastPort: 8000 } }) }], cutView);
  assert.deepEqual(v6?.master?.addresses, ['2001:db8::2']);
});

test('peers knowing of no master are believed: the source is held rather than sent to the fenced Icecast', () => {
  const chosen = choosePeerMaster([{ asked: 'n2', report: report({ master: null }) }], cutView);
  assert.ok(chosen);
  assert.equal(chosen.master, undefined);
  assert.equal(masterToFollow(cutView, chosen), undefined);
});

test("etcd's word stands while the own view is in touch with it; the peers' only while it is cut", () => {
  const fromPeers = choosePeerMaster([{ asked: 'n2', report: report() }], cutView);
  assert.equal(masterToFollow(cutView, fromPeers)?.name, 'n2');
  assert.equal(masterToFollow(cutView, undefined)?.name, 'n1', 'no peer answered: the last known master');
  assert.equal(masterToFollow({ ...cutView, connected: true }, fromPeers)?.name, 'n1');
});

test('a report survives its own round trip, and anything else is refused with the reason', () => {
  const r = masterReportOf(state([n2], [], { revision: '77' }), 'n2');
  assert.deepEqual(parseMasterReport(JSON.stringify(r)), { node: 'n2', connected: true, revision: '77', master: { name: 'n2', addresses: ['10.0.0.2', '2001:db8::2'], icecastPort: 8000 } });
  assert.deepEqual(parseMasterReport(JSON.stringify(masterReportOf(state([], [], { master: undefined }), 'n2'))).master, null);
  const bad = [
    'not json',
    '{}',
    JSON.stringify({ ...r, revision: 12 }),
    JSON.stringify({ ...r, revision: '-1' }),
    JSON.stringify({ ...r, revision: '1'.repeat(21) }),
    JSON.stringify({ ...r, connected: 'yes' }),
    JSON.stringify({ ...r, master: { name: 'n2', addresses: [], icecastPort: 8000 } }),
    JSON.stringify({ ...r, master: { name: 'n2', addresses: ['10.0.0.2'], icecastPort: 70000 } }),
    JSON.stringify({ ...r, master: { name: 'n2', addresses: ['10.0.0.2'] } }),
  ];
  for (const body of bad) assert.throws(() => parseMasterReport(body), /^Error: master report: /, body);
});

test('GET /_master tells what the view holds, and nothing secret', async () => {
  const { app } = await makeApp(state([n1, n2], [], { icecastAdminPassword: 'hush-admin' }), { nodeName: 'n2' });
  const res = await app.inject({ method: 'GET', url: '/_master' });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  assert.equal(res.headers['cache-control'], 'no-store');
  assert.ok(!res.body.includes('hush-admin'));
  assert.deepEqual(parseMasterReport(res.body), { node: 'n2', connected: true, revision: '10', master: { name: 'n1', addresses: ['10.0.0.1'], icecastPort: 8000 } });
  await app.close();
});

test('the lookup asks only while the own view is cut, follows what peers say, and lets go when etcd answers', async () => {
  const view = new SettableView({ ...cutView, connected: true });
  const asked: string[] = [];
  let answer: (address: string) => string = () => JSON.stringify(report());
  const lookup = lookupOfN1(view, {
    ownAddress: '10.0.0.1',
    ask: async (address, port) => {
      asked.push(`${address}:${port}`);
      return answer(address);
    },
  });
  let changes = 0;
  lookup.onChange(() => changes++);
  lookup.start();
  try {
    await new Promise((r) => setImmediate(r));
    assert.equal(asked.length, 0, 'nothing asked while etcd answers');
    view.set(cutView);
    await waitFor('following n2', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 10 });
    assert.ok(asked.includes('10.0.0.2:80') && asked.includes('10.0.0.3:80'), asked.join(' '));
    assert.ok(!asked.some((a) => a.startsWith('10.0.0.1')), 'never asks itself');
    assert.equal(changes, 1);
    // The peers move on to another master: the lookup follows.
    answer = () => JSON.stringify(report({ revision: '140', master: { name: 'n3', addresses: ['10.0.0.3'], icecastPort: 8000 } }));
    await waitFor('following n3', () => lookup.current()?.master?.name === 'n3', { timeoutMs: 3000, intervalMs: 10 });
    assert.equal(changes, 2);
    view.set({ ...cutView, connected: true });
    assert.equal(lookup.current(), undefined, "etcd's word again");
    assert.equal(changes, 3);
    const count = asked.length;
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(asked.length - count <= 2, 'at most the round that was out when etcd came back');
  } finally {
    lookup.stop();
  }
});

test('peers that stop answering are followed for a while, then the own last view stands again', async () => {
  const view = new SettableView(cutView);
  let up = true;
  const lookup = lookupOfN1(view, {
    ownAddress: '10.0.0.1',
    ask: async (address) => {
      if (!up) throw new Error('timeout');
      // One peer answers garbage all along: it never counts.
      return address === '10.0.0.3' ? '{"node":' : JSON.stringify(report());
    },
  });
  lookup.start();
  try {
    await waitFor('following n2', () => lookup.current()?.master?.name === 'n2', { timeoutMs: 3000, intervalMs: 10 });
    up = false;
    const lostAt = Date.now();
    await waitFor('back to the own view', () => lookup.current() === undefined, { timeoutMs: 6000, intervalMs: 20 });
    assert.ok(Date.now() - lostAt >= 2000, `let go after ${Date.now() - lostAt} ms: a lost round or two is no reason`);
  } finally {
    lookup.stop();
  }
});
