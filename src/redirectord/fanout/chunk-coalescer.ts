/**
 * Gathers the splitter's runs of whole frames into larger chunks before they go to listeners.
 * Pure. A source sends a frame or two at a time (ffmpeg: about 38 writes a second at 128
 * kbit/s), and each chunk costs one write per listener: gathered to `maxBytes` (or whatever
 * came within the feed's flush interval) a listener costs a few writes a second instead. A
 * gathered chunk starts where its first run did, so on a frame boundary.
 */
export class ChunkCoalescer {
  private pending: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** A run of frames in; out: the gathered chunk once it reached `maxBytes`. */
  push(frames: Buffer): Buffer | undefined {
    this.pending.push(frames);
    this.bytes += frames.length;
    return this.bytes >= this.maxBytes ? this.take() : undefined;
  }

  get empty(): boolean {
    return this.bytes === 0;
  }

  /** Everything gathered so far (undefined when nothing is). */
  take(): Buffer | undefined {
    if (this.bytes === 0) return undefined;
    const chunk = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.bytes);
    this.pending = [];
    this.bytes = 0;
    return chunk;
  }
}
