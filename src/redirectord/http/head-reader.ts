/**
 * Collects a request or response head from a socket's chunks with work proportional to the
 * bytes received. Pure. Every chunk is examined once: the search for the blank line ending the
 * head resumes where the previous chunk left it (two bytes back, where a terminator split
 * across chunks may begin), and the bytes are appended to a buffer that doubles when full.
 * Re-parsing from byte 0 on every chunk made a 16 KiB head sent in 2-byte pieces cost over half
 * a second of CPU, on the event loop that also answers DNS.
 */

const LF = 0x0a;
const CR = 0x0d;

export type HeadProgress =
  /** The head has not ended yet and is still within the limit. */
  | { kind: 'incomplete' }
  /** More than the limit arrived without the end of the head. */
  | { kind: 'too-large' }
  /** The head ends at `headEnd`; `bytes` holds it and whatever followed it. */
  | { kind: 'complete'; bytes: Buffer; headEnd: number };

export class HeadReader {
  private store: Buffer;
  private length: number;
  /** Leading blank lines (allowed before a request line) end here once `started`. */
  private start = 0;
  private started = false;
  /** Where the search for the terminating blank line resumes. */
  private scanFrom = 0;
  /** Bytes looked at so far, for tests that bound the work done per byte received. */
  examined = 0;

  /** `initial`: bytes already read (e.g. pipelined behind the previous request); not copied. */
  constructor(
    private readonly maxBytes: number,
    initial: Buffer = Buffer.alloc(0),
  ) {
    this.store = initial;
    this.length = initial.length;
  }

  /** Everything received so far (a view, valid until the next push). */
  bytes(): Buffer {
    return this.store.subarray(0, this.length);
  }

  get size(): number {
    return this.length;
  }

  /** Offset of the first byte after leading blank lines, or -1 while only blanks arrived. */
  firstByte(): number {
    this.skipLeadingBlanks();
    return this.started ? this.start : -1;
  }

  push(chunk: Buffer): HeadProgress {
    this.append(chunk);
    return this.progress();
  }

  /** The state of the bytes held, without new input (e.g. for the initial bytes). */
  progress(): HeadProgress {
    const end = this.findEnd();
    if (end >= 0) return { kind: 'complete', bytes: this.bytes(), headEnd: end };
    return this.length > this.maxBytes ? { kind: 'too-large' } : { kind: 'incomplete' };
  }

  private append(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const needed = this.length + chunk.length;
    if (needed > this.store.length) {
      // Capacity grows geometrically, so copying stays linear in the bytes received. Nothing
      // beyond the limit (and one chunk) is ever kept.
      const grown = Buffer.allocUnsafe(Math.max(needed, Math.min(this.store.length * 2, this.maxBytes + chunk.length), 256));
      this.store.copy(grown, 0, 0, this.length);
      this.store = grown;
    }
    chunk.copy(this.store, this.length);
    this.length = needed;
  }

  private skipLeadingBlanks(): void {
    while (!this.started && this.start < this.length) {
      const c = this.store[this.start]!;
      this.examined++;
      if (c !== CR && c !== LF) this.started = true;
      else this.start++;
    }
  }

  private findEnd(): number {
    this.skipLeadingBlanks();
    if (!this.started) return -1;
    const buf = this.store.subarray(0, this.length);
    let i = Math.max(this.start, this.scanFrom);
    for (;;) {
      const lf = buf.indexOf(LF, i);
      if (lf < 0) {
        this.examined += this.length - i;
        break;
      }
      this.examined += lf + 1 - i;
      if (lf + 1 < this.length && buf[lf + 1] === LF) return lf + 2;
      if (lf + 2 < this.length && buf[lf + 1] === CR && buf[lf + 2] === LF) return lf + 3;
      i = lf + 1;
      if (lf + 2 >= this.length) break;
    }
    // A terminator split across chunks begins at most two bytes before the end.
    this.scanFrom = Math.max(this.start, this.length - 2);
    return -1;
  }
}
