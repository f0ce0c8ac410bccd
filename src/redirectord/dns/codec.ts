import { QTYPE, RCODE, type DnsAnswer, type DnsRecord } from './answers.js';

/**
 * DNS wire format for the hot path, by hand: the decoder reads only what the answer depends
 * on (one question and the OPT record) and the encoder writes only the record types the zone
 * holds. Both work on raw buffers without intermediate objects, which is what lets one Node
 * process serve tens of thousands of queries a second. Never throws on hostile input.
 */

export const HEADER_LEN = 12;
/** Largest UDP answer without EDNS (RFC 1035). */
export const UDP_PLAIN_MAX = 512;
/** Largest UDP answer we send with EDNS: avoids IP fragmentation (DNS flag day 2020). */
export const UDP_EDNS_MAX = 1232;
export const TCP_MAX = 65535;
const OPT_LEN = 11;

const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_CD = 0x0010;

export interface EdnsInfo {
  udpSize: number;
  version: number;
  dnssecOk: boolean;
}

export interface DnsQuery {
  id: number;
  /** The 16 flag bits as received. */
  flags: number;
  opcode: number;
  /** Presentation form in lower case, without the trailing dot; odd bytes escaped as \DDD. */
  qnameLower: string;
  qtype: number;
  qclass: number;
  /** Offset just past the question section; bytes 12..questionEnd are echoed verbatim. */
  questionEnd: number;
  edns: EdnsInfo | undefined;
}

export type DecodeResult =
  | { kind: 'query'; query: DnsQuery }
  /** Not worth an answer: too short to carry an id, or itself a response (QR set). */
  | { kind: 'drop' }
  | { kind: 'formerr'; id: number; flags: number };

/** Parses a query; anything malformed becomes 'formerr' (if it has a header) or 'drop'. */
export function decodeQuery(msg: Uint8Array): DecodeResult {
  const len = msg.length;
  if (len < HEADER_LEN) return { kind: 'drop' };
  const id = (msg[0]! << 8) | msg[1]!;
  const flags = (msg[2]! << 8) | msg[3]!;
  if (flags & FLAG_QR) return { kind: 'drop' };
  const formerr: DecodeResult = { kind: 'formerr', id, flags };
  const qd = (msg[4]! << 8) | msg[5]!;
  const an = (msg[6]! << 8) | msg[7]!;
  const ns = (msg[8]! << 8) | msg[9]!;
  const ar = (msg[10]! << 8) | msg[11]!;
  if (qd !== 1) return formerr;

  // Question name: plain labels only; a compression pointer has nothing to point back to.
  let pos = HEADER_LEN;
  let qnameLower = '';
  let nameLen = 1;
  for (;;) {
    if (pos >= len) return formerr;
    const labelLen = msg[pos]!;
    if (labelLen === 0) {
      pos++;
      break;
    }
    if (labelLen > 63) return formerr;
    nameLen += labelLen + 1;
    if (nameLen > 255 || pos + 1 + labelLen > len) return formerr;
    if (qnameLower.length > 0) qnameLower += '.';
    for (let i = pos + 1, end = pos + 1 + labelLen; i < end; i++) qnameLower += lowerByte(msg[i]!);
    pos += 1 + labelLen;
  }
  if (pos + 4 > len) return formerr;
  const qtype = (msg[pos]! << 8) | msg[pos + 1]!;
  const qclass = (msg[pos + 2]! << 8) | msg[pos + 3]!;
  pos += 4;
  const questionEnd = pos;

  // Skip answer and authority records (a query should have none, NOTIFY has some), then find OPT.
  let edns: EdnsInfo | undefined;
  const total = an + ns + ar;
  for (let i = 0; i < total; i++) {
    const nameStart = pos;
    pos = skipName(msg, pos);
    if (pos < 0 || pos + 10 > len) return formerr;
    const type = (msg[pos]! << 8) | msg[pos + 1]!;
    const rdLen = (msg[pos + 8]! << 8) | msg[pos + 9]!;
    if (pos + 10 + rdLen > len) return formerr;
    if (type === QTYPE.OPT) {
      // One OPT, owned by the root, in the additional section only (RFC 6891 6.1.1).
      if (i < an + ns || edns !== undefined || pos !== nameStart + 1) return formerr;
      edns = {
        udpSize: (msg[pos + 2]! << 8) | msg[pos + 3]!,
        version: msg[pos + 5]!,
        dnssecOk: (msg[pos + 6]! & 0x80) !== 0,
      };
    }
    pos += 10 + rdLen;
  }
  // Bytes after the last record are ignored, as most servers do.
  return {
    kind: 'query',
    query: { id, flags, opcode: (flags >> 11) & 0xf, qnameLower, qtype, qclass, questionEnd, edns },
  };
}

/** Returns the offset after the name, or -1. Pointers end a name, so no loop can form here. */
function skipName(msg: Uint8Array, pos: number): number {
  const len = msg.length;
  for (let guard = 0; guard < 128; guard++) {
    if (pos >= len) return -1;
    const b = msg[pos]!;
    if (b === 0) return pos + 1;
    if ((b & 0xc0) === 0xc0) return pos + 2 <= len ? pos + 2 : -1;
    if (b > 63) return -1;
    pos += 1 + b;
  }
  return -1;
}

const LOWER_BYTE: string[] = [];
for (let b = 0; b < 256; b++) {
  if (b >= 0x41 && b <= 0x5a) LOWER_BYTE.push(String.fromCharCode(b + 32));
  else if (b <= 0x20 || b >= 0x7f || b === 0x2e || b === 0x5c) LOWER_BYTE.push(`\\${String(b).padStart(3, '0')}`);
  else LOWER_BYTE.push(String.fromCharCode(b));
}
function lowerByte(b: number): string {
  return LOWER_BYTE[b]!;
}

/** Largest answer the client can take over UDP. */
export function udpLimit(edns: EdnsInfo | undefined): number {
  if (edns === undefined) return UDP_PLAIN_MAX;
  return Math.min(Math.max(edns.udpSize, UDP_PLAIN_MAX), UDP_EDNS_MAX);
}

/** Response header flags for a query: QR, its opcode, RD and CD copied, our AA/TC, low rcode bits. */
function responseFlags(queryFlags: number, aa: boolean, tc: boolean, rcode: number): number {
  return (
    FLAG_QR |
    (queryFlags & 0x7800) |
    (aa ? FLAG_AA : 0) |
    (tc ? FLAG_TC : 0) |
    (queryFlags & FLAG_RD) |
    (queryFlags & FLAG_CD) |
    (rcode & 0xf)
  );
}

/** Header-only reply (FORMERR for an unparseable question): id and opcode echoed, no sections. */
export function encodeBareReply(id: number, queryFlags: number, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_LEN);
  out.writeUInt16BE(id, 0);
  out.writeUInt16BE(responseFlags(queryFlags, false, false, rcode), 2);
  return out;
}

/**
 * Appends names with compression. Suffix offsets are keyed by the lower-case name, so
 * pointers into the echoed question make clients see the question's own spelling.
 */
class Writer {
  pos = 0;
  private readonly names = new Map<string, number>();
  constructor(readonly buf: Buffer) {}

  room(n: number): boolean {
    return this.pos + n <= this.buf.length;
  }

  /** Registers the question name (already copied at `offset`) for compression. */
  registerName(lowerName: string, offset: number): void {
    if (lowerName.length === 0) return;
    const labels = lowerName.split('.');
    let off = offset;
    for (let i = 0; i < labels.length; i++) {
      if (off > 0x3fff) return;
      this.names.set(labels.slice(i).join('.'), off);
      off += 1 + wireLabelLength(labels[i]!);
    }
  }

  /** Writes a name made of plain ASCII labels (our own names never need escapes). */
  name(name: string): boolean {
    let rest = name;
    while (rest.length > 0) {
      const ptr = this.names.get(rest);
      if (ptr !== undefined) {
        if (!this.room(2)) return false;
        this.buf.writeUInt16BE(0xc000 | ptr, this.pos);
        this.pos += 2;
        return true;
      }
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      if (label.length === 0 || label.length > 63 || !this.room(1 + label.length)) return false;
      if (this.pos <= 0x3fff) this.names.set(rest, this.pos);
      this.buf[this.pos++] = label.length;
      this.pos += this.buf.write(label, this.pos, 'latin1');
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    if (!this.room(1)) return false;
    this.buf[this.pos++] = 0;
    return true;
  }

  u16(v: number): boolean {
    if (!this.room(2)) return false;
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
    return true;
  }

  u32(v: number): boolean {
    if (!this.room(4)) return false;
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return true;
  }

  bytes(b: Uint8Array): boolean {
    if (!this.room(b.length)) return false;
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return true;
  }

  /** TXT data: the text in character-strings of at most 255 bytes (RFC 1035, section 3.3.14). */
  characterStrings(text: string): boolean {
    const data = Buffer.from(text, 'latin1');
    for (let at = 0; at < data.length || at === 0; at += 255) {
      const part = data.subarray(at, at + 255);
      if (!this.room(1 + part.length)) return false;
      this.buf[this.pos++] = part.length;
      this.bytes(part);
      if (data.length === 0) break;
    }
    return true;
  }

  record(rr: DnsRecord): boolean {
    if (!this.name(rr.name)) return false;
    const typeCode = QTYPE[rr.type];
    if (!this.u16(typeCode) || !this.u16(1) || !this.u32(rr.ttl) || !this.room(2)) return false;
    const lenAt = this.pos;
    this.pos += 2;
    let ok: boolean;
    switch (rr.type) {
      case 'A':
      case 'AAAA':
        ok = this.bytes(ipBytes(rr.address));
        break;
      case 'NS':
        ok = this.name(rr.host);
        break;
      case 'SOA':
        ok =
          this.name(rr.soa.mname) &&
          this.name(rr.soa.rname) &&
          this.u32(rr.soa.serial) &&
          this.u32(rr.soa.refresh) &&
          this.u32(rr.soa.retry) &&
          this.u32(rr.soa.expire) &&
          this.u32(rr.soa.minimum);
        break;
      case 'TXT':
        ok = this.characterStrings(rr.text);
        break;
    }
    if (!ok) return false;
    this.buf.writeUInt16BE(this.pos - lenAt - 2, lenAt);
    return true;
  }
}

function wireLabelLength(label: string): number {
  // Escapes (\DDD) stand for one byte each.
  let n = 0;
  for (let i = 0; i < label.length; i++, n++) if (label.charCodeAt(i) === 0x5c) i += 3;
  return n;
}

/** Our OPT record: payload size we accept, extended rcode, version 0, DO echoed, no options. */
export function writeOpt(buf: Buffer, pos: number, extRcode: number, dnssecOk: boolean): number {
  buf[pos] = 0;
  buf.writeUInt16BE(QTYPE.OPT, pos + 1);
  buf.writeUInt16BE(UDP_EDNS_MAX, pos + 3);
  buf[pos + 5] = extRcode;
  buf[pos + 6] = 0;
  buf[pos + 7] = dnssecOk ? 0x80 : 0;
  buf[pos + 8] = 0;
  buf.writeUInt16BE(0, pos + 9);
  return pos + OPT_LEN;
}

const scratch = Buffer.alloc(TCP_MAX);

/**
 * Encodes the answer to `query` (whose raw bytes are `msg`) in at most `maxSize` bytes. When
 * the records do not fit, the reply keeps only the question (and OPT) and sets TC so the
 * client retries over TCP.
 */
export function encodeResponse(query: DnsQuery, msg: Uint8Array, answer: DnsAnswer, maxSize: number): Buffer {
  const limit = Math.min(maxSize, TCP_MAX);
  const optLen = query.edns ? OPT_LEN : 0;
  const w = new Writer(scratch.subarray(0, limit - optLen));
  const qLen = query.questionEnd - HEADER_LEN;
  w.pos = HEADER_LEN;
  let truncated = !w.bytes(msg.subarray(HEADER_LEN, query.questionEnd));
  w.registerName(query.qnameLower, HEADER_LEN);
  const counts = [0, 0, 0];
  const sections = [answer.answer, answer.authority, answer.additional];
  for (let s = 0; s < 3 && !truncated; s++) {
    for (const rr of sections[s]!) {
      if (!w.record(rr)) {
        truncated = true;
        break;
      }
      counts[s]!++;
    }
  }
  let end = w.pos;
  if (truncated) {
    counts[0] = counts[1] = counts[2] = 0;
    end = HEADER_LEN + qLen;
  }
  const out = Buffer.allocUnsafe(end + optLen);
  scratch.copy(out, 0, 0, end);
  out.writeUInt16BE(query.id, 0);
  out.writeUInt16BE(responseFlags(query.flags, answer.aa, truncated, answer.rcode), 2);
  out.writeUInt16BE(qLen > 0 ? 1 : 0, 4);
  out.writeUInt16BE(counts[0]!, 6);
  out.writeUInt16BE(counts[1]!, 8);
  out.writeUInt16BE(counts[2]! + (optLen ? 1 : 0), 10);
  if (query.edns) writeOpt(out, end, answer.rcode >> 4, query.edns.dnssecOk);
  return out;
}

/**
 * Address records of one apex node, pre-encoded with the owner as a pointer to the question
 * (offset 12), so a per-query answer is a concatenation of these blocks.
 */
export function encodeApexBlock(records: readonly DnsRecord[]): Buffer {
  const parts: Buffer[] = [];
  for (const rr of records) {
    if (rr.type !== 'A' && rr.type !== 'AAAA') continue;
    const rdata = ipBytes(rr.address);
    const b = Buffer.allocUnsafe(12 + rdata.length);
    b.writeUInt16BE(0xc000 | HEADER_LEN, 0);
    b.writeUInt16BE(QTYPE[rr.type], 2);
    b.writeUInt16BE(1, 4);
    b.writeUInt32BE(rr.ttl >>> 0, 6);
    b.writeUInt16BE(rdata.length, 10);
    b.set(rdata, 12);
    parts.push(b);
  }
  return Buffer.concat(parts);
}

/**
 * Assembles an apex answer from pre-encoded blocks: header, the query's own question bytes,
 * the drawn blocks, OPT. Truncates like encodeResponse.
 */
export function assembleApex(
  query: DnsQuery,
  msg: Uint8Array,
  blocks: readonly Buffer[],
  recordCount: number,
  maxSize: number,
): { out: Buffer; truncated: boolean } {
  const optLen = query.edns ? OPT_LEN : 0;
  let size = query.questionEnd + optLen;
  for (const b of blocks) size += b.length;
  const truncated = size > maxSize;
  if (truncated) size = query.questionEnd + optLen;
  const out = Buffer.allocUnsafe(size);
  out.writeUInt16BE(query.id, 0);
  out.writeUInt16BE(responseFlags(query.flags, true, truncated, 0), 2);
  out.writeUInt16BE(1, 4);
  out.writeUInt16BE(truncated ? 0 : recordCount, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(optLen ? 1 : 0, 10);
  out.set(msg.subarray(HEADER_LEN, query.questionEnd), HEADER_LEN);
  let pos = query.questionEnd;
  if (!truncated) {
    for (const b of blocks) {
      out.set(b, pos);
      pos += b.length;
    }
  }
  if (query.edns) writeOpt(out, pos, 0, query.edns.dnssecOk);
  return { out, truncated };
}

/**
 * Re-targets a cached response at a new query for the same (name, type, size class): its id,
 * its RD/CD bits and its question bytes (same length, maybe different case).
 */
export function patchCached(cached: Buffer, query: DnsQuery, msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(cached.length);
  cached.copy(out);
  out.writeUInt16BE(query.id, 0);
  out[2] = (out[2]! & ~0x01) | ((query.flags >> 8) & 0x01);
  out[3] = (out[3]! & ~0x10) | (query.flags & 0x10);
  if (out.readUInt16BE(4) === 1) out.set(msg.subarray(HEADER_LEN, query.questionEnd), HEADER_LEN);
  return out;
}

export function isTruncated(response: Uint8Array): boolean {
  return response.length >= 4 && (response[2]! & 0x02) !== 0;
}

/** IPv4 or IPv6 text to bytes; invalid text yields 0.0.0.0 / :: (inputs were validated upstream). */
export function ipBytes(address: string): Uint8Array {
  if (!address.includes(':')) {
    const out = new Uint8Array(4);
    const parts = address.split('.');
    for (let i = 0; i < 4; i++) out[i] = Number(parts[i]) & 0xff;
    return out;
  }
  return ipv6Bytes(address);
}

function ipv6Bytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  // A trailing dotted quad (::ffff:1.2.3.4) fills the last 4 bytes.
  let tail: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail = ipBytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const headGroups = head.length ? head.split(':') : [];
  const restGroups = rest === undefined ? [] : rest.length ? rest.split(':') : [];
  const groups =
    rest === undefined
      ? headGroups
      : [...headGroups, ...new Array<string>(Math.max(0, 8 - headGroups.length - restGroups.length)).fill('0'), ...restGroups];
  for (let i = 0; i < 8; i++) {
    const v = parseInt(groups[i] ?? '0', 16) || 0;
    out[i * 2] = (v >> 8) & 0xff;
    out[i * 2 + 1] = v & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}
