import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { mp3Frames } from './front-door-harness.js';

/**
 * A stand-in Icecast speaking the listener protocol, whose behaviour a test switches: MP3 audio
 * (200, four frames every 50 ms), an error answer, a stall (accepts, reads the request, never
 * answers: a dropped port or a stopped Icecast, as its clients see it), or a hang-up (200 and
 * the end at once, with no audio).
 */
export type StandInMode = { kind: 'audio' } | { kind: 'stall' } | { kind: 'status'; status: number } | { kind: 'hangup' };

export class StandIn {
  readonly server: Server;
  mode: StandInMode;
  readonly sockets = new Set<Socket>();
  connections = 0;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(mode: StandInMode) {
    this.mode = mode;
    this.server = createServer((socket) => this.accept(socket));
  }

  /** A stand-in listening on loopback; the caller closes it. */
  static async start(mode: StandInMode, cleanups: (() => Promise<void>)[]): Promise<{ s: StandIn; at: { host: string; port: number } }> {
    const s = new StandIn(mode);
    const at = await s.listen();
    cleanups.push(() => s.close());
    return { s, at };
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return { host: '127.0.0.1', port: (this.server.address() as AddressInfo).port };
  }

  /** Connections open now that got no answer (stalled). */
  get stalled(): number {
    return [...this.sockets].filter((s) => s.bytesWritten === 0).length;
  }

  /** Open connections stop getting audio but stay open: a master cut off by a partition. */
  silence(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
  }

  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.dropAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    this.connections++;
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
    const mode = this.mode;
    socket.once('data', () => {
      if (mode.kind === 'stall') return;
      if (mode.kind === 'status') {
        socket.end(`HTTP/1.0 ${mode.status} Nope\r\nContent-Type: text/plain\r\n\r\nnope`);
        return;
      }
      if (mode.kind === 'hangup') {
        socket.end('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
        return;
      }
      socket.write('HTTP/1.0 200 OK\r\nContent-Type: audio/mpeg\r\n\r\n');
      const timer = setInterval(() => socket.write(mp3Frames(4)), 50);
      this.timers.add(timer);
      socket.once('close', () => {
        clearInterval(timer);
        this.timers.delete(timer);
      });
    });
  }
}

