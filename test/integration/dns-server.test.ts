import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { createLogger } from '../../src/common/logger.js';
import { createMetrics } from '../../src/common/metrics.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import type { ClusterStateSource } from '../../src/coordination/cluster-view.js';
import { startDnsServer, type DnsServer } from '../../src/redirectord/dns/server.js';
import { waitFor } from '../support/wait.js';
import { nodeStatus, RecordingMetrics } from '../support/fixtures.js';

const run = promisify(execFile);
const DOMAIN = 'radio.example.org';

/** A ClusterStateSource whose membership the test changes by hand. */
class FakeSource implements ClusterStateSource {
  private readonly listeners = new Set<(s: ClusterState) => void>();
  private state: ClusterState;
  constructor(nodes: NodeStatus[]) {
    this.state = build(nodes, 1);
  }
  current(): ClusterState {
    return this.state;
  }
  onChange(l: (s: ClusterState) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  setNodes(nodes: NodeStatus[]): void {
    this.state = build(nodes, this.state.membershipSerial + 1);
    for (const l of this.listeners) l(this.state);
  }
}

function build(nodes: NodeStatus[], serial: number): ClusterState {
  return {
    mounts: new Map(),
    nodes: new Map(nodes.map((n) => [n.name, n])),
    master: undefined,
    revision: String(serial),
    connected: true,
    membershipSerial: serial,
  };
}

function node(name: string, addresses: string[]): NodeStatus {
  return nodeStatus(name, { addresses, maxListeners: 0 });
}

const baseNodes = [
  node('node1', ['10.1.0.1', '2001:db8:1::1']),
  node('node2', ['10.1.0.2']),
  node('node3', ['10.1.0.3']),
  node('node4', ['10.1.0.4']),
  node('node5', ['10.1.0.5']),
  node('node6', ['10.1.0.6']),
  // Many IPv6 addresses: the apex AAAA answer (33 records, 970 bytes) does not fit in 512.
  node('big1', Array.from({ length: 16 }, (_, i) => `2001:db8:2::${i + 1}`)),
  node('big2', Array.from({ length: 16 }, (_, i) => `2001:db8:3::${i + 1}`)),
];


let source: FakeSource;
let server: DnsServer;
const metrics = new RecordingMetrics();

before(async () => {
  source = new FakeSource(baseNodes);
  server = await startDnsServer({
    host: '127.0.0.1',
    port: 0,
    state: source,
    zone: { domain: DOMAIN, nameservers: ['node1', 'ns2.elsewhere.net'], ttl: 5 },
    log: createLogger('dns-test', 'warn'),
    metrics,
    tcpIdleTimeoutMs: 400,
    metricsIntervalMs: 50,
  });
});

after(async () => {
  await server?.close();
});

interface Dig {
  status: string;
  flags: string[];
  answer: string[][];
  authority: string[][];
  additional: string[][];
  question: string;
  udp?: number;
  raw: string;
}

async function dig(...args: string[]): Promise<Dig> {
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(server.udpPort),
    '+time=2',
    '+tries=1',
    '+norecurse',
    ...args,
  ]);
  return parseDig(stdout);
}

function parseDig(raw: string): Dig {
  const status = /status: ([A-Z]+)/.exec(raw)?.[1] ?? '';
  const flags = (/;; flags: ([a-z ]*);/.exec(raw)?.[1] ?? '').split(' ').filter(Boolean);
  const section = (name: string) => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(raw);
    return m ? m[1]!.split('\n').filter((l) => l && !l.startsWith(';')).map((l) => l.split(/\s+/)) : [];
  };
  const question = /;; QUESTION SECTION:\n;(\S+)/.exec(raw)?.[1] ?? '';
  const udp = /udp: (\d+)/.exec(raw)?.[1];
  return {
    status,
    flags,
    answer: section('ANSWER'),
    authority: section('AUTHORITY'),
    additional: section('ADDITIONAL'),
    question,
    udp: udp === undefined ? undefined : Number(udp),
    raw,
  };
}

const data = (rows: string[][]) => rows.map((r) => r[4]!);

test('apex A over UDP and TCP: authoritative, at most 5 live node addresses, TTL 5', async () => {
  for (const transport of ['+notcp', '+tcp']) {
    const d = await dig(transport, DOMAIN, 'A');
    assert.equal(d.status, 'NOERROR', d.raw);
    assert.ok(d.flags.includes('aa'), d.raw);
    assert.equal(d.answer.length, 5, d.raw);
    for (const r of d.answer) {
      assert.equal(r[1], '5');
      assert.equal(r[3], 'A');
      assert.match(r[4]!, /^10\.1\.0\.[1-6]$/);
    }
  }
});

test('node names, case-insensitive, echoing the question case', async () => {
  const d = await dig('NoDe1.RADIO.example.org', 'A');
  assert.equal(d.status, 'NOERROR');
  assert.ok(d.flags.includes('aa'));
  assert.equal(d.question, 'NoDe1.RADIO.example.org.');
  assert.deepEqual(d.answer.map((r) => [r[0], r[4]]), [['NoDe1.RADIO.example.org.', '10.1.0.1']]);
  const v6 = await dig('+tcp', 'node1.radio.example.org', 'AAAA');
  assert.deepEqual(data(v6.answer), ['2001:db8:1::1']);
});

test('NODATA, NXDOMAIN with SOA, REFUSED out of zone', async () => {
  const nodata = await dig('node2.radio.example.org', 'AAAA');
  assert.equal(nodata.status, 'NOERROR');
  assert.ok(nodata.flags.includes('aa'));
  assert.equal(nodata.answer.length, 0);
  assert.equal(nodata.authority[0]?.[3], 'SOA');
  const mx = await dig(DOMAIN, 'MX');
  assert.equal(mx.status, 'NOERROR');
  assert.equal(mx.authority[0]?.[3], 'SOA');
  const nx = await dig('+tcp', 'missing.radio.example.org', 'A');
  assert.equal(nx.status, 'NXDOMAIN');
  assert.ok(nx.flags.includes('aa'));
  assert.equal(nx.authority[0]?.[3], 'SOA');
  const refused = await dig('example.net', 'A');
  assert.equal(refused.status, 'REFUSED');
  assert.ok(!refused.flags.includes('aa'));
});

test('NS with glue for node nameservers, SOA fields', async () => {
  const ns = await dig(DOMAIN, 'NS');
  assert.ok(ns.flags.includes('aa'));
  assert.deepEqual(data(ns.answer).sort(), ['node1.radio.example.org.', 'ns2.elsewhere.net.']);
  assert.deepEqual(
    ns.additional.map((r) => `${r[0]} ${r[3]} ${r[4]}`),
    ['node1.radio.example.org. A 10.1.0.1', 'node1.radio.example.org. AAAA 2001:db8:1::1'],
  );
  const soa = await dig(DOMAIN, 'SOA');
  const f = soa.answer[0]!;
  assert.equal(f[3], 'SOA');
  assert.equal(f[4], 'node1.radio.example.org.');
  assert.equal(f[5], 'hostmaster.radio.example.org.');
  assert.equal(f[6], '1', 'serial = membership serial');
  assert.equal(f[10], '5', 'minimum = dns ttl');
});

test('EDNS: OPT echoed with udp 1232; TC over UDP when the answer does not fit; TCP fallback gets it all', async () => {
  const edns = await dig('+bufsize=4096', DOMAIN, 'A');
  assert.equal(edns.udp, 1232);
  const plain = await dig('+noedns', DOMAIN, 'A');
  assert.equal(plain.udp, undefined);

  const cut = await dig('+ignore', '+bufsize=512', DOMAIN, 'AAAA');
  assert.ok(cut.flags.includes('tc'), cut.raw);
  assert.ok(cut.flags.includes('aa'), cut.raw);
  assert.equal(cut.answer.length, 0);
  assert.equal(cut.udp, 1232);
  const cutPlain = await dig('+ignore', '+noedns', DOMAIN, 'AAAA');
  assert.ok(cutPlain.flags.includes('tc'), cutPlain.raw);
  const fits = await dig('+ignore', '+bufsize=1232', DOMAIN, 'AAAA');
  assert.ok(!fits.flags.includes('tc'));
  assert.equal(fits.answer.length, 33);
  // Without +ignore dig retries over TCP and gets the whole answer.
  const retried = await dig('+bufsize=512', DOMAIN, 'AAAA');
  assert.ok(!retried.flags.includes('tc'));
  assert.equal(retried.answer.length, 33);
  assert.match(retried.raw, /\(TCP\)/);
});

test('membership changes: serial moves, apex and node names follow', async () => {
  const serial = async () => Number((await dig(DOMAIN, 'SOA')).answer[0]![6]);
  const before = await serial();
  source.setNodes([...baseNodes.slice(0, 2), node('node9', ['10.1.0.9'])]);
  assert.equal(await serial(), before + 1);
  const apex = await dig(DOMAIN, 'A');
  assert.deepEqual(data(apex.answer).sort(), ['10.1.0.1', '10.1.0.2', '10.1.0.9']);
  assert.deepEqual(data((await dig('node9.radio.example.org', 'A')).answer), ['10.1.0.9']);
  assert.equal((await dig('node5.radio.example.org', 'A')).status, 'NXDOMAIN');
  source.setNodes(baseNodes);
  assert.equal(await serial(), before + 2);
  assert.equal((await dig('node9.radio.example.org', 'A')).status, 'NXDOMAIN');
});

test('TCP: several queries on one connection, idle connections closed', async () => {
  const opened = server.counters().tcpConnections;
  const { stdout } = await run('dig', [
    '@127.0.0.1',
    '-p',
    String(server.tcpPort),
    '+tcp',
    '+keepopen',
    '+time=2',
    '+tries=1',
    DOMAIN,
    'SOA',
    'node1.radio.example.org',
    'A',
    'node2.radio.example.org',
    'A',
  ]);
  assert.equal(stdout.match(/status: NOERROR/g)?.length, 3, stdout);
  assert.equal(server.counters().tcpConnections - opened, 1);

  const sock = connect(server.tcpPort, '127.0.0.1');
  const closedAt = new Promise<number>((resolve) => sock.on('close', () => resolve(Date.now())));
  sock.on('error', () => {});
  const start = Date.now();
  await waitFor('idle connection closed', async () => sock.destroyed || sock.readyState === 'closed', {
    timeoutMs: 5000,
  });
  const elapsed = (await closedAt) - start;
  assert.ok(elapsed >= 300 && elapsed < 3000, `closed after ${elapsed} ms`);
});

test('counters and statsd names by query type and rcode', async () => {
  await dig('nowhere.radio.example.org', 'TXT');
  const c = server.counters();
  assert.ok((c.queries.A ?? 0) > 5);
  assert.ok((c.queries.TXT ?? 0) >= 1);
  assert.ok((c.rcodes.NXDOMAIN ?? 0) >= 1);
  assert.ok((c.rcodes.REFUSED ?? 0) >= 1);
  await waitFor('metrics flushed', () => (metrics.counts.get('dns.query.TXT') ?? 0) >= 1);
  assert.ok((metrics.counts.get('dns.query.A') ?? 0) > 5);
  assert.ok((metrics.counts.get('dns.rcode.NOERROR') ?? 0) > 5);
  assert.ok((metrics.counts.get('dns.rcode.NXDOMAIN') ?? 0) >= 1);
});

test('binds IPv6 addresses too', async () => {
  const v6 = await startDnsServer({
    host: '::1',
    port: 0,
    state: source,
    zone: { domain: DOMAIN, nameservers: ['node1'], ttl: 5 },
    log: createLogger('dns-test', 'warn'),
    metrics: createMetrics(undefined, 'redirectord', 'test', () => {}),
  });
  try {
    for (const transport of ['+notcp', '+tcp']) {
      const { stdout } = await run('dig', ['@::1', '-p', String(v6.udpPort), transport, '+time=2', '+tries=1', DOMAIN, 'SOA']);
      const d = parseDig(stdout);
      assert.equal(d.status, 'NOERROR');
      assert.ok(d.flags.includes('aa'));
    }
  } finally {
    await v6.close();
  }
});
