/**
 * One listener's ICY framing: audio bytes with a metadata block after every `metaint` of them.
 * Pure. The block is the current title when it changed since this listener last got one (a
 * new listener gets it at its first block), else a single zero byte (L = 0, "no change"), as
 * Icecast does. Audio goes out as views of the shared chunks, never copied.
 */
export class IcyFramer {
  private audioLeft: number;
  private sent: Buffer | undefined;

  constructor(private readonly metaint: number) {
    if (!Number.isInteger(metaint) || metaint <= 0) throw new RangeError(`bad metaint ${metaint}`);
    this.audioLeft = metaint;
  }

  /** `metadata`: the current block (length byte first), or undefined when there is none yet. */
  frame(audio: Buffer, metadata: Buffer | undefined): Buffer[] {
    if (audio.length < this.audioLeft) {
      this.audioLeft -= audio.length;
      return [audio];
    }
    const out: Buffer[] = [];
    let i = 0;
    while (audio.length - i >= this.audioLeft) {
      out.push(audio.subarray(i, i + this.audioLeft));
      i += this.audioLeft;
      this.audioLeft = this.metaint;
      if (metadata !== undefined && metadata !== this.sent) {
        out.push(metadata);
        this.sent = metadata;
      } else {
        out.push(NO_CHANGE);
      }
    }
    if (i < audio.length) {
      out.push(audio.subarray(i));
      this.audioLeft -= audio.length - i;
    }
    return out;
  }
}

const NO_CHANGE = Buffer.from([0]);
