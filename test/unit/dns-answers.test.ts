import { test } from 'node:test';
import assert from 'node:assert/strict';
import packet from 'dns-packet';
import type { ClusterState } from '../../src/coordination/cluster-state.js';
import type { NodeStatus } from '../../src/coordination/node-status.js';
import {
  answerQuery,
  QTYPE,
  RCODE,
  type DnsAnswer,
  type DnsRecord,
  type Question,
  type ZoneConfig,
} from '../../src/redirectord/dns/answers.js';
import { apexCandidates, weightedSample } from '../../src/redirectord/dns/apex-selection.js';
import { decodeQuery, ipBytes } from '../../src/redirectord/dns/codec.js';
import { DnsResponder } from '../../src/redirectord/dns/responder.js';
import { nodeStatus, seededRandom } from '../support/fixtures.js';

const ZONE: ZoneConfig = { domain: 'Radio.Example.org.', nameservers: ['node1', 'ns.other.net', 'gone'], ttl: 5 };
const APEX = 'radio.example.org';

function node(name: string, addresses: string[], extra: Partial<NodeStatus> = {}): NodeStatus {
  return nodeStatus(name, { addresses, maxListeners: 0, ...extra });
}

function state(nodes: NodeStatus[], membershipSerial = 17): ClusterState {
  return {
    mounts: new Map(),
    nodes: new Map(nodes.map((n) => [n.name, n])),
    master: undefined,
    revision: '1',
    connected: true,
    membershipSerial,
  };
}


function q(name: string, qtype: number, extra: Partial<Question> = {}): Question {
  return { qnameLower: name.toLowerCase(), qtype, qclass: 1, opcode: 0, ...extra };
}

function addresses(a: DnsAnswer): string[] {
  return a.answer.map((r) => (r.type === 'A' || r.type === 'AAAA' ? r.address : '?'));
}

function soaOf(records: DnsRecord[]): Extract<DnsRecord, { type: 'SOA' }> {
  const soa = records.find((r) => r.type === 'SOA');
  assert.ok(soa && soa.type === 'SOA', 'expected a SOA record');
  return soa;
}

const many = Array.from({ length: 8 }, (_, i) => node(`node${i + 1}`, [`10.0.0.${i + 1}`]));

test('apex A answers at most 5 live nodes, authoritative, with the configured TTL', () => {
  const a = answerQuery(q(APEX, QTYPE.A), state(many), ZONE, seededRandom(1));
  assert.equal(a.rcode, RCODE.NOERROR);
  assert.equal(a.aa, true);
  assert.equal(a.answer.length, 5);
  assert.equal(new Set(addresses(a)).size, 5);
  for (const r of a.answer) {
    assert.equal(r.ttl, 5);
    assert.equal(r.name, APEX);
  }
  const custom = answerQuery(q(APEX, QTYPE.A), state(many), { ...ZONE, ttl: 30 }, seededRandom(1));
  assert.ok(custom.answer.every((r) => r.ttl === 30));
});

test('apex A is shuffled: different queries see different sets and orders', () => {
  const rnd = seededRandom(2);
  const seen = new Set<string>();
  const firsts = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const a = addresses(answerQuery(q(APEX, QTYPE.A), state(many), ZONE, rnd));
    seen.add(a.join(','));
    firsts.add(a[0]!);
  }
  assert.ok(seen.size > 50, `only ${seen.size} distinct answers`);
  assert.equal(firsts.size, 8, 'every node should lead some answer');
  // With 3 nodes every answer holds all of them, in varying order.
  const three = many.slice(0, 3);
  const orders = new Set<string>();
  for (let i = 0; i < 100; i++) orders.add(addresses(answerQuery(q(APEX, QTYPE.A), state(three), ZONE, rnd)).join(','));
  assert.equal(orders.size, 6);
});

test('apex A never names an unhealthy node, not even when no node is healthy (NODATA then)', () => {
  const nodes = [
    node('a', ['10.0.0.1'], { icecastOk: false }),
    node('b', ['10.0.0.2']),
    node('c', ['10.0.0.3'], { icecastOk: false }),
  ];
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(addresses(answerQuery(q(APEX, QTYPE.A), state(nodes), ZONE, seededRandom(i))), ['10.0.0.2']);
  }
  const sick = nodes.map((n) => ({ ...n, icecastOk: false }));
  const a = answerQuery(q(APEX, QTYPE.A), state(sick), ZONE, seededRandom(3));
  assert.deepEqual(addresses(a), []);
  assert.equal(a.rcode, RCODE.NOERROR);
  assert.equal(a.authority[0]?.type, 'SOA', 'NODATA carries the SOA for the negative TTL');
});

test('apex A/AAAA never names a draining node or one whose report is stale', () => {
  const nodes = [
    node('drained', ['10.0.0.1', '2001:db8::1'], { draining: true, reportedAt: 100_000 }),
    node('stale', ['10.0.0.2', '2001:db8::2'], { reportedAt: 100_000 - 46_000 }),
    node('slightlyBehind', ['10.0.0.3', '2001:db8::3'], { reportedAt: 100_000 - 20_000 }),
    node('fresh', ['10.0.0.4', '2001:db8::4'], { reportedAt: 100_000 }),
  ];
  for (let i = 0; i < 50; i++) {
    assert.deepEqual(addresses(answerQuery(q(APEX, QTYPE.A), state(nodes), ZONE, seededRandom(i))).sort(), ['10.0.0.3', '10.0.0.4']);
    assert.deepEqual(addresses(answerQuery(q(APEX, QTYPE.AAAA), state(nodes), ZONE, seededRandom(i))).sort(), [
      '2001:db8::3',
      '2001:db8::4',
    ]);
  }
});

test('apex A prefers spare capacity; full nodes only when nothing else is left', () => {
  const nodes = [
    node('full', ['10.0.0.1'], { listeners: 100, maxListeners: 100 }),
    node('over', ['10.0.0.2'], { listeners: 150, maxListeners: 100 }),
    node('spare', ['10.0.0.3'], { listeners: 10, maxListeners: 100 }),
  ];
  for (let i = 0; i < 20; i++) {
    assert.deepEqual(addresses(answerQuery(q(APEX, QTYPE.A), state(nodes), ZONE, seededRandom(i))), ['10.0.0.3']);
  }
  const allFull = nodes.slice(0, 2);
  assert.deepEqual(addresses(answerQuery(q(APEX, QTYPE.A), state(allFull), ZONE, seededRandom(4))).sort(), [
    '10.0.0.1',
    '10.0.0.2',
  ]);
  // Weighted: among 10 nodes (5 drawn), a nearly full node is drawn far less often than empty ones.
  const ten = Array.from({ length: 10 }, (_, i) =>
    node(`n${i}`, [`10.0.1.${i}`], { listeners: i === 0 ? 99 : 0, maxListeners: 100 }),
  );
  const rnd = seededRandom(5);
  let busy = 0;
  let idle = 0;
  for (let i = 0; i < 2000; i++) {
    const a = addresses(answerQuery(q(APEX, QTYPE.A), state(ten), ZONE, rnd));
    if (a.includes('10.0.1.0')) busy++;
    if (a.includes('10.0.1.1')) idle++;
  }
  assert.ok(busy * 10 < idle, `nearly full node drawn ${busy} times vs idle ${idle}`);
});

test('apex selection helpers: candidate weights and sampling without replacement', () => {
  const c = apexCandidates(
    [
      node('u', ['10.0.0.1']),
      node('h', ['10.0.0.2'], { listeners: 50, maxListeners: 100 }),
      node('v6only', ['2001:db8::9']),
    ],
    4,
  );
  assert.deepEqual(
    c.map((x) => [x.node.name, x.weight]),
    [
      ['u', 1],
      ['h', 0.5],
    ],
  );
  const items = Array.from({ length: 7 }, (_, i) => ({ node: i, weight: i + 1 }));
  const s = weightedSample(items, 5, seededRandom(9));
  assert.equal(s.length, 5);
  assert.equal(new Set(s).size, 5);
  assert.deepEqual(weightedSample(items, 10, seededRandom(9)).sort(), [0, 1, 2, 3, 4, 5, 6]);
  assert.deepEqual(weightedSample([], 5, seededRandom(9)), []);
});

test('apex AAAA only names nodes with IPv6; NODATA when there are none', () => {
  const nodes = [node('v4', ['10.0.0.1']), node('dual', ['10.0.0.2', '2001:db8::2', '2001:db8::3'])];
  const a = answerQuery(q(APEX, QTYPE.AAAA), state(nodes), ZONE, seededRandom(1));
  assert.deepEqual(addresses(a), ['2001:db8::2', '2001:db8::3']);
  assert.ok(a.answer.every((r) => r.type === 'AAAA'));
  const none = answerQuery(q(APEX, QTYPE.AAAA), state([nodes[0]!]), ZONE, seededRandom(1));
  assert.equal(none.rcode, RCODE.NOERROR);
  assert.equal(none.aa, true);
  assert.equal(none.answer.length, 0);
  soaOf(none.authority);
});

test('apex with no live node at all: NODATA, not an error', () => {
  const a = answerQuery(q(APEX, QTYPE.A), state([]), ZONE, seededRandom(1));
  assert.equal(a.rcode, RCODE.NOERROR);
  assert.equal(a.answer.length, 0);
  soaOf(a.authority);
});

test('<node>.DOMAIN answers that node only; names are case-insensitive', () => {
  const nodes = [node('Node1', ['10.0.0.1', '2001:db8::1']), node('node2', ['10.0.0.2'], { icecastOk: false })];
  const s = state(nodes);
  const a = answerQuery(q('NODE1.radio.EXAMPLE.org', QTYPE.A), s, ZONE, seededRandom(1));
  assert.equal(a.aa, true);
  assert.deepEqual(addresses(a), ['10.0.0.1']);
  assert.equal(a.answer[0]!.name, 'node1.radio.example.org');
  assert.deepEqual(addresses(answerQuery(q('node1.radio.example.org', QTYPE.AAAA), s, ZONE)), ['2001:db8::1']);
  // An unhealthy node still answers for its own name.
  assert.deepEqual(addresses(answerQuery(q('node2.radio.example.org', QTYPE.A), s, ZONE)), ['10.0.0.2']);
});

test('NODATA for existing names without the type: AAAA of an IPv4-only node, MX, TXT', () => {
  const s = state([node('node2', ['10.0.0.2'])]);
  for (const [name, type] of [
    ['node2.radio.example.org', QTYPE.AAAA],
    ['node2.radio.example.org', QTYPE.MX],
    [APEX, QTYPE.MX],
    [APEX, QTYPE.TXT],
    ['node2.radio.example.org', QTYPE.NS],
  ] as const) {
    const a = answerQuery(q(name, type), s, ZONE);
    assert.equal(a.rcode, RCODE.NOERROR, `${name} ${type}`);
    assert.equal(a.aa, true);
    assert.equal(a.answer.length, 0);
    assert.equal(soaOf(a.authority).soa.minimum, 5);
  }
});

test('NXDOMAIN with the SOA for names in the zone that do not exist', () => {
  const s = state([node('node1', ['10.0.0.1'])]);
  for (const name of ['nope.radio.example.org', 'x.node1.radio.example.org', 'gone.radio.example.org']) {
    const a = answerQuery(q(name, QTYPE.A), s, ZONE);
    assert.equal(a.rcode, RCODE.NXDOMAIN, name);
    assert.equal(a.aa, true);
    assert.equal(a.answer.length, 0);
    assert.equal(soaOf(a.authority).name, APEX);
  }
});

test('REFUSED outside the zone, including look-alike suffixes', () => {
  const s = state(many);
  for (const name of ['example.org', 'badradio.example.org', 'radio.example.org.evil.net', 'google.com', '']) {
    const a = answerQuery(q(name, QTYPE.A), s, ZONE);
    assert.equal(a.rcode, RCODE.REFUSED, name);
    assert.equal(a.aa, false);
    assert.equal(a.answer.length + a.authority.length, 0);
  }
  assert.equal(answerQuery(q(APEX, QTYPE.A, { qclass: 3 }), s, ZONE).rcode, RCODE.REFUSED, 'CHAOS class');
  assert.equal(answerQuery(q(APEX, QTYPE.AXFR), s, ZONE).rcode, RCODE.REFUSED, 'zone transfer');
});

test('unsupported opcodes get NOTIMP', () => {
  for (const opcode of [1, 2, 4, 5]) {
    assert.equal(answerQuery(q(APEX, QTYPE.A, { opcode }), state(many), ZONE).rcode, RCODE.NOTIMP);
  }
});

test('NS lists the nameservers, short names inside the zone, with glue for live nodes only', () => {
  const s = state([node('node1', ['10.0.0.1', '2001:db8::1']), node('node2', ['10.0.0.2'])]);
  const a = answerQuery(q(APEX, QTYPE.NS), s, ZONE);
  assert.equal(a.aa, true);
  assert.deepEqual(
    a.answer.map((r) => (r.type === 'NS' ? r.host : '?')),
    ['node1.radio.example.org', 'ns.other.net', 'gone.radio.example.org'],
  );
  assert.deepEqual(
    a.additional.map((r) => [r.name, r.type, r.type === 'A' || r.type === 'AAAA' ? r.address : '']),
    [
      ['node1.radio.example.org', 'A', '10.0.0.1'],
      ['node1.radio.example.org', 'AAAA', '2001:db8::1'],
    ],
  );
});

test('SOA: serial is the membership serial, mname the first nameserver, minimum the DNS TTL', () => {
  const a = answerQuery(q(APEX, QTYPE.SOA), state(many, 1234), ZONE);
  assert.equal(a.aa, true);
  const soa = soaOf(a.answer);
  assert.equal(soa.soa.serial, 1234);
  assert.equal(soa.soa.mname, 'node1.radio.example.org');
  assert.equal(soa.soa.rname, 'hostmaster.radio.example.org');
  assert.equal(soa.soa.minimum, 5);
  assert.ok(soa.soa.refresh > soa.soa.retry && soa.soa.expire > soa.soa.refresh);
  const later = soaOf(answerQuery(q(APEX, QTYPE.SOA), state(many.slice(1), 1235), ZONE).answer);
  assert.equal(later.soa.serial, 1235);
  // Without --nameservers the live nodes stand in.
  const bare = soaOf(answerQuery(q(APEX, QTYPE.SOA), state(many), { ...ZONE, nameservers: [] }).answer);
  assert.equal(bare.soa.mname, 'node1.radio.example.org');
});

// ---- wire level: the responder (decode, answer, encode, cache), checked with dns-packet ----

function query(name: string, type: packet.RecordType, opts: { edns?: number; do?: boolean; id?: number } = {}): Buffer {
  return packet.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals:
      opts.edns === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, flags: opts.do ? packet.DNSSEC_OK : 0 } as packet.Answer],
  });
}

function responder(s: ClusterState, random = seededRandom(7)): DnsResponder {
  return new DnsResponder({ zone: ZONE, state: s, random });
}

/** dns-packet's decoded record, loosely typed: every field the assertions read. */
interface Rec {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}
type Decoded = Omit<packet.DecodedPacket, 'answers' | 'authorities' | 'additionals'> & {
  rcode?: string;
  opcode?: string;
  answers?: Rec[];
  authorities?: Rec[];
  additionals?: Rec[];
};

function decode(b: Buffer | undefined): Decoded {
  assert.ok(b, 'expected an answer');
  return packet.decode(b) as unknown as Decoded;
}

function opt(p: Decoded): packet.OptAnswer | undefined {
  return (p.additionals ?? []).find((r) => r.type === 'OPT') as unknown as packet.OptAnswer | undefined;
}

test('wire: flags, id, echoed question case, AA and answers decode with an independent decoder', () => {
  const r = responder(state(many));
  const p = decode(r.respond(query('RaDiO.example.ORG', 'A', { id: 777 }), 'udp'));
  assert.equal(p.id, 777);
  assert.equal(p.flag_qr, true);
  assert.equal(p.flag_aa, true);
  assert.equal(p.flag_rd, true);
  assert.equal(p.flag_ra, false);
  assert.equal(p.rcode, 'NOERROR');
  assert.equal(p.questions![0]!.name, 'RaDiO.example.ORG');
  assert.equal(p.answers!.length, 5);
  for (const a of p.answers!) {
    assert.equal(a.name, 'RaDiO.example.ORG');
    assert.equal(a.ttl, 5);
  }
  // Cached path answers a second spelling with its own case.
  const p2 = decode(r.respond(query('radio.EXAMPLE.org', 'SOA', { id: 1 }), 'udp'));
  const p3 = decode(r.respond(query('RADIO.example.org', 'SOA', { id: 2 }), 'udp'));
  assert.equal(p3.id, 2);
  assert.equal(p3.questions![0]!.name, 'RADIO.example.org');
  const soaText = (x: typeof p2) => JSON.stringify(x.answers![0]!.data).toLowerCase();
  assert.equal(soaText(p3), soaText(p2));
  assert.equal(p3.answers![0]!.name, 'RADIO.example.org');
});

test('wire: NXDOMAIN, NODATA, REFUSED and NS with glue', () => {
  const r = responder(state([node('node1', ['10.0.0.1', '2001:db8::1']), node('node2', ['10.0.0.2'])]));
  const nx = decode(r.respond(query('nope.radio.example.org', 'A'), 'udp'));
  assert.equal(nx.rcode, 'NXDOMAIN');
  assert.equal(nx.flag_aa, true);
  assert.equal(nx.authorities![0]!.type, 'SOA');
  const nodata = decode(r.respond(query('node2.radio.example.org', 'AAAA'), 'udp'));
  assert.equal(nodata.rcode, 'NOERROR');
  assert.equal(nodata.answers!.length, 0);
  assert.equal(nodata.authorities![0]!.type, 'SOA');
  const refused = decode(r.respond(query('example.com', 'A'), 'udp'));
  assert.equal(refused.rcode, 'REFUSED');
  assert.equal(refused.flag_aa, false);
  const ns = decode(r.respond(query('radio.example.org', 'NS'), 'udp'));
  assert.deepEqual(
    ns.answers!.map((a) => a.data),
    ['node1.radio.example.org', 'ns.other.net', 'gone.radio.example.org'],
  );
  assert.deepEqual(
    ns.additionals!.map((a) => `${a.name} ${a.type} ${String(a.data)}`),
    ['node1.radio.example.org A 10.0.0.1', 'node1.radio.example.org AAAA 2001:db8::1'],
  );
  const soa = decode(r.respond(query('radio.example.org', 'SOA'), 'udp'));
  assert.deepEqual(soa.answers![0]!.data, {
    mname: 'node1.radio.example.org',
    rname: 'hostmaster.radio.example.org',
    serial: 17,
    refresh: 3600,
    retry: 600,
    expire: 86400,
    minimum: 5,
  });
});

test('wire: OPT echoed only when the query had one, payload capped at 1232, DO echoed', () => {
  const r = responder(state(many));
  assert.equal(opt(decode(r.respond(query('radio.example.org', 'A'), 'udp'))), undefined);
  const o = opt(decode(r.respond(query('radio.example.org', 'A', { edns: 4096, do: true }), 'udp')));
  assert.ok(o);
  assert.equal(o.udpPayloadSize, 1232);
  assert.equal(o.flag_do, true);
  const o2 = opt(decode(r.respond(query('radio.example.org', 'SOA', { edns: 1400 }), 'udp')));
  assert.equal(o2?.flag_do, false);
});

test('wire: truncation at 512 without EDNS, at min(client, 1232) with it, never over TCP', () => {
  // 5 drawn nodes x 16 IPv6 addresses = 80 AAAA records = 2240 bytes of answer.
  const big = Array.from({ length: 6 }, (_, i) =>
    node(`big${i}`, Array.from({ length: 16 }, (_, j) => `2001:db8:${i}::${j + 1}`)),
  );
  const small = Array.from({ length: 6 }, (_, i) => node(`s${i}`, [`2001:db8:${i}::1`, `2001:db8:${i}::2`]));
  for (const [label, nodes, edns, transport, truncated] of [
    ['no EDNS, big', big, undefined, 'udp', true],
    ['EDNS 4096, big', big, 4096, 'udp', true],
    ['TCP, big', big, undefined, 'tcp', false],
    ['no EDNS, small', small, undefined, 'udp', false],
  ] as const) {
    const r = responder(state([...nodes]));
    const raw = r.respond(query('radio.example.org', 'AAAA', edns === undefined ? {} : { edns }), transport);
    const p = decode(raw);
    assert.equal(p.flag_tc, truncated, label);
    if (truncated) {
      assert.equal(p.answers!.length, 0, label);
      assert.equal(p.questions!.length, 1, label);
      assert.ok(raw!.length <= (edns === undefined ? 512 : 1232), label);
    } else {
      assert.equal(p.answers!.length, nodes === big ? 80 : 10, label);
    }
    assert.equal(opt(p) !== undefined, edns !== undefined, label);
  }
  // The cap also bounds fixed answers: NS with glue for 16 nameservers exceeds 512 bytes.
  const nsNodes = Array.from({ length: 16 }, (_, i) => node(`ns${i}`, [`10.9.0.${i}`, `2001:db8:9::${i}`]));
  const r = new DnsResponder({
    zone: { ...ZONE, nameservers: nsNodes.map((n) => n.name) },
    state: state(nsNodes),
  });
  const udp = decode(r.respond(query('radio.example.org', 'NS'), 'udp'));
  assert.equal(udp.flag_tc, true);
  const withEdns = decode(r.respond(query('radio.example.org', 'NS', { edns: 1232 }), 'udp'));
  assert.equal(withEdns.flag_tc, false);
  assert.equal(withEdns.answers!.length, 16);
  assert.equal(withEdns.additionals!.length, 33);
  const clientSmall = r.respond(query('radio.example.org', 'NS', { edns: 600 }), 'udp');
  assert.equal(decode(clientSmall).flag_tc, true);
  assert.equal(r.counters().truncated, 2);
});

test('wire: EDNS version other than 0 gets BADVERS', () => {
  const r = responder(state(many));
  const msg = query('radio.example.org', 'A', { edns: 1232 });
  msg[msg.length - 5] = 1; // version byte of the trailing OPT record
  const p = decode(r.respond(msg, 'udp'));
  const o = opt(p);
  assert.ok(o);
  assert.equal(o.extendedRcode, 1); // BADVERS = 16 = (1 << 4) | 0
  assert.equal(p.rcode, 'NOERROR');
  assert.equal(p.answers!.length, 0);
});

test('wire: NOTIMP echoes the opcode; malformed packets get FORMERR or nothing', () => {
  const r = responder(state(many));
  const notify = query('radio.example.org', 'SOA');
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  const p = decode(r.respond(notify, 'udp'));
  assert.equal(p.rcode, 'NOTIMP');
  assert.equal(p.opcode, 'NOTIFY');

  assert.equal(r.respond(Buffer.alloc(5), 'udp'), undefined, 'shorter than a header');
  const response = query('radio.example.org', 'A');
  response[2]! |= 0x80;
  assert.equal(r.respond(response, 'udp'), undefined, 'QR set');

  const two = query('radio.example.org', 'A');
  two[5] = 2;
  assert.equal(decode(r.respond(two, 'udp')).rcode, 'FORMERR');
  const cut = query('radio.example.org', 'A').subarray(0, 20);
  assert.equal(decode(r.respond(cut, 'udp')).rcode, 'FORMERR');
  // A question name that is a compression pointer to itself.
  const loop = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  assert.equal(decode(r.respond(loop, 'udp')).rcode, 'FORMERR');
  const badLabel = Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x50, 1, 0, 0, 1, 0, 1]);
  assert.equal(decode(r.respond(badLabel, 'udp')).rcode, 'FORMERR');
  // Two OPT records.
  const twoOpt = packet.encode({
    type: 'query',
    id: 3,
    questions: [{ name: 'radio.example.org', type: 'A' }],
    additionals: [
      { type: 'OPT', name: '.', udpPayloadSize: 1232 } as packet.Answer,
      { type: 'OPT', name: '.', udpPayloadSize: 1232 } as packet.Answer,
    ],
  });
  assert.equal(decode(r.respond(twoOpt, 'udp')).rcode, 'FORMERR');

  const garbage = Buffer.concat([query('radio.example.org', 'SOA', { id: 99 }), Buffer.from('trailing junk')]);
  const g = decode(r.respond(garbage, 'udp'));
  assert.equal(g.rcode, 'NOERROR');
  assert.equal(g.id, 99);

  const c = r.counters();
  assert.equal(c.dropped, 2);
  assert.equal(c.rcodes.FORMERR, 5);
  assert.equal(c.rcodes.NOTIMP, 1);
});

test('wire: odd bytes in names are escaped, never matched, never thrown on', () => {
  const r = responder(state(many));
  const d = decodeQuery(query('a\\.b.radio.example.org', 'A'));
  assert.equal(d.kind, 'query');
  const weird = Buffer.from(query('xx.radio.example.org', 'A'));
  weird[13] = 0x2e; // a dot and a NUL inside one label
  weird[14] = 0x00;
  const dq = decodeQuery(weird);
  assert.ok(dq.kind === 'query');
  assert.equal(dq.query.qnameLower, '\\046\\000.radio.example.org');
  assert.equal(decode(r.respond(weird, 'udp')).rcode, 'NXDOMAIN');
});

test('wire: a state change invalidates cached answers; counters by type and rcode', () => {
  const r = responder(state(many, 5));
  const serial = (b: Buffer | undefined) => (decode(b).answers![0]!.data as { serial: number }).serial;
  assert.equal(serial(r.respond(query('radio.example.org', 'SOA'), 'udp')), 5);
  assert.equal(serial(r.respond(query('radio.example.org', 'SOA'), 'udp')), 5);
  r.setState(state(many.slice(0, 2), 6));
  assert.equal(serial(r.respond(query('radio.example.org', 'SOA'), 'udp')), 6);
  assert.equal(decode(r.respond(query('radio.example.org', 'A'), 'udp')).answers!.length, 2);
  assert.equal(decode(r.respond(query('node7.radio.example.org', 'A'), 'udp')).rcode, 'NXDOMAIN');
  r.respond(query('radio.example.org', 'TXT'), 'tcp');
  const c = r.counters();
  assert.deepEqual(c.queries, { SOA: 3, A: 2, TXT: 1 });
  assert.deepEqual(c.rcodes, { NOERROR: 5, NXDOMAIN: 1 });
});

test('ipBytes handles the IPv6 shapes node status allows', () => {
  const hex = (s: string) => Buffer.from(ipBytes(s)).toString('hex');
  assert.equal(hex('192.0.2.7'), 'c0000207');
  assert.equal(hex('2001:db8::1'), '20010db8000000000000000000000001');
  assert.equal(hex('::'), '0'.repeat(32));
  assert.equal(hex('::ffff:10.1.2.3'), '00000000000000000000ffff0a010203');
  assert.equal(hex('fe80::1:2'), 'fe800000000000000000000000010002');
  assert.equal(hex('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008');
});
