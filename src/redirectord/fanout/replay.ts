/**
 * Icecast starts every new connection with a burst of the mount's recent audio (64 KiB by
 * default). When a feed re-attaches to the same mount (its connection was cut, the mount kept
 * its source), that burst is audio every listener already heard: up to 4 s at 128 kbit/s played
 * twice. The feed remembers the end of what it sent (`AudioTail`) and, after a re-attach, drops
 * the new upstream's audio up to and including that end (`ReplayTrimmer`). Audio that never
 * contains it (a restarted source, another master's buffer) is new and passes whole. Pure.
 */

/** The last bytes of audio a feed sent, whole frames only, so a continuation starts on a frame. */
export class AudioTail {
  private bytes: Buffer = Buffer.alloc(0);

  constructor(private readonly size = 4096) {}

  push(frame: Buffer): void {
    const joined = Buffer.concat([this.bytes, frame]);
    this.bytes = joined.length > this.size ? joined.subarray(joined.length - this.size) : joined;
  }

  /** Undefined while too short to be told apart from other audio. */
  get value(): Buffer | undefined {
    return this.bytes.length >= this.size ? Buffer.from(this.bytes) : undefined;
  }

  clear(): void {
    this.bytes = Buffer.alloc(0);
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
