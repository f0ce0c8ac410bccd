/**
 * Splits an upstream body with ICY metadata (`icy-metaint: N`: N audio bytes, one length byte L,
 * L*16 metadata bytes, N audio bytes, ...) into audio and metadata blocks. Pure.
 *
 * Audio comes out as views of the input (no copies); a metadata block comes out whole, its
 * length byte included, ready to be written as is to a listener. Empty blocks (L = 0, "no
 * change") are not reported.
 */
export interface Deframed {
  audio: Buffer[];
  /** Complete non-empty metadata blocks, length byte first, in stream order. */
  metadata: Buffer[];
}

export class IcyDeframer {
  private audioLeft: number;
  /** Bytes of the metadata block being read (length byte included); -1 between blocks. */
  private metaLength = -1;
  private meta: Buffer[] = [];
  private metaGot = 0;

  /** `metaint` undefined: the upstream sends no metadata, every byte is audio. */
  constructor(private readonly metaint: number | undefined) {
    this.audioLeft = metaint ?? Infinity;
  }

  push(chunk: Buffer): Deframed {
    const out: Deframed = { audio: [], metadata: [] };
    let i = 0;
    while (i < chunk.length) {
      if (this.metaLength < 0 && this.audioLeft > 0) {
        const n = Math.min(this.audioLeft, chunk.length - i);
        out.audio.push(n === chunk.length ? chunk : chunk.subarray(i, i + n));
        this.audioLeft -= n;
        i += n;
        continue;
      }
      if (this.metaLength < 0) {
        this.metaLength = 1 + chunk[i]! * 16;
        this.meta = [];
        this.metaGot = 0;
      }
      const n = Math.min(this.metaLength - this.metaGot, chunk.length - i);
      this.meta.push(chunk.subarray(i, i + n));
      this.metaGot += n;
      i += n;
      if (this.metaGot === this.metaLength) {
        if (this.metaLength > 1) out.metadata.push(Buffer.concat(this.meta));
        this.metaLength = -1;
        this.meta = [];
        this.audioLeft = this.metaint!;
      }
    }
    return out;
  }
}

/** `StreamTitle='x';` of a metadata block (length byte first), or undefined. */
export function streamTitle(block: Buffer): string | undefined {
  const text = block.subarray(1).toString('utf8').replace(/\0+$/, '');
  const m = /StreamTitle='(.*?)';/s.exec(text);
  return m ? m[1] : undefined;
}
