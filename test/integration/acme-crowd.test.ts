import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { connectEtcd } from '../../src/coordination/client.js';
import type { EtcdFlags } from '../../src/common/flags.js';
import { createLogger, loggerTo } from '../../src/common/logger.js';
import { ClusterView } from '../../src/coordination/cluster-view.js';
import { Elector } from '../../src/coordination/elector.js';
import { ACME_BACKOFF_KEY, ACME_CERTIFICATE_KEY } from '../../src/coordination/keys.js';
import { parseStoredCertificate } from '../../src/coordination/acme.js';
import { startDnsServer } from '../../src/redirectord/dns/server.js';
import { AcmeOrderer } from '../../src/redirectord/tls/acme-orderer.js';
import { trustAcmeCa } from '../../src/redirectord/tls/acme-order.js';
import { startEtcd } from '../support/etcd.js';
import { RecordingMetrics } from '../support/fixtures.js';
import { startPebble } from '../support/pebble.js';
import { makeTestCa } from '../support/tls.js';
import { waitFor } from '../support/wait.js';

/**
 * 50 nodes start at once with ACME configured (each its own Elector and AcmeOrderer on real
 * etcd, sharing one view and one DNS server in this process): one order reaches the CA (pebble,
 * validating for real), the other 49 only wait, and a new orderer after the first one stops
 * finds the certificate in etcd and orders nothing. And an order the CA cannot validate is
 * retried after a wait that doubles.
 */

const DOMAIN = 'radio.test';
const NODES = 50;

test(`${NODES} nodes starting at once make one ACME order`, { timeout: 90_000 }, async (t) => {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const etcd = await startEtcd();
  const client = connectEtcd({ etcdUrls: [etcd.url] } as EtcdFlags);
  const log = createLogger('acme-crowd', 'warn');
  const view = new ClusterView(client, log);
  await view.start();
  const dns = await startDnsServer({ host: '127.0.0.1', port: 0, state: view, zone: { domain: DOMAIN, nameservers: ['n0'], ttl: 5 }, log, metrics: new RecordingMetrics() });
  const pebble = await startPebble(t, ca, { dnsPort: dns.udpPort, validitySeconds: 3600 });
  trustAcmeCa(await readFile(ca.caFile, 'utf8'));

  // Each node its own etcd connection, as each redirectord has.
  const nodes = Array.from({ length: NODES }, (_, i) => {
    const own = connectEtcd({ etcdUrls: [etcd.url] } as EtcdFlags);
    const elector = new Elector(own, { ttlSeconds: 5, log });
    const metrics = new RecordingMetrics();
    const orderer = new AcmeOrderer({ directory: pebble.directory, domain: DOMAIN, nodeName: `n${i}`, client: own, elector, view, log, metrics, propagationMs: 200 });
    return { elector, orderer, metrics, client: own, running: true };
  });
  t.after(async () => {
    await Promise.all(nodes.filter((n) => n.running).map(async (n) => (await n.orderer.stop(), await n.elector.stop())));
    for (const n of nodes) n.client.close();
    await dns.close();
    await view.stop();
    client.close();
    await etcd.stop();
  });
  for (const n of nodes) (n.elector.start(), n.orderer.start());

  const counted = () => [...nodes.flatMap((n) => [...n.metrics.counts.entries()])].filter(([k]) => k.startsWith('acme.orders'));
  await waitFor('the certificate in etcd', async () => (await client.get(ACME_CERTIFICATE_KEY).string()) !== null, { timeoutMs: 40_000, intervalMs: 100 });
  const settled = () => {
    const kinds = nodes.filter((n) => n.running).map((n) => n.orderer.stateKind);
    return kinds.filter((k) => k === 'waiting').length === 1 && kinds.filter((k) => k === 'following').length === kinds.length - 1;
  };
  await waitFor('one orderer waiting for the renewal, the others following', settled, { timeoutMs: 10_000 });
  const first = counted();
  t.diagnostic(`orders counted: ${JSON.stringify(first)}`);
  assert.equal(first.reduce((s, [, v]) => s + v, 0), 1, 'exactly one order finished in the whole cluster');
  assert.match(first[0]![0], /issued/);

  // The orderer leaves: the next one finds a good certificate and waits for its renewal time.
  const leader = nodes.find((n) => n.orderer.stateKind === 'waiting')!;
  const stored = parseStoredCertificate((await client.get(ACME_CERTIFICATE_KEY).string())!);
  await leader.orderer.stop();
  await leader.elector.stop();
  leader.running = false;
  await waitFor('a new orderer waiting', settled, { timeoutMs: 15_000 });
  assert.equal(counted().reduce((s, [, v]) => s + v, 0), 1, 'the new orderer ordered nothing');
  assert.equal(parseStoredCertificate((await client.get(ACME_CERTIFICATE_KEY).string())!).cert, stored.cert);
});

test('a failing order is retried with a doubling wait', { timeout: 90_000 }, async (t) => {
  const ca = await makeTestCa();
  t.after(() => ca.remove());
  const etcd = await startEtcd();
  const client = connectEtcd({ etcdUrls: [etcd.url] } as EtcdFlags);
  const lines: string[] = [];
  const log = loggerTo('acme-backoff', 'info', { write: (l: string) => void lines.push(l) });
  const view = new ClusterView(client, log);
  await view.start();
  // pebble asks a DNS server of another zone: it refuses, so every validation fails at once.
  const dns = await startDnsServer({ host: '127.0.0.1', port: 0, state: view, zone: { domain: 'elsewhere.test', nameservers: ['n0'], ttl: 5 }, log, metrics: new RecordingMetrics() });
  const pebble = await startPebble(t, ca, { dnsPort: dns.udpPort, validitySeconds: 3600 });
  trustAcmeCa(await readFile(ca.caFile, 'utf8'));
  const elector = new Elector(client, { ttlSeconds: 5, log });
  const metrics = new RecordingMetrics();
  const orderer = new AcmeOrderer({ directory: pebble.directory, domain: DOMAIN, nodeName: 'n0', client, elector, view, log, metrics, propagationMs: 0, retryFirstMs: 1500 });
  t.after(async () => {
    await orderer.stop();
    await elector.stop();
    await dns.close();
    await view.stop();
    client.close();
    await etcd.stop();
  });
  elector.start();
  orderer.start();
  const failedAt = () => lines.filter((l) => l.includes('ACME order failed')).map((l) => (JSON.parse(l) as { time: number | string }).time).map((v) => new Date(v).getTime());
  await waitFor('three failed orders', () => failedAt().length >= 3, { timeoutMs: 40_000, intervalMs: 100 }).catch((err: Error) => {
    throw new Error(`${err.message}\n${lines.slice(-10).join('\n')}`);
  });
  const [a, b, c] = failedAt() as [number, number, number];
  t.diagnostic(`failures at +0, +${b - a} ms, +${c - a} ms`);
  assert.ok(b - a >= 1500, `second attempt ${b - a} ms after the first failure`);
  assert.ok(c - b >= 3000, `third attempt ${c - b} ms after the second failure`);
  assert.ok(metrics.count('acme.orders.failed') >= 3);
  assert.equal(metrics.count('acme.orders.issued'), 0);
  assert.equal(await client.get(ACME_CERTIFICATE_KEY).string(), null);
  assert.deepEqual(Object.keys(await client.getAll().prefix('/autoradio/v1/acme/challenge/').strings()), [], 'no challenge values left behind');

  // The backoff belongs to the cluster: an orderer that takes over keeps counting.
  const stored = JSON.parse((await client.get(ACME_BACKOFF_KEY).string()) ?? '{}') as { failures?: number };
  assert.ok((stored.failures ?? 0) >= 3, `stored backoff ${JSON.stringify(stored)}`);
  await orderer.stop();
  await elector.stop();
  const nextLines: string[] = [];
  const nextLog = loggerTo('acme-backoff-next', 'info', { write: (l: string) => void nextLines.push(l) });
  const nextElector = new Elector(client, { ttlSeconds: 5, log: nextLog });
  const next = new AcmeOrderer({ directory: pebble.directory, domain: DOMAIN, nodeName: 'n1', client, elector: nextElector, view, log: nextLog, metrics, propagationMs: 0, retryFirstMs: 1500 });
  t.after(async () => {
    await next.stop();
    await nextElector.stop();
  });
  nextElector.start();
  next.start();
  const waiting = await waitFor('the next orderer waits', () => nextLines.find((l) => l.includes('ACME orderer waiting')), { timeoutMs: 20_000, intervalMs: 50 });
  assert.match(waiting, new RegExp(`backing off after ${stored.failures} failed order`), 'the takeover keeps the cluster backoff');
  assert.ok(!nextLines.some((l) => l.includes('ordering the cluster certificate')), 'the takeover did not order at once');
});
