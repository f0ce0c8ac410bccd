import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';
import { connectEtcd } from '../../src/coordination/client.js';
import { Elector } from '../../src/coordination/elector.js';
import { Deposition } from '../../src/coordination/deposition.js';
import { fencingBudget } from '../../src/coordination/fencing-budget.js';
import { DEPOSED_PREFIX, MASTER_ELECTION_PREFIX, SUSPICIONS_PREFIX, candidateLeaseHex } from '../../src/coordination/keys.js';
import type { Campaign } from '../../src/coordination/election.js';
import { waitFor } from '../support/wait.js';

/**
 * Deposition with a real etcd: suspicions, the majority, the marker, the revocation, and the
 * successor's wait. Three processes' worth of electors in one: A leads, B is next, C votes.
 */
let etcd: TestEtcd;
let admin: Etcd3;
etcdPerFile((e, c) => {
  etcd = e;
  admin = c;
});

const TTL = 4;
const log = pino({ level: 'silent' });
const LIVE = new Set(['a', 'b', 'c']);

interface Contender {
  name: string;
  client: Etcd3;
  elector: Elector;
  campaign: Campaign;
  deposition: Deposition;
  electedAt: number[];
}

async function contender(name: string, prefix = `${MASTER_ELECTION_PREFIX}`): Promise<Contender> {
  const client = connectEtcd({ etcdUrls: [etcd.url] });
  const elector = new Elector(client, { ttlSeconds: TTL, log });
  elector.start();
  await once(elector.lease, 'granted');
  const campaign = elector.campaign(prefix, JSON.stringify({ name, addresses: ['192.0.2.1'], icecastPort: 8000 }), log);
  const electedAt: number[] = [];
  campaign.on('elected', () => electedAt.push(performance.now()));
  campaign.start();
  return { name, client, elector, campaign, deposition: new Deposition(client, { nodeName: name, lease: elector.lease, log }), electedAt };
}

async function stop(...cs: Contender[]): Promise<void> {
  for (const c of cs) {
    await c.elector.stop().catch(() => {});
    c.client.close();
  }
}

async function leaderKey(prefix = MASTER_ELECTION_PREFIX): Promise<string> {
  const res = await admin.getAll().prefix(prefix).exec();
  const first = [...res.kvs].sort((x, y) => Number(BigInt(x.create_revision) - BigInt(y.create_revision)))[0];
  assert.ok(first, 'a candidate');
  return first.key.toString();
}

/** A leads; B and C queue behind it. */
async function threeContenders(): Promise<[Contender, Contender, Contender]> {
  const a = await contender('a');
  await waitFor('a leads', () => a.campaign.isLeader);
  return [a, await contender('b'), await contender('c')];
}

/** After a deposition at `t0`: the deposed `old` steps down, then `next` leads, no earlier than its takeover wait. */
async function orderlyTakeover(old: Contender, next: Contender, t0: number): Promise<void> {
  await waitFor(`${old.name} steps down`, () => !old.campaign.isLeader, { timeoutMs: 3000, intervalMs: 10 });
  const oldDown = performance.now();
  await waitFor(`${next.name} leads`, () => next.campaign.isLeader, { timeoutMs: 8000, intervalMs: 10 });
  const nextUp = next.electedAt.at(-1)!;
  const wait = fencingBudget(TTL).takeoverWaitMs;
  assert.ok(nextUp - t0 >= wait - 50, `${next.name} led ${Math.round(nextUp - t0)} ms after the deposition; it must wait ${wait} ms`);
  assert.ok(oldDown < nextUp, `${old.name} stepped down before ${next.name} led`);
}

test('a majority deposes the leader; the next one leads only after the deposed one fenced itself', async () => {
  const [a, b, c] = await threeContenders();
  try {
    const key = await leaderKey();
    // One voice is not a majority of three.
    assert.equal(await b.deposition.suspect(key, 'a', LIVE), 'waiting for a majority');
    assert.ok(a.campaign.isLeader);
    // A suspicion from a node that is not live does not count either.
    assert.equal(await b.deposition.suspect(key, 'a', new Set(['a', 'b', 'x', 'y', 'z'])), 'waiting for a majority');
    const t0 = performance.now();
    assert.equal(await c.deposition.suspect(key, 'a', LIVE), 'deposed');
    // A's lease is gone on the server: its keepalives fail and it steps down within its window.
    await orderlyTakeover(a, b, t0);
    // The marker goes away by itself, so later elections wait for nothing.
    await waitFor('marker removed', async () => (await admin.getAll().prefix(DEPOSED_PREFIX).keys()).length === 0, { timeoutMs: 6000 });
    // A second deposition of a lease already gone changes nothing.
    assert.equal(await c.deposition.suspect(key, 'a', LIVE), 'already gone');
  } finally {
    await stop(a, b, c);
  }
});

test('without a marker (the leader resigned) the next candidate leads at once', async () => {
  const a = await contender('a');
  await waitFor('a leads', () => a.campaign.isLeader);
  const b = await contender('b');
  try {
    const t0 = performance.now();
    await a.campaign.stop();
    await waitFor('b leads', () => b.campaign.isLeader, { timeoutMs: 3000, intervalMs: 5 });
    assert.ok(performance.now() - t0 < 1000, `b led ${Math.round(performance.now() - t0)} ms after a resigned`);
    assert.equal(b.campaign.takingOver, false);
  } finally {
    await stop(a, b);
  }
});

test("a restarted node revokes its predecessor's lease: its candidacies vanish and the next one waits as after a deposition", async () => {
  const old = await contender('a');
  await waitFor('a leads', () => old.campaign.isLeader);
  const b = await contender('b');
  // The predecessor "dies": it stops sending keepalives without revoking anything.
  const oldLease = old.elector.lease.id!;
  const successor = await contender('a2');
  try {
    const t0 = performance.now();
    assert.equal(await successor.deposition.revokePredecessor(oldLease), true);
    assert.equal((await admin.getAll().prefix(`${MASTER_ELECTION_PREFIX}${BigInt(oldLease).toString(16)}`).keys()).length, 0);
    await waitFor('b leads', () => b.campaign.isLeader, { timeoutMs: 5000, intervalMs: 10 });
    assert.ok(b.electedAt.at(-1)! - t0 >= fencingBudget(TTL).takeoverWaitMs - 50);
    // Revoking a lease that is long gone is harmless.
    assert.equal(await successor.deposition.revokePredecessor(oldLease), false);
  } finally {
    await stop(old, b, successor);
  }
});

test('a deposer killed between the marker transaction and the revoke: the next suspicion completes the deposition safely', async () => {
  const [a, b, c] = await threeContenders();
  try {
    const key = await leaderKey();
    assert.equal(await b.deposition.suspect(key, 'a', LIVE), 'waiting for a majority');
    // C counts the majority and commits the marker as Deposition does, then is killed -9 before
    // it revokes: its lease (suspicion and marker) lives on until it expires.
    await c.deposition.suspect(key, 'a', new Set(['a', 'b', 'c', 'x', 'y']));
    const cLease = c.elector.lease.handle!;
    const marker = `${DEPOSED_PREFIX}${candidateLeaseHex(key)}`;
    const txn = await admin.if(key, 'Version', '>', 0).then(cLease.put(marker).value(JSON.stringify({ by: 'c', leader: 'a' }))).commit();
    assert.ok(txn.succeeded);
    c.client.close();
    // Nothing was revoked: the leader still leads, and nobody else does.
    await waitFor('a view with the marker', async () => (await admin.getAll().prefix(DEPOSED_PREFIX).keys()).length === 1);
    assert.ok(a.campaign.isLeader, 'the leader leads on: its lease was not revoked');
    assert.equal(b.campaign.isLeader, false);
    // B's next failed probe re-counts: C's suspicion still counts, so B deposes.
    const t0 = performance.now();
    assert.equal(await b.deposition.suspect(key, 'a', LIVE), 'deposed');
    await orderlyTakeover(a, b, t0);
    // B takes its suspicion back once the master changed (as MasterWatch does); the dead
    // deposer's keys go with its lease; the marker B rewrote is removed by B.
    await b.deposition.withdraw();
    await waitFor('no marker or suspicion left', async () => {
      const left = [...(await admin.getAll().prefix(DEPOSED_PREFIX).keys()), ...(await admin.getAll().prefix(SUSPICIONS_PREFIX).keys())];
      return left.length === 0;
    }, { timeoutMs: (TTL + 6) * 1000 });
  } finally {
    await stop(a, b, c);
  }
});
