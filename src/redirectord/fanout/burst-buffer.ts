/**
 * The most recent audio of a mount, for a listener that connects now: Icecast's default burst
 * is 64 KiB, which fills a player's buffer at once so it starts playing without waiting. Pure.
 *
 * It holds whole chunks of the frame splitter, each starting on a frame boundary, so a burst
 * always starts on one; the oldest chunk goes when the rest already makes up the size.
 */
export class BurstBuffer {
  private chunks: Buffer[] = [];
  private bytes = 0;

  constructor(private readonly size = 65_536) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.length;
    while (this.chunks.length > 1 && this.bytes - this.chunks[0]!.length >= this.size) {
      this.bytes -= this.chunks.shift()!.length;
    }
  }

  /** What a new listener gets first, oldest first. */
  contents(): readonly Buffer[] {
    return this.chunks.slice();
  }

  get length(): number {
    return this.bytes;
  }

  clear(): void {
    this.chunks = [];
    this.bytes = 0;
  }
}
