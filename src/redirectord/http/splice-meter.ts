import type { Socket } from 'node:net';
import type { Metrics } from '../../common/metrics.js';

export type SpliceKind = 'source' | 'stream' | 'relay';

/**
 * Bytes spliced per client socket ("in" = from the client, "out" = to it), sent as deltas once
 * a second and when the session ends: a metric call per audio chunk would cost more than the
 * splice itself.
 */
export class SpliceMeter {
  private readonly spliced = new Map<Socket, { kind: SpliceKind; read: number; written: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly metrics: Metrics) {
    this.timer = setInterval(() => {
      for (const socket of this.spliced.keys()) this.flush(socket, true);
    }, 1000);
    this.timer.unref();
  }

  track(socket: Socket, kind: SpliceKind): void {
    this.spliced.set(socket, { kind, read: 0, written: 0 });
  }

  /** Sends what the socket moved since the last flush; `keep`: it goes on being tracked. */
  flush(socket: Socket, keep = false): void {
    const c = this.spliced.get(socket);
    if (!c) return;
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    if (read > c.read) this.metrics.increment('front_door.bytes', read - c.read, { kind: c.kind, direction: 'in' });
    if (written > c.written) this.metrics.increment('front_door.bytes', written - c.written, { kind: c.kind, direction: 'out' });
    c.read = read;
    c.written = written;
    if (!keep) this.spliced.delete(socket);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
