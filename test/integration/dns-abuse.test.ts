import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import packet from 'dns-packet';
import { createLogger } from '../../src/common/logger.js';
import { createMetrics } from '../../src/common/metrics.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import { startDnsServer, type DnsServer } from '../../src/redirectord/dns/server.js';
import { Etcd3 } from 'etcd3';
import { nodeStatus } from '../support/fixtures.js';
import { startEtcd } from '../support/etcd.js';
import { assertAlive, assertBuilt, nodeStatus as harnessNode, publishNode, startRedirectord } from './hardening-harness.js';
import { sendRawUdp } from '../support/raw-udp.js';
import { waitFor } from '../support/wait.js';

/**
 * Transport-level abuse of the real DNS server (UDP and TCP, IPv4 and IPv6): spoofed source
 * port 0, truncated and 1-byte datagrams, TCP queries in 1-2 byte fragments, half-closes,
 * clients that never read, one host holding connections. The server must answer everybody
 * else afterwards, and its fds and memory must come back to where they were.
 */

const run = promisify(execFile);
const DOMAIN = 'abuse.example.org';
const state: ClusterState = {
  mounts: new Map(),
  nodes: new Map([['n1', nodeStatus('n1', { addresses: ['10.9.0.1', '2001:db8:9::1'] })]]),
  master: undefined,
  revision: '1',
  connected: true,
  membershipSerial: 1,
};

async function start(host: string, over: { maxTcpConnections?: number; tcpIdleTimeoutMs?: number } = {}): Promise<DnsServer> {
  const s = await startDnsServer({
    host,
    port: 0,
    state: { current: () => state, onChange: () => () => {} },
    zone: { domain: DOMAIN, nameservers: ['n1'], ttl: 5 },
    log: createLogger('dns-abuse', 'fatal'),
    metrics: createMetrics(undefined, 'redirectord', 'abuse', () => {}),
    tcpIdleTimeoutMs: over.tcpIdleTimeoutMs ?? 2000,
    maxTcpConnections: over.maxTcpConnections,
  });
  after(() => s.close());
  return s;
}

const v4 = await start('127.0.0.1');
const v6 = await start('::1');

function query(id = 7): Buffer {
  return packet.encode({ type: 'query', id, flags: packet.RECURSION_DESIRED, questions: [{ name: DOMAIN, type: 'A', class: 'IN' }] });
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

async function digWorks(server: DnsServer, at: string, transport: '+notcp' | '+tcp'): Promise<boolean> {
  const { stdout } = await run('dig', [`@${at}`, '-p', String(server.udpPort), transport, '+time=2', '+tries=2', DOMAIN, 'A']);
  return /status: NOERROR/.test(stdout) && /\tA\t10\.9\.0\.1/.test(stdout);
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** One TCP query from `localAddress`, answered or not within the deadline. */
function tcpQuery(server: DnsServer, host: string, localAddress?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port: server.tcpPort, host, localAddress });
    const timer = setTimeout(() => finish(false), 3000);
    let got = Buffer.alloc(0);
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
    sock.on('data', (c: Buffer) => {
      got = Buffer.concat([got, c]);
      if (got.length >= 2 && got.length >= 2 + got.readUInt16BE(0)) finish(true);
    });
    sock.on('connect', () => sock.write(frame(query())));
  });
}

function openIdle(server: DnsServer, host: string, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port: server.tcpPort, host, localAddress });
    sock.once('error', reject);
    sock.once('connect', () => {
      sock.on('error', () => {});
      resolve(sock);
    });
  });
}

test('UDP from source port 0, truncated and 1-byte datagrams: nothing throws, everybody else is answered', { timeout: 60_000 }, async (t) => {
  assert.ok(await digWorks(v4, '127.0.0.1', '+notcp'));
  assert.ok(await digWorks(v6, '::1', '+notcp'));
  const fds0 = fdCount();
  const rss0 = process.memoryUsage().rss;
  const q = query();
  const payloads = [q, q.subarray(0, 1), q.subarray(0, 11), q.subarray(0, 12), q.subarray(0, q.length - 3), Buffer.alloc(0)];
  let tried = 0;
  for (const [server, family, address] of [[v4, 4, '127.0.0.1'], [v6, 6, '::1']] as const) {
    const dropped0 = server.counters().dropped;
    // Well-formed queries from port 0 first: each must be counted as dropped, none answered.
    tried += await sendRawUdp({ family, address, port: server.udpPort, sourcePort: 0, payloads: Array.from({ length: 20 }, () => q) });
    await waitFor(`IPv${family} port-0 queries dropped`, () => server.counters().dropped - dropped0 === 20, { timeoutMs: 5000 });
    const rounds = Array.from({ length: 20 }, () => payloads).flat();
    tried += await sendRawUdp({ family, address, port: server.udpPort, sourcePort: 0, payloads: rounds });
    // And the same shapes from an ordinary port, which get answers where the packet allows.
    tried += await sendRawUdp({ family, address, port: server.udpPort, sourcePort: 40_000, payloads: rounds });
    await waitFor(`IPv${family} malformed datagrams counted`, () => server.counters().dropped - dropped0 >= 40 + 20 * 4);
    assert.ok(await digWorks(server, address, '+notcp'), `IPv${family} UDP still answers`);
    assert.ok(await digWorks(server, address, '+tcp'), `IPv${family} TCP still answers`);
  }
  t.diagnostic(`${tried} datagrams tried`);
  assert.equal(tried, 2 * (20 + 2 * 20 * payloads.length));
  assert.ok(fdCount() <= fds0 + 2, `fds ${fds0} -> ${fdCount()}`);
  assert.ok(process.memoryUsage().rss - rss0 < 32 * 1024 * 1024);
});

test('TCP in 1-2 byte fragments, half-closes and clients that never read all end, and the fds come back', { timeout: 60_000 }, async (t) => {
  const fds0 = fdCount();
  let tried = 0;
  // Each client resolves once it has sent everything; the server must then close every one of
  // them by itself (answered half-closes at once, the rest by the idle timeout).
  const sent: Promise<Socket>[] = [];
  for (const [server, host] of [[v4, '127.0.0.1'], [v6, '::1']] as const) {
    for (let i = 0; i < 6; i++) {
      tried++;
      sent.push(
        new Promise<Socket>((resolve) => {
          const sock = connect(server.tcpPort, host);
          sock.on('error', () => {});
          sock.on('connect', async () => {
            const bytes = Buffer.concat([frame(query(i)), frame(query(i + 100))]);
            const step = 1 + (i % 2);
            for (let off = 0; off < bytes.length; off += step) {
              sock.write(bytes.subarray(off, off + step));
              await new Promise((r) => setImmediate(r));
            }
            if (i % 3 === 0) {
              sock.resume();
              sock.end(); // half-close: the answers still come, then the server closes
            } else if (i % 3 === 2) {
              sock.resume();
              sock.write(Buffer.from([0, 50, 1])); // a partial frame, then silence
            } // else: never reads
            resolve(sock);
          });
        }),
      );
    }
    // A client that never reads a flood of answers: the server stops reading instead of buffering.
    tried++;
    sent.push(
      new Promise<Socket>((resolve) => {
        const sock = connect(server.tcpPort, host);
        sock.on('error', () => {});
        sock.on('connect', () => {
          sock.write(Buffer.concat(Array.from({ length: 2000 }, (_, k) => frame(query(k)))));
          resolve(sock);
        });
      }),
    );
  }
  const clients = await Promise.all(sent);
  await waitFor('the server closed every TCP connection', () => v4.counters().tcpConnectionsOpen + v6.counters().tcpConnectionsOpen === 0);
  for (const c of clients) c.destroy();
  t.diagnostic(`${tried} TCP clients tried`);
  assert.ok(await digWorks(v4, '127.0.0.1', '+tcp'));
  assert.ok(await digWorks(v6, '::1', '+tcp'));
  await waitFor('fds back to baseline', () => fdCount() <= fds0 + 2);
  assert.equal(v4.counters().errors + v6.counters().errors, 0);
});

test('one host holding TCP connections cannot lock other resolvers out (per-address cap)', { timeout: 60_000 }, async (t) => {
  const server = await start('127.0.0.1', { tcpIdleTimeoutMs: 30_000 });
  const held: Socket[] = [];
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    try {
      const s = await openIdle(server, '127.0.0.1', '127.0.0.66');
      held.push(s);
      s.on('close', () => refused++);
    } catch {
      refused++;
    }
  }
  await waitFor('the hog holds only its share', () => server.counters().tcpConnectionsOpen <= 8 && server.counters().tcpRefused >= 292);
  t.diagnostic(`300 connections from one address: ${server.counters().tcpConnectionsOpen} kept`);
  assert.ok(await tcpQuery(server, '127.0.0.1', '127.0.0.67'), 'another resolver is answered');
  for (const s of held) s.destroy();
});

test('when the table is full the idlest connection is closed, not the newcomer refused', { timeout: 60_000 }, async () => {
  const server = await start('127.0.0.1', { maxTcpConnections: 16, tcpIdleTimeoutMs: 30_000 });
  const idle: Socket[] = [];
  for (let i = 0; i < 16; i++) idle.push(await openIdle(server, '127.0.0.1', `127.0.1.${i + 1}`));
  await waitFor('16 connections open', () => server.counters().tcpConnectionsOpen === 16);
  const firstClosed = new Promise<void>((resolve) => idle[0]!.on('close', () => resolve()));
  assert.ok(await tcpQuery(server, '127.0.0.1', '127.0.2.1'), 'the newcomer is answered');
  await firstClosed;
  assert.ok(server.counters().tcpEvicted >= 1);
  for (const s of idle) s.destroy();
});

test('the real redirectord survives spoofed port-0 queries on its DNS port', { timeout: 90_000 }, async (t) => {
  assertBuilt();
  const etcd = await startEtcd();
  const client = new Etcd3({ hosts: etcd.url });
  t.after(async () => {
    client.close();
    await etcd.stop();
  });
  await publishNode(client, harnessNode('n1', 8000));
  const d = await startRedirectord({ etcdUrls: etcd.url, icecastPort: 8000 });
  t.after(() => d.stop());
  const q = packet.encode({ type: 'query', id: 9, questions: [{ name: 'radio.test', type: 'A', class: 'IN' }] });
  const sent = await sendRawUdp({ family: 4, address: '127.0.0.1', port: d.dnsPort, sourcePort: 0, payloads: Array.from({ length: 50 }, () => q) });
  t.diagnostic(`${sent} port-0 queries sent to redirectord`);
  // Answered from an ordinary port afterwards: the process handled (and survived) the 50 before.
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(d.dnsPort), '+time=2', '+tries=2', 'radio.test', 'A']);
  assert.match(stdout, /status: NOERROR/);
  assertAlive(d);
  const health = await fetch(`http://127.0.0.1:${d.httpPort}/status.json`);
  assert.equal(health.status, 200);
});
