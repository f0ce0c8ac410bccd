import { mediaType } from '../../common/media-type.js';

/**
 * Cuts an audio byte stream into runs of whole frames, so that every chunk it emits starts on a
 * frame boundary: a listener may then join, skip ahead or move to a new upstream at any chunk
 * without a decoder seeing half a frame. Pure.
 *
 * MP3 (MPEG audio layers I-III) and AAC ADTS frames are recognised by their sync word and a
 * second header where the first frame says the next one starts (a lone 0xFFF in the audio is
 * not taken for a frame); bytes between frames (an ID3 tag, garbage after a cut) are dropped.
 * Ogg is cut into pages; the stream's header pages (BOS and the granule-0 pages after them) are
 * kept, because a decoder needs them before any audio page. Other types pass through as they
 * come: each chunk counts as a boundary.
 */
export interface FrameSplitter {
  /**
   * Audio bytes in; out, in stream order: runs of whole frames, and (Ogg) the header pages of a
   * chain that starts. The last partial frame is held back.
   */
  push(audio: Buffer): SplitPiece[];
  /** Pages a listener must get before any audio (Ogg: the current chain's headers); empty otherwise. */
  readonly headers: readonly Buffer[];
}

export interface SplitPiece {
  /** 'headers': a new chain's header pages (listeners already playing need them too). */
  kind: 'frames' | 'headers';
  bytes: Buffer;
}

export type FrameFormat = 'mpeg' | 'adts' | 'ogg' | 'opaque';

export function frameFormat(contentType: string | undefined): FrameFormat {
  const type = mediaType(contentType);
  if (type === 'audio/mpeg' || type === 'audio/mp3' || type === 'audio/mpeg3') return 'mpeg';
  if (type === 'audio/aac' || type === 'audio/aacp' || type === 'audio/x-aac') return 'adts';
  if (type === 'application/ogg' || type === 'audio/ogg' || type === 'video/ogg' || type === 'audio/opus') return 'ogg';
  return 'opaque';
}

export function createFrameSplitter(format: FrameFormat): FrameSplitter {
  switch (format) {
    case 'mpeg':
      return new SyncWordSplitter(mpegFrameLength);
    case 'adts':
      return new SyncWordSplitter(adtsFrameLength);
    case 'ogg':
      return new OggPageSplitter();
    case 'opaque':
      return { push: (audio) => (audio.length > 0 ? [{ kind: 'frames', bytes: audio }] : []), headers: [] };
  }
}

/** Frame length in bytes of a header at `i` (4 bytes available), or 0 when it is none. */
type FrameLength = (buf: Buffer, i: number) => number;

const MPEG1_BITRATES = [
  [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448], // layer I
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384], // layer II
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320], // layer III
];
const MPEG2_BITRATES = [
  [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256], // layer I
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // layers II and III
];
const SAMPLE_RATES = [44_100, 48_000, 32_000];

/** ISO 11172-3 / 13818-3 frame header: 11 sync bits, version, layer, bitrate, rate, padding. */
export function mpegFrameLength(buf: Buffer, i: number): number {
  const b1 = buf[i + 1]!;
  const b2 = buf[i + 2]!;
  if (buf[i] !== 0xff || (b1 & 0xe0) !== 0xe0) return 0;
  const version = (b1 >> 3) & 3; // 0: 2.5, 2: 2, 3: 1
  const layer = (b1 >> 1) & 3; // 1: III, 2: II, 3: I
  const bitrateIndex = b2 >> 4;
  const rateIndex = (b2 >> 2) & 3;
  if (version === 1 || layer === 0 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) return 0;
  const padding = (b2 >> 1) & 1;
  const mpeg1 = version === 3;
  const kbps = mpeg1 ? MPEG1_BITRATES[3 - layer]![bitrateIndex]! : MPEG2_BITRATES[layer === 3 ? 0 : 1]![bitrateIndex]!;
  const rate = SAMPLE_RATES[rateIndex]! / (version === 3 ? 1 : version === 2 ? 2 : 4);
  if (layer === 3) return (Math.floor((12 * kbps * 1000) / rate) + padding) * 4;
  const perSlot = layer === 1 && !mpeg1 ? 72 : 144;
  return Math.floor((perSlot * kbps * 1000) / rate) + padding;
}

/** ISO 14496-3 ADTS header: 12 sync bits, layer 0, a 13-bit frame length that includes the header. */
export function adtsFrameLength(buf: Buffer, i: number): number {
  const b1 = buf[i + 1]!;
  if (buf[i] !== 0xff || (b1 & 0xf6) !== 0xf0 || i + 6 > buf.length) return 0;
  if (((buf[i + 2]! >> 2) & 0xf) > 12) return 0; // sampling frequency index
  const length = ((buf[i + 3]! & 3) << 11) | (buf[i + 4]! << 3) | (buf[i + 5]! >> 5);
  return length >= 7 ? length : 0;
}

/** MP3 and ADTS: frames found by their header and confirmed by the next one. */
class SyncWordSplitter implements FrameSplitter {
  readonly headers: readonly Buffer[] = [];
  private held: Buffer = Buffer.alloc(0);

  constructor(private readonly frameLength: FrameLength) {}

  push(audio: Buffer): SplitPiece[] {
    const buf = this.held.length === 0 ? audio : Buffer.concat([this.held, audio]);
    let start = -1; // first byte of the run of whole frames found in this call
    let i = 0;
    let end = 0; // end of the last whole, confirmed frame
    while (i + 6 <= buf.length) {
      const len = this.frameLength(buf, i);
      if (len === 0) {
        if (start >= 0) break; // a run ends at a broken frame; the next call resyncs from here
        i++;
        continue;
      }
      const next = i + len;
      if (next + 6 > buf.length) break; // the next header is needed to confirm this frame
      if (this.frameLength(buf, next) === 0) {
        if (start >= 0) {
          // The frame before was confirmed by this one; this one is not: resync after it.
          break;
        }
        i++;
        continue;
      }
      if (start < 0) start = i;
      i = next;
      end = next;
    }
    // Bytes before the first frame found (garbage) go; the unconfirmed tail is held.
    const keepFrom = start >= 0 ? end : Math.max(0, Math.min(i, buf.length - 5));
    this.held = Buffer.from(buf.subarray(keepFrom));
    return start >= 0 && end > start ? [{ kind: 'frames', bytes: buf.subarray(start, end) }] : [];
  }
}

const OGG_HEADER = 27;
const OGG_BOS = 0x02;

/** Ogg pages ("OggS", version 0, a segment table giving the body size). */
class OggPageSplitter implements FrameSplitter {
  headers: Buffer[] = [];
  /** True while the current chain's header pages are still arriving. */
  private inHeaders = false;
  private held: Buffer = Buffer.alloc(0);

  push(audio: Buffer): SplitPiece[] {
    const buf = this.held.length === 0 ? audio : Buffer.concat([this.held, audio]);
    const out: SplitPiece[] = [];
    let pages: Buffer[] = [];
    let kind: SplitPiece['kind'] = 'frames';
    const flush = (): void => {
      if (pages.length > 0) out.push({ kind, bytes: pages.length === 1 ? pages[0]! : Buffer.concat(pages) });
      pages = [];
    };
    let i = 0;
    while (i + OGG_HEADER <= buf.length) {
      if (buf.readUInt32BE(i) !== 0x4f676753 || buf[i + 4] !== 0) {
        const next = buf.indexOf('OggS', i + 1, 'latin1');
        i = next < 0 ? Math.max(i + 1, buf.length - 3) : next;
        continue;
      }
      const segments = buf[i + 26]!;
      if (i + OGG_HEADER + segments > buf.length) break;
      let size = OGG_HEADER + segments;
      for (let s = 0; s < segments; s++) size += buf[i + OGG_HEADER + s]!;
      if (i + size > buf.length) break;
      const page = buf.subarray(i, i + size);
      const pageKind = this.isHeaderPage(page) ? 'headers' : 'frames';
      if (pageKind === 'headers') this.headers.push(Buffer.from(page));
      if (pageKind !== kind) flush();
      kind = pageKind;
      pages.push(page);
      i += size;
    }
    flush();
    this.held = Buffer.from(buf.subarray(i));
    return out;
  }

  /** BOS pages open a chain (a new set of headers); granule-0 pages right after them belong to it. */
  private isHeaderPage(page: Buffer): boolean {
    if ((page[5]! & OGG_BOS) !== 0) {
      if (!this.inHeaders) this.headers = [];
      this.inHeaders = true;
      return true;
    }
    if (this.inHeaders) {
      const granule = page.readBigUInt64LE(6);
      if (granule === 0n || granule === 0xffffffffffffffffn) return true;
      this.inHeaders = false;
    }
    return false;
  }
}
