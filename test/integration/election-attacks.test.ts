import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Etcd3 } from 'etcd3';
import { pino } from 'pino';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';
import { waitFor } from '../support/wait.js';
import { startBlackholeProxy } from '../support/blackhole-proxy.js';
import { connectEtcd } from '../../src/coordination/client.js';
import { Elector } from '../../src/coordination/elector.js';
import type { Campaign } from '../../src/coordination/election.js';
import { ELECTION_ROOT, MASTER_ELECTION_PREFIX, TRANSCODER_ELECTION_ROOT, transcoderElectionPrefix } from '../../src/coordination/keys.js';

// Hostile but cheap attacks on one process's Elector against a real etcd: junk written by hand
// under the election root, bursts of transcoding mounts, quick resign-and-campaign, a lease
// revoked under many candidacies.

const TTL = 4;
let etcd: TestEtcd;
let admin: Etcd3;

etcdPerFile((e, c) => {
  etcd = e;
  admin = c;
});

async function withElector(fn: (elector: Elector) => Promise<void>, url = etcd.url, ttlSeconds = TTL): Promise<void> {
  const client = connectEtcd({ etcdUrls: [url] });
  const elector = new Elector(client, { ttlSeconds, log: pino({ level: 'silent' }) });
  elector.start();
  try {
    await fn(elector);
  } finally {
    await elector.stop();
    client.close();
  }
}

async function keysUnder(prefix: string): Promise<string[]> {
  return Object.keys(await admin.getAll().prefix(prefix).strings());
}

test('junk keys and values under the election root neither crash nor confuse a node', async () => {
  const junk = [
    `${ELECTION_ROOT}`,
    `${ELECTION_ROOT}x`,
    `${ELECTION_ROOT}transcoder/`,
    `${TRANSCODER_ELECTION_ROOT}no-candidate-segment/`,
    `${TRANSCODER_ELECTION_ROOT}junk.mp3/zz-not-hex`,
    `${TRANSCODER_ELECTION_ROOT}${'a/'.repeat(50)}deadbeef`,
    `${MASTER_ELECTION_PREFIX}nested/deadbeef`,
  ];
  for (const k of junk) await admin.put(k).value('\u0000not json{');
  await admin.put(Buffer.from([...Buffer.from(TRANSCODER_ELECTION_ROOT), 0xff, 0xfe, 0x2f, 0x80])).value(Buffer.from([0xc3]));
  await withElector(async (elector) => {
    const paths = ['/junk2.mp3', `/${'s/'.repeat(40)}deep.mp3`, '/a//b.ogg'];
    const campaigns = paths.map((p) => elector.campaign(transcoderElectionPrefix(p), '{}'));
    for (const c of campaigns) c.start();
    await waitFor('every election with junk around it led', () => campaigns.every((c) => c.isLeader), { timeoutMs: 10_000 });
    // Junk written while campaigns run, including in our own elections (never as a lower create
    // revision: ours came first), must not depose anyone.
    for (const c of campaigns) await admin.put(`${c.prefix}junk/x`).value('junk');
    for (const c of campaigns) await admin.put(`${c.prefix}fffffffffff`).value('not a lease of ours');
    await admin.put(`${ELECTION_ROOT}late-junk`).value('');
    const rev = (await admin.get('/autoradio/v1/none').exec()).header.revision;
    await waitFor('the view caught up with the junk', () => (elector as unknown as { view: { revision: bigint } }).view.revision >= BigInt(rev), { timeoutMs: 5_000 });
    assert.ok(campaigns.every((c) => c.isLeader), 'junk deposed a leader');
  });
  await admin.delete().prefix(ELECTION_ROOT).exec();
});

test('100 transcoding mounts started and stopped in bursts: one key each while alive, no orphans after', async () => {
  await withElector(async (elector) => {
    for (let round = 0; round < 3; round++) {
      const campaigns: Campaign[] = [];
      for (let i = 0; i < 100; i++) {
        const c = elector.campaign(transcoderElectionPrefix(`/burst/r${round}/m${i}.mp3`), '{}');
        c.start();
        campaigns.push(c);
      }
      await waitFor(`round ${round}: all 100 lead`, () => campaigns.every((c) => c.isLeader), { timeoutMs: 20_000 });
      const keys = await keysUnder(TRANSCODER_ELECTION_ROOT);
      assert.equal(keys.length, 100, `round ${round}: ${keys.length} candidate keys for 100 mounts`);
      await Promise.all(campaigns.map((c) => c.stop()));
      assert.deepEqual(await keysUnder(TRANSCODER_ELECTION_ROOT), [], `round ${round}: keys left after stop`);
      assert.ok(campaigns.every((c) => !c.isLeader));
    }
  });
});

test('resign then campaign at once, 30 rounds: the new candidacy always ends up placed and leading', async () => {
  await withElector(async (elector) => {
    const prefix = transcoderElectionPrefix('/flap.mp3');
    let c = elector.campaign(prefix, '{}');
    c.start();
    for (let round = 0; round < 30; round++) {
      if (round % 2 === 0) await waitFor(`round ${round}: leads`, () => c.isLeader, { timeoutMs: 5_000 });
      const stopping = c.stop(); // not awaited: the next candidacy starts while the delete is in flight
      c = elector.campaign(prefix, '{}');
      c.start();
      await stopping;
    }
    const last = c;
    await waitFor('the last candidacy leads', () => last.isLeader, { timeoutMs: 5_000 });
    assert.equal((await keysUnder(prefix)).length, 1, 'exactly one key for one live candidacy');
  });
});

test('a lease revoked under 20 candidacies: all re-campaign on the new lease, none leads on the dead one', async () => {
  await withElector(async (elector) => {
    const campaigns = [elector.campaign(MASTER_ELECTION_PREFIX, '{}')];
    for (let i = 0; i < 19; i++) campaigns.push(elector.campaign(transcoderElectionPrefix(`/lost/m${i}.mp3`), '{}'));
    for (const c of campaigns) c.start();
    await waitFor('all lead', () => campaigns.every((c) => c.isLeader), { timeoutMs: 10_000 });
    const dead = elector.lease.id!;
    const ledOnDeadLease: string[] = [];
    for (const c of campaigns) c.on('elected', () => elector.lease.id === dead && ledOnDeadLease.push(c.prefix));
    await admin.leaseClient.leaseRevoke({ ID: dead });
    await waitFor('a new lease', () => elector.lease.id !== undefined && elector.lease.id !== dead, { timeoutMs: 10_000 });
    await waitFor('all lead again', () => campaigns.every((c) => c.isLeader), { timeoutMs: 10_000 });
    const hex = BigInt(elector.lease.id!).toString(16);
    const keys = await keysUnder(ELECTION_ROOT);
    assert.equal(keys.length, 20, `candidate keys: ${keys.length}`);
    assert.ok(keys.every((k) => k.endsWith(`/${hex}`)), `a key on another lease: ${keys.join(' ')}`);
    assert.deepEqual(ledOnDeadLease, []);
  });
});

test('stop() with the create in flight and etcd blackholed leaves no orphan key once etcd answers again', async () => {
  const target = new URL(etcd.url);
  const proxy = await startBlackholeProxy({ host: target.hostname, port: Number(target.port) });
  try {
    // A TTL long enough that the lease outlives each outage: the key must go by the delete, not by expiry.
    await withElector(async (elector) => {
      const anchor = elector.campaign(MASTER_ELECTION_PREFIX, '{}');
      anchor.start();
      await waitFor('anchor leads', () => anchor.isLeader, { timeoutMs: 10_000 });
      const lease = elector.lease.id;
      for (let round = 0; round < 4; round++) {
        const prefix = transcoderElectionPrefix(`/inflight/r${round}.mp3`);
        const c = elector.campaign(prefix, '{}');
        // Even rounds: the request reaches etcd and the answer is swallowed; odd: nothing passes.
        if (round % 2 === 0) proxy.blackholeAfter(1);
        else proxy.blackhole();
        c.start();
        await waitFor('create in flight', () => (c as unknown as { registration: { kind: string } }).registration.kind === 'creating', { timeoutMs: 2_000 });
        await c.stop();
        // Bytes dropped mid-stream leave the HTTP/2 connection unusable: heal as a partition
        // would after TCP gave up, with reset connections and fresh ones.
        proxy.cut();
        proxy.restore();
        await waitFor(`round ${round}: no key left`, async () => (await keysUnder(prefix)).length === 0, { timeoutMs: 10_000 });
        assert.equal(elector.lease.id, lease, 'the lease was lost: the attack proved nothing');
        await waitFor('anchor leads again', () => anchor.isLeader, { timeoutMs: 10_000 });
      }
    }, proxy.url, 20);
  } finally {
    await proxy.close();
  }
});
