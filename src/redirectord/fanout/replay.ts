/**
 * Icecast starts every new connection with a burst of the mount's recent audio (64 KiB by
 * default). When a feed re-attaches to the same mount (its connection was cut, the mount kept
 * its source), that burst is audio every listener already heard: up to 4 s at 128 kbit/s played
 * twice. The feed remembers the end of what it sent (`AudioTail`) and, after a re-attach, drops
 * the new upstream's audio up to and including that end (`ReplayTrimmer`). Audio that never
 * contains it (a restarted source, another master's buffer) is new and passes whole. Pure.
 */

/**
 * The last bytes of audio a feed sent, whole frames only, so a continuation starts on a frame.
 * The end it offers must be distinctive: a tail that also occurs earlier in the recent audio
 * (digital silence, a looped jingle) could match new audio anywhere, and trimming up to such a
 * match would drop audio nobody heard. Then it offers none, and nothing is trimmed.
 */
export class AudioTail {
  private frames: Buffer[] = [];
  private bytes = 0;

  /**
   * @param size how much of the end is looked for in a new upstream
   * @param window how much recent audio the end must be unique in (Icecast's burst and more)
   */
  constructor(
    private readonly size = 4096,
    private readonly window = 65_536 + 16_384,
  ) {}

  push(frame: Buffer): void {
    this.frames.push(frame);
    this.bytes += frame.length;
    while (this.frames.length > 1 && this.bytes - this.frames[0]!.length >= this.window) this.bytes -= this.frames.shift()!.length;
  }

  /** Undefined while too short to be told apart from other audio, or when not unique. */
  get value(): Buffer | undefined {
    if (this.bytes < this.size) return undefined;
    const recent = Buffer.concat(this.frames, this.bytes);
    const tail = recent.subarray(recent.length - this.size);
    return recent.indexOf(tail) === recent.length - this.size ? Buffer.from(tail) : undefined;
  }

  clear(): void {
    this.frames = [];
    this.bytes = 0;
  }
}

/**
 * States: `searching` holds the new upstream's audio while it may still be a replay; `passing`
 * lets everything through. Searching ends when the tail is found (what follows it passes), when
 * more was held than any burst holds (nothing was a replay), or when the feed gives up waiting
 * (`release`, on a timer: a fresh mount may send less than a burst).
 */
type TrimState = { kind: 'searching'; held: Buffer[]; bytes: number } | { kind: 'passing' };

export class ReplayTrimmer {
  private state: TrimState;
  /** Audio dropped because the listeners had it already. */
  replayedBytes = 0;

  /**
   * @param tail what the listeners heard last (undefined: nothing to trim)
   * @param maxReplayBytes no replay is longer: Icecast's burst plus its frame rounding
   */
  constructor(
    private readonly tail: Buffer | undefined,
    private readonly maxReplayBytes = 65_536 + 16_384,
  ) {
    this.state = tail ? { kind: 'searching', held: [], bytes: 0 } : { kind: 'passing' };
  }

  get searching(): boolean {
    return this.state.kind === 'searching';
  }

  /** New upstream audio in; what may go on to the listeners out. */
  push(piece: Buffer): Buffer[] {
    const s = this.state;
    if (s.kind === 'passing') return [piece];
    s.held.push(piece);
    s.bytes += piece.length;
    const held = Buffer.concat(s.held);
    s.held = [held];
    const at = held.indexOf(this.tail!);
    if (at >= 0) {
      this.state = { kind: 'passing' };
      this.replayedBytes = at + this.tail!.length;
      const rest = held.subarray(this.replayedBytes);
      return rest.length > 0 ? [rest] : [];
    }
    if (s.bytes > this.maxReplayBytes + this.tail!.length) return this.release();
    return [];
  }

  /** Stop searching: whatever is held is new audio. */
  release(): Buffer[] {
    const s = this.state;
    this.state = { kind: 'passing' };
    return s.kind === 'searching' && s.bytes > 0 ? [Buffer.concat(s.held)] : [];
  }
}
