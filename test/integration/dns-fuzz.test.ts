import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import packet from 'dns-packet';
import { createLogger } from '../../src/common/logger.js';
import { createMetrics } from '../../src/common/metrics.js';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import { startDnsServer } from '../../src/redirectord/dns/server.js';
import { waitFor } from '../support/wait.js';
import { nodeStatus, seededRandom } from '../support/fixtures.js';

const run = promisify(execFile);
const DOMAIN = 'fuzz.example.org';
const SEED = Number(process.env.DNS_FUZZ_SEED ?? Date.now() % 1_000_000);

const random = seededRandom(SEED);
const int = (n: number) => Math.floor(random() * n);
const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));

function node(i: number): NodeStatus {
  return nodeStatus(`node${i}`, {
    addresses: [`10.2.0.${i}`, `2001:db8:4::${i}`],
    icecastOk: i % 3 !== 0,
    listeners: i * 7,
    maxListeners: 40,
  });
}

const state: ClusterState = {
  mounts: new Map(),
  nodes: new Map(Array.from({ length: 9 }, (_, i) => [`node${i + 1}`, node(i + 1)] as const)),
  master: undefined,
  revision: '1',
  connected: true,
  membershipSerial: 3,
};

const TYPES = ['A', 'AAAA', 'NS', 'SOA', 'MX', 'TXT', 'ANY', 'CAA', 'SRV', 'PTR'] as packet.RecordType[];
const NAMES = [DOMAIN, `node1.${DOMAIN}`, `NODE4.${DOMAIN.toUpperCase()}`, `x.y.${DOMAIN}`, 'example.com', '', 'a.b.c.d.e.f'];

function validQuery(): Buffer {
  const edns = random() < 0.5;
  return packet.encode({
    type: 'query',
    id: int(65536),
    flags: int(2) ? packet.RECURSION_DESIRED : 0,
    questions: [{ name: NAMES[int(NAMES.length)]!, type: TYPES[int(TYPES.length)]!, class: 'IN' }],
    additionals: edns
      ? [{ type: 'OPT', name: '.', udpPayloadSize: int(70000) & 0xffff, flags: int(2) ? packet.DNSSEC_OK : 0 } as packet.Answer]
      : [],
  });
}

/** Header + question whose name is a compression pointer chain that loops back on itself. */
function compressionLoop(): Buffer {
  const head = Buffer.from([int(256), int(256), 0, 0, 0, 1, 0, int(3), 0, 0, 0, int(3)]);
  const variants = [
    [0xc0, 12, 0, 1, 0, 1],
    [3, 0x61, 0x62, 0x63, 0xc0, 12, 0, 1, 0, 1],
    [0xc0, 14, 0xc0, 12, 0, 1, 0, 1],
    [1, 0x61, 0, 0, 1, 0, 1, 0xc0, 0x1d, 0, 1, 0, 1, 0, 0, 0, 5, 0, 0],
  ];
  return Buffer.concat([head, Buffer.from(variants[int(variants.length)]!), bytes(int(8))]);
}

function mutate(): Buffer {
  const base = validQuery();
  switch (int(7)) {
    case 0: {
      for (let i = 1 + int(8); i > 0; i--) base[int(base.length)]! ^= 1 << int(8);
      return base;
    }
    case 1:
      return base.subarray(0, int(base.length));
    case 2:
      return Buffer.concat([base, bytes(1 + int(600))]);
    case 3:
      return compressionLoop();
    case 4: {
      // Section counts that promise far more records than the packet holds.
      base.writeUInt16BE(int(65536), 4 + 2 * int(4));
      return base;
    }
    case 5:
      return bytes(int(700));
    default: {
      // Oversized label lengths and reserved label types.
      base[12] = [0x40, 0x80, 0x3f, 0xff][int(4)]!;
      return base;
    }
  }
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

const server = await startDnsServer({
  host: '127.0.0.1',
  port: 0,
  state: { current: () => state, onChange: () => () => {} },
  zone: { domain: DOMAIN, nameservers: ['node1', 'node2'], ttl: 5 },
  log: createLogger('dns-fuzz', 'fatal'),
  metrics: createMetrics(undefined, 'redirectord', 'fuzz', () => {}),
  tcpIdleTimeoutMs: 500,
  // All fuzz clients come from 127.0.0.1, 20 at a time: room for them, so every input is parsed.
  maxTcpConnectionsPerClient: 32,
});
after(() => server.close());

async function digWorks(transport: string): Promise<boolean> {
  const { stdout } = await run('dig', ['@127.0.0.1', '-p', String(server.udpPort), transport, '+time=2', '+tries=2', DOMAIN, 'A']);
  return /status: NOERROR/.test(stdout) && / aa[ ;]/.test(stdout) && /\tA\t10\.2\.0\.\d/.test(stdout);
}

async function udpFuzz(count: number): Promise<number> {
  const sock = createSocket('udp4');
  let answers = 0;
  sock.on('message', (msg) => {
    answers++;
    // Whatever we sent, an answer must itself be a well-formed response.
    assert.ok(msg.length >= 12 && (msg[2]! & 0x80) !== 0);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  for (let i = 0; i < count; i++) {
    const msg = i % 5 === 0 ? validQuery() : mutate();
    await new Promise<void>((resolve) => sock.send(msg, server.udpPort, '127.0.0.1', () => resolve()));
    // Give the server a turn now and then so the socket buffers do not just overflow.
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 1));
  }
  await waitFor('UDP answers to settle', () => answers > count / 10, { timeoutMs: 5000 });
  sock.close();
  return answers;
}

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length & 0xffff);
  return Buffer.concat([len, msg]);
}

/** One TCP client doing something odd; resolves when its connection is gone. */
function tcpClient(kind: number): Promise<void> {
  return new Promise((resolve) => {
    const sock = connect(server.tcpPort, '127.0.0.1');
    sock.on('error', () => {});
    sock.on('data', () => {});
    sock.on('close', () => resolve());
    sock.on('connect', () => {
      switch (kind) {
        case 0: // many framed queries, valid and mutated, pipelined, then half-close
          sock.end(Buffer.concat(Array.from({ length: 20 }, () => frame(int(2) ? validQuery() : mutate()))));
          break;
        case 1: // raw random stream
          sock.end(bytes(int(3000)));
          break;
        case 2: // length prefix promising more than ever arrives, then abort
          sock.write(Buffer.concat([Buffer.from([0xff, 0xff]), bytes(100)]));
          setTimeout(() => sock.destroy(), int(20));
          break;
        case 3: // a query split into single bytes
          for (const b of frame(validQuery())) sock.write(Buffer.from([b]));
          sock.end();
          break;
        case 4: // zero-length frames and a partial frame; the idle timeout must close it
          sock.write(Buffer.concat([frame(Buffer.alloc(0)), frame(validQuery()), Buffer.from([0, 40, 1, 2])]));
          break;
        default: // connect and vanish
          sock.destroy();
      }
    });
  });
}

test(`fuzzing UDP and TCP does not crash, leak or wedge the server (seed ${SEED})`, { timeout: 30_000 }, async () => {
  assert.ok(await digWorks('+notcp'));
  // Warm up so the baseline includes the JIT and caches.
  await udpFuzz(300);
  const rssBefore = process.memoryUsage().rss;
  const fdsBefore = fdCount();
  const t0 = Date.now();

  const answers = await udpFuzz(6000);
  assert.ok(answers > 600, `only ${answers} UDP answers`);

  for (let batch = 0; batch < 15; batch++) {
    await Promise.all(Array.from({ length: 20 }, () => tcpClient(int(6))));
  }
  await waitFor('all TCP connections closed', () => server.counters().tcpConnectionsOpen === 0, { timeoutMs: 5000 });

  assert.ok(await digWorks('+notcp'), 'UDP still answers');
  assert.ok(await digWorks('+tcp'), 'TCP still answers');
  const c = server.counters();
  assert.equal(c.errors, 0, 'no packet made the responder throw');
  assert.ok((c.rcodes.FORMERR ?? 0) > 100, `FORMERR ${c.rcodes.FORMERR}`);
  assert.ok(c.dropped > 10, `dropped ${c.dropped}`);
  assert.ok(c.tcpConnections >= 300);

  const growthMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
  assert.ok(growthMb < 64, `RSS grew by ${growthMb.toFixed(1)} MB`);
  assert.ok(fdCount() <= fdsBefore + 5, `fds ${fdsBefore} -> ${fdCount()}`);
  assert.ok(Date.now() - t0 < 25_000);
});
