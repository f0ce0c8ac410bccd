/**
 * Keeps a listener's ICY metadata framing intact across upstream reconnects. Pure.
 *
 * With `icy-metaint: N` the body is N audio bytes, one length byte L, L*16 metadata bytes,
 * N audio bytes, ... A fresh upstream response restarts that cycle at zero while the listener
 * is somewhere in the middle of its own cycle, so after a reconnect the upstream is parsed into
 * audio and metadata and re-framed with the listener's original interval. Until the first
 * reconnect both cycles coincide and chunks pass through unchanged (no copies).
 */
export class IcyReframer {
  /** Audio bytes the listener still gets before its next metadata block. */
  private clientAudioLeft: number;
  /** Upstream parse state. */
  private upMetaint: number | undefined;
  private upAudioLeft: number;
  private upMetaLen = -1; // -1: not inside a metadata block
  private upMeta: Buffer[] = [];
  private upMetaGot = 0;
  /** True until the first restart: upstream framing equals the listener's framing. */
  private aligned = true;
  /** Latest complete upstream metadata block (length byte included) not yet sent on. */
  private pendingMeta: Buffer | undefined;
  /** Metadata bytes the listener was promised (by a length byte) but the old upstream never sent. */
  private clientMetaOwed = 0;

  constructor(private readonly metaint: number) {
    if (!Number.isInteger(metaint) || metaint <= 0) throw new RangeError(`bad metaint ${metaint}`);
    this.clientAudioLeft = metaint;
    this.upMetaint = metaint;
    this.upAudioLeft = metaint;
  }

  /** A new upstream body begins (its metaint, or undefined when it carries no metadata). */
  restartUpstream(upstreamMetaint: number | undefined): void {
    if (this.aligned && this.upMetaLen >= 0) {
      this.clientMetaOwed = this.upMetaLen - this.upMetaGot;
      this.clientAudioLeft = this.metaint;
    }
    this.aligned = false;
    this.upMetaint = upstreamMetaint !== undefined && upstreamMetaint > 0 ? upstreamMetaint : undefined;
    this.upAudioLeft = this.upMetaint ?? Infinity;
    this.upMetaLen = -1;
    this.upMeta = [];
    this.upMetaGot = 0;
  }

  /** Upstream body bytes in, listener bytes out. */
  push(chunk: Buffer): Buffer[] {
    if (this.aligned) {
      this.track(chunk);
      return [chunk];
    }
    const out: Buffer[] = [];
    if (this.clientMetaOwed > 0) {
      // NUL padding ends the cut-off title early but keeps the listener's framing.
      out.push(Buffer.alloc(this.clientMetaOwed));
      this.clientMetaOwed = 0;
    }
    this.parse(chunk, (audio) => this.emitAudio(audio, out));
    return out;
  }

  /** Aligned mode: follow the cycle by arithmetic only. */
  private track(chunk: Buffer): void {
    this.parse(chunk, () => {});
    this.clientAudioLeft = this.upAudioLeft;
  }

  private parse(chunk: Buffer, onAudio: (audio: Buffer) => void): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.upMetaLen < 0) {
        if (this.upAudioLeft > 0) {
          const n = Math.min(this.upAudioLeft, chunk.length - i);
          onAudio(chunk.subarray(i, i + n));
          this.upAudioLeft -= n;
          i += n;
          continue;
        }
        // Length byte.
        this.upMetaLen = chunk[i]! * 16;
        this.upMeta = [chunk.subarray(i, i + 1)];
        this.upMetaGot = 0;
        i += 1;
      } else {
        const n = Math.min(this.upMetaLen - this.upMetaGot, chunk.length - i);
        if (n > 0) {
          if (!this.aligned) this.upMeta.push(chunk.subarray(i, i + n));
          this.upMetaGot += n;
          i += n;
        }
      }
      if (this.upMetaLen >= 0 && this.upMetaGot === this.upMetaLen) {
        if (!this.aligned && this.upMetaLen > 0) this.pendingMeta = Buffer.concat(this.upMeta);
        this.upMetaLen = -1;
        this.upMeta = [];
        this.upAudioLeft = this.upMetaint!;
      }
    }
  }

  private emitAudio(audio: Buffer, out: Buffer[]): void {
    let i = 0;
    while (i < audio.length) {
      const n = Math.min(this.clientAudioLeft, audio.length - i);
      out.push(audio.subarray(i, i + n));
      this.clientAudioLeft -= n;
      i += n;
      if (this.clientAudioLeft === 0) {
        out.push(this.pendingMeta ?? ZERO);
        this.pendingMeta = undefined;
        this.clientAudioLeft = this.metaint;
      }
    }
  }
}

const ZERO = Buffer.from([0]);

/** Reads a usable icy-metaint header value. */
export function parseMetaint(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,7}$/.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n > 0 ? n : undefined;
}
