import type { ClusterState } from '../../coordination/cluster-state.js';
import { buildZoneView, planAnswer, QTYPE, RCODE, type ZoneConfig, type ZoneView } from './answers.js';
import { APEX_MAX_NODES, weightedSample, type ApexCandidate } from './apex-selection.js';
import {
  assembleApex,
  decodeQuery,
  encodeApexBlock,
  encodeBareReply,
  encodeResponse,
  isTruncated,
  patchCached,
  TCP_MAX,
  udpLimit,
  type DnsQuery,
} from './codec.js';

/**
 * Bytes in, bytes out: decode, answer, encode, with a cache of encoded answers that is
 * dropped whenever the cluster state changes. No sockets (server.ts owns those), so tests
 * and the fuzzer can drive it directly.
 */

export type Transport = 'udp' | 'tcp';

/** In-process counters, cumulative since start; a Prometheus endpoint can read them as they are. */
export interface DnsCounters {
  /** Answered queries by query type name (`OTHER` for the rest). */
  queries: Record<string, number>;
  /** Answers by response code name. */
  rcodes: Record<string, number>;
  /** Packets not answered at all (too short, or responses). */
  dropped: number;
  /** UDP answers cut down to the question with TC set. */
  truncated: number;
}

type CacheEntry =
  | { kind: 'fixed'; bytes: Buffer; rcode: number }
  | { kind: 'apex'; pool: ApexCandidate<{ block: Buffer; count: number }>[] };

const QTYPE_NAMES = new Map<number, string>(Object.entries(QTYPE).map(([name, code]) => [code, name]));
const RCODE_NAMES = new Map<number, string>(Object.entries(RCODE).map(([name, code]) => [code, name]));

export function qtypeName(code: number): string {
  return QTYPE_NAMES.get(code) ?? 'OTHER';
}

export function rcodeName(code: number): string {
  return RCODE_NAMES.get(code) ?? 'OTHER';
}

export interface ResponderOptions {
  zone: ZoneConfig;
  state: ClusterState;
  random?: () => number;
  /** Distinct (name, type, size) keys kept; random names cannot grow memory past this. */
  maxCacheEntries?: number;
}

export class DnsResponder {
  private view: ZoneView;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly random: () => number;
  private readonly maxCacheEntries: number;
  private readonly queryCounts = new Map<string, number>();
  private readonly rcodeCounts = new Map<string, number>();
  private dropped = 0;
  private truncated = 0;

  constructor(private readonly opts: ResponderOptions) {
    this.view = buildZoneView(opts.state, opts.zone);
    this.random = opts.random ?? Math.random;
    this.maxCacheEntries = opts.maxCacheEntries ?? 10_000;
  }

  setState(state: ClusterState): void {
    this.view = buildZoneView(state, this.opts.zone);
    this.cache.clear();
  }

  /** The answer to send back, or undefined when the packet deserves none. */
  respond(msg: Uint8Array, transport: Transport): Buffer | undefined {
    const decoded = decodeQuery(msg);
    if (decoded.kind === 'drop') {
      this.dropped++;
      return undefined;
    }
    if (decoded.kind === 'formerr') {
      this.countRcode(RCODE.FORMERR);
      return encodeBareReply(decoded.id, decoded.flags, RCODE.FORMERR);
    }
    const q = decoded.query;
    bump(this.queryCounts, qtypeName(q.qtype));
    const maxSize = transport === 'tcp' ? TCP_MAX : udpLimit(q.edns);

    if (q.edns !== undefined && q.edns.version > 0) {
      this.countRcode(RCODE.BADVERS);
      return encodeResponse(q, msg, { rcode: RCODE.BADVERS, aa: false, answer: [], authority: [], additional: [] }, maxSize);
    }

    const key = cacheKey(q, maxSize);
    let entry = this.cache.get(key);
    if (entry === undefined) {
      entry = this.build(q, msg, maxSize);
      if (this.cache.size >= this.maxCacheEntries) this.cache.clear();
      this.cache.set(key, entry);
      if (entry.kind === 'fixed') return this.finish(entry.bytes, entry.rcode);
    }
    if (entry.kind === 'fixed') return this.finish(patchCached(entry.bytes, q, msg), entry.rcode);

    const drawn = weightedSample(entry.pool, APEX_MAX_NODES, this.random);
    let count = 0;
    const blocks: Buffer[] = [];
    for (const d of drawn) {
      blocks.push(d.block);
      count += d.count;
    }
    const { out } = assembleApex(q, msg, blocks, count, maxSize);
    return this.finish(out, RCODE.NOERROR);
  }

  counters(): DnsCounters {
    return {
      queries: Object.fromEntries(this.queryCounts),
      rcodes: Object.fromEntries(this.rcodeCounts),
      dropped: this.dropped,
      truncated: this.truncated,
    };
  }

  private build(q: DnsQuery, msg: Uint8Array, maxSize: number): CacheEntry {
    const plan = planAnswer(q, this.view);
    if (plan.apexPool !== undefined && plan.authority.length === 0 && plan.additional.length === 0) {
      return {
        kind: 'apex',
        pool: plan.apexPool.map(({ node, weight }) => ({
          weight,
          node: { block: encodeApexBlock(node.records), count: node.records.length },
        })),
      };
    }
    return { kind: 'fixed', bytes: encodeResponse(q, msg, plan, maxSize), rcode: plan.rcode };
  }

  private finish(out: Buffer, rcode: number): Buffer {
    this.countRcode(rcode);
    if (isTruncated(out)) this.truncated++;
    return out;
  }

  private countRcode(rcode: number): void {
    bump(this.rcodeCounts, rcodeName(rcode));
  }
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/**
 * Everything the encoded bytes depend on besides id, RD/CD and the question's letter case:
 * name, type, class, opcode, size limit, and whether (and with which DO bit) OPT is echoed.
 */
function cacheKey(q: DnsQuery, maxSize: number): string {
  const opt = q.edns === undefined ? 0 : q.edns.dnssecOk ? 2 : 1;
  return `${q.qnameLower}|${q.qtype}|${q.qclass}|${q.opcode}|${maxSize}|${opt}`;
}
