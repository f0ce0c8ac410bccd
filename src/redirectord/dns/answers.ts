import type { ClusterState } from '../../coordination/cluster-state.js';
import { challengeRecordName } from '../../coordination/acme.js';
import type { NodeStatus } from '../../coordination/node-status.js';
import { APEX_MAX_NODES, apexCandidates, weightedSample, type ApexCandidate } from './apex-selection.js';

/**
 * The zone's contents as a pure function of the cluster state: query in, answer out. No
 * sockets and no wire format here; codec.ts encodes what this returns.
 */

export const QTYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  DS: 43,
  RRSIG: 46,
  DNSKEY: 48,
  SVCB: 64,
  HTTPS: 65,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
  CAA: 257,
} as const;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

export const CLASS_IN = 1;
export const CLASS_ANY = 255;
export const OPCODE_QUERY = 0;

/** What the operator configured: `--domain`, `--nameservers`, `--dns-ttl`. */
export interface ZoneConfig {
  domain: string;
  /** Host names; a name without a dot is taken as `<name>.<domain>`. */
  nameservers: readonly string[];
  /** TTL of node addresses and of negative answers, seconds. */
  ttl: number;
}

/** The parts of a decoded query the answer depends on. Names compare in lower case. */
export interface Question {
  qnameLower: string;
  qtype: number;
  qclass: number;
  opcode: number;
}

export interface SoaData {
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export type DnsRecord =
  | { name: string; type: 'A' | 'AAAA'; ttl: number; address: string }
  | { name: string; type: 'NS'; ttl: number; host: string }
  | { name: string; type: 'SOA'; ttl: number; soa: SoaData }
  | { name: string; type: 'TXT'; ttl: number; text: string };

export interface DnsAnswer {
  rcode: number;
  /** Authoritative answer: set on every answer from inside the zone. */
  aa: boolean;
  answer: DnsRecord[];
  authority: DnsRecord[];
  additional: DnsRecord[];
}

/** One apex node and the address records it contributes when drawn. */
export interface ApexEntry {
  name: string;
  records: DnsRecord[];
}

/**
 * A deterministic answer, except that for apex A/AAAA the answer section is drawn per query
 * from `apexPool` (see materialize). Splitting the two lets the responder cache the plan and
 * still shuffle every answer.
 */
export interface AnswerPlan extends DnsAnswer {
  apexPool?: ApexCandidate<ApexEntry>[];
}

/**
 * DNS-01 values live for one order: a resolver must not keep a stale one when the next order
 * (a renewal, or a new orderer's retry) publishes new values.
 */
export const CHALLENGE_TTL = 0;

/** NS records rarely change (they follow a config flag), so they live longer than addresses. */
export const NS_TTL = 3600;
/** Secondaries never transfer this zone; the timers only have to be sane. */
const SOA_TIMERS = { refresh: 3600, retry: 600, expire: 86400 } as const;

/** The zone as it stands for one ClusterState: built once per state change. */
export interface ZoneView {
  apex: string;
  ttl: number;
  nameservers: string[];
  soa: DnsRecord;
  nodes: ReadonlyMap<string, NodeStatus>;
  /** Apex candidates by family, computed once per state. */
  apexV4: ApexCandidate<ApexEntry>[];
  apexV6: ApexCandidate<ApexEntry>[];
  /** `_acme-challenge.<apex>` and the values it answers (none: the name does not exist). */
  challengeName: string;
  challenges: readonly string[];
}

export function normalizeName(name: string): string {
  return name.trim().replace(/\.+$/, '').toLowerCase();
}

export function nameserverNames(zone: ZoneConfig, apex: string): string[] {
  const out: string[] = [];
  for (const raw of zone.nameservers) {
    const n = normalizeName(raw);
    if (n.length === 0) continue;
    const fqdn = n.includes('.') ? n : `${n}.${apex}`;
    if (!out.includes(fqdn)) out.push(fqdn);
  }
  return out;
}

export function buildZoneView(state: ClusterState, zone: ZoneConfig): ZoneView {
  const apex = normalizeName(zone.domain);
  const ttl = zone.ttl;
  const nodes = new Map<string, NodeStatus>();
  for (const node of state.nodes.values()) nodes.set(node.name.toLowerCase(), node);

  let nameservers = nameserverNames(zone, apex);
  if (nameservers.length === 0) {
    // Without --nameservers the live nodes are the best guess at who serves the zone.
    nameservers = [...nodes.keys()].sort().slice(0, APEX_MAX_NODES).map((n) => `${n}.${apex}`);
  }
  const soa: DnsRecord = {
    name: apex,
    type: 'SOA',
    ttl,
    soa: {
      mname: nameservers[0] ?? apex,
      rname: `hostmaster.${apex}`,
      serial: state.membershipSerial >>> 0,
      ...SOA_TIMERS,
      minimum: ttl,
    },
  };
  const live = [...state.nodes.values()];
  return {
    apex,
    ttl,
    nameservers,
    soa,
    nodes,
    apexV4: apexEntries(live, 'A', apex, ttl),
    apexV6: apexEntries(live, 'AAAA', apex, ttl),
    challengeName: challengeRecordName(apex),
    challenges: state.acme?.challenges ?? [],
  };
}

function apexEntries(live: NodeStatus[], type: 'A' | 'AAAA', apex: string, ttl: number): ApexCandidate<ApexEntry>[] {
  return apexCandidates(live, type === 'A' ? 4 : 6).map(({ node, weight }) => ({
    weight,
    node: { name: node.name, records: addressRecords(node, type, apex, ttl) },
  }));
}

function familyOf(address: string): 'A' | 'AAAA' {
  return address.includes(':') ? 'AAAA' : 'A';
}

function addressRecords(node: NodeStatus, type: 'A' | 'AAAA', owner: string, ttl: number): DnsRecord[] {
  const out: DnsRecord[] = [];
  for (const address of node.addresses) if (familyOf(address) === type) out.push({ name: owner, type, ttl, address });
  return out;
}

function empty(rcode: number, aa: boolean): AnswerPlan {
  return { rcode, aa, answer: [], authority: [], additional: [] };
}

/** The deterministic part of the answer to `q` (see AnswerPlan). */
export function planAnswer(q: Question, view: ZoneView): AnswerPlan {
  if (q.opcode !== OPCODE_QUERY) return empty(RCODE.NOTIMP, false);
  if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) return empty(RCODE.REFUSED, false);
  const name = q.qnameLower;
  const { apex } = view;

  if (name === apex) return planApex(q.qtype, view);
  if (!name.endsWith(`.${apex}`)) return empty(RCODE.REFUSED, false);

  if (name === view.challengeName) return planChallenge(q.qtype, view);
  const label = name.slice(0, name.length - apex.length - 1);
  const node = label.includes('.') ? undefined : view.nodes.get(label);
  if (node === undefined) return negative(RCODE.NXDOMAIN, view);
  return planNode(q.qtype, name, node, view);
}

function planApex(qtype: number, view: ZoneView): AnswerPlan {
  switch (qtype) {
    case QTYPE.A:
    case QTYPE.AAAA: {
      const pool = qtype === QTYPE.A ? view.apexV4 : view.apexV6;
      if (pool.length === 0) return negative(RCODE.NOERROR, view);
      return { ...empty(RCODE.NOERROR, true), apexPool: pool };
    }
    case QTYPE.NS:
      return { rcode: RCODE.NOERROR, aa: true, answer: nsRecords(view), authority: [], additional: glue(view) };
    case QTYPE.SOA:
      return { rcode: RCODE.NOERROR, aa: true, answer: [view.soa], authority: [], additional: [] };
    case QTYPE.ANY:
      // RFC 8482 lets ANY be answered with a subset; the stable records keep it small and cacheable.
      return { rcode: RCODE.NOERROR, aa: true, answer: [view.soa, ...nsRecords(view)], authority: [], additional: [] };
    case QTYPE.AXFR:
    case QTYPE.IXFR:
      // Every node computes the zone itself; there is nothing to transfer.
      return empty(RCODE.REFUSED, false);
    default:
      return negative(RCODE.NOERROR, view);
  }
}

/** The pending DNS-01 values, from etcd: the name exists only while an order is pending. */
function planChallenge(qtype: number, view: ZoneView): AnswerPlan {
  if (view.challenges.length === 0) return negative(RCODE.NXDOMAIN, view);
  if (qtype !== QTYPE.TXT && qtype !== QTYPE.ANY) return negative(RCODE.NOERROR, view);
  const answer: DnsRecord[] = view.challenges.map((text) => ({ name: view.challengeName, type: 'TXT', ttl: CHALLENGE_TTL, text }));
  return { rcode: RCODE.NOERROR, aa: true, answer, authority: [], additional: [] };
}

function planNode(qtype: number, name: string, node: NodeStatus, view: ZoneView): AnswerPlan {
  let answer: DnsRecord[];
  switch (qtype) {
    case QTYPE.A:
    case QTYPE.AAAA:
      answer = addressRecords(node, qtype === QTYPE.A ? 'A' : 'AAAA', name, view.ttl);
      break;
    case QTYPE.ANY:
      answer = [...addressRecords(node, 'A', name, view.ttl), ...addressRecords(node, 'AAAA', name, view.ttl)];
      break;
    case QTYPE.AXFR:
    case QTYPE.IXFR:
      return empty(RCODE.REFUSED, false);
    default:
      answer = [];
  }
  if (answer.length === 0) return negative(RCODE.NOERROR, view);
  return { rcode: RCODE.NOERROR, aa: true, answer, authority: [], additional: [] };
}

/** NXDOMAIN, or NODATA when rcode is NOERROR: the SOA in authority sets the negative TTL. */
function negative(rcode: number, view: ZoneView): AnswerPlan {
  return { rcode, aa: true, answer: [], authority: [view.soa], additional: [] };
}

function nsRecords(view: ZoneView): DnsRecord[] {
  return view.nameservers.map((host) => ({ name: view.apex, type: 'NS', ttl: NS_TTL, host }));
}

/** Addresses of nameservers that are live nodes of this zone, so resolvers need no extra lookup. */
function glue(view: ZoneView): DnsRecord[] {
  const out: DnsRecord[] = [];
  const suffix = `.${view.apex}`;
  for (const host of view.nameservers) {
    if (!host.endsWith(suffix)) continue;
    const label = host.slice(0, host.length - suffix.length);
    const node = view.nodes.get(label);
    if (node === undefined) continue;
    out.push(...addressRecords(node, 'A', host, view.ttl), ...addressRecords(node, 'AAAA', host, view.ttl));
  }
  return out;
}

/** Draws the apex nodes of a plan; other plans are returned as they are. */
export function materialize(plan: AnswerPlan, random: () => number): DnsAnswer {
  if (plan.apexPool === undefined) return plan;
  const drawn = weightedSample(plan.apexPool, APEX_MAX_NODES, random);
  return {
    rcode: plan.rcode,
    aa: plan.aa,
    answer: drawn.flatMap((e) => e.records),
    authority: plan.authority,
    additional: plan.additional,
  };
}

/** The whole answer for one question: the pure contract the DNS server implements. */
export function answerQuery(
  q: Question,
  state: ClusterState,
  zone: ZoneConfig,
  random: () => number = Math.random,
): DnsAnswer {
  return materialize(planAnswer(q, buildZoneView(state, zone)), random);
}
