import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Etcd3 } from 'etcd3';
import { etcdPerFile, type TestEtcd } from '../support/etcd.js';
import { connectEtcd } from '../../src/coordination/client.js';
import { KeptLease } from '../../src/coordination/lease.js';
import { fencingBudget } from '../../src/coordination/fencing-budget.js';
import { Deposition } from '../../src/coordination/deposition.js';
import { DEPOSED_PREFIX, ELECTION_ROOT, SUSPICIONS_PREFIX } from '../../src/coordination/keys.js';

let etcd: TestEtcd;
let direct: Etcd3;
etcdPerFile((e, c) => {
  etcd = e;
  direct = c;
});

/** A TCP hop to etcd that can refuse everything for a while (an etcd outage seen from one node). */
async function cuttableHop(target: string): Promise<{ url: string; cut: (on: boolean) => void; close: () => void }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const server = createServer((client) => {
    if (cut) return void client.destroy();
    const upstream = connect({ host: hostname, port: Number(port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {}).on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    cut: (on) => {
      cut = on;
      if (on) for (const s of sockets) s.destroy();
    },
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

async function waitFor(what: string, deadlineMs: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a suspicion whose withdrawal failed is withdrawn at a later try, not left to count towards a deposition', async () => {
  const log = pino({ level: 'silent' });
  const lease = new KeptLease(direct, fencingBudget(10), log);
  lease.start();
  const hop = await cuttableHop(etcd.url);
  const viaHop = connectEtcd({ etcdUrls: [hop.url] });
  try {
    await waitFor('the lease confirmed', 5000, async () => lease.confirmed);
    const deposition = new Deposition(viaHop, { nodeName: 'b', lease, log });
    const leaderKey = 'autoradio/election/master/abc123';
    const own = `${SUSPICIONS_PREFIX}abc123/b`;
    assert.equal(await deposition.suspect(leaderKey, 'a', new Set(['a', 'b', 'c'])), 'waiting for a majority');
    assert.equal(await direct.get(own).string() !== null, true);

    hop.cut(true);
    await deposition.withdraw();
    assert.notEqual(await direct.get(own).string(), null, 'the injected failure kept the suspicion');
    hop.cut(false);

    // The watch withdraws at every healthy probe (every 200 ms): one of these must remove it.
    await waitFor('the stale suspicion withdrawn', 8000, async () => {
      await deposition.withdraw();
      return (await direct.get(own).string()) === null;
    });
  } finally {
    viaHop.close();
    hop.close();
    await lease.stop();
  }
});

test('a deposition marker whose cleanup failed is removed later, so later elections do not all wait out a takeover', async () => {
  const log = pino({ level: 'silent' });
  const lease = new KeptLease(direct, fencingBudget(10), log);
  lease.start();
  const hop = await cuttableHop(etcd.url);
  const viaHop = connectEtcd({ etcdUrls: [hop.url] });
  const leaderLease = direct.lease(30, { autoKeepAlive: false });
  try {
    await waitFor('the lease confirmed', 5000, async () => lease.confirmed);
    const hex = BigInt(await leaderLease.grant()).toString(16);
    const leaderKey = `${ELECTION_ROOT}master/${hex}`;
    await leaderLease.put(leaderKey).value('a');
    await direct.put(`${SUSPICIONS_PREFIX}${hex}/c`).value('{}');
    const deposition = new Deposition(viaHop, { nodeName: 'b', lease, log });
    assert.equal(await deposition.suspect(leaderKey, 'a', new Set(['a', 'b', 'c'])), 'deposed');
    const marker = `${DEPOSED_PREFIX}${hex}`;
    assert.notEqual(await direct.get(marker).string(), null);

    // etcd unreachable from here when the marker's cleanup is due (3 s after the revocation).
    hop.cut(true);
    await new Promise((r) => setTimeout(r, 4000));
    assert.notEqual(await direct.get(marker).string(), null, 'the injected failure kept the marker');
    hop.cut(false);
    await waitFor('the stale marker removed', 8000, async () => (await direct.get(marker).string()) === null);
  } finally {
    viaHop.close();
    hop.close();
    await lease.stop();
    await direct.delete().prefix(SUSPICIONS_PREFIX);
  }
});
