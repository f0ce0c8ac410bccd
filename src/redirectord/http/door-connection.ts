import type { Socket } from 'node:net';
import { HeadReader, type HeadProgress } from './head-reader.js';
import { looksLikeRequestStart, parseRequestHead, type RequestHead } from './request-head.js';
import { answerAndClose } from './sockets.js';
import { plainResponse } from './stream-response.js';

/** How long each phase of a front-door connection may take, and how big a head may be. */
export interface ConnectionTimes {
  maxHeadBytes: number;
  /** A new connection's head. */
  headTimeoutMs: number;
  /** A kept-alive connection's next head (it may also just end). */
  keepAliveTimeoutMs: number;
  /** A kept-alive client to read the answer it was sent. */
  sendTimeoutMs: number;
}

/** What a connection asks of the front door. */
export interface ConnectionOwner {
  /** A head arrived: the owner answers (answerAndContinue, close) or hands the socket off. */
  onHead(conn: DoorConnection, bytes: Buffer, head: RequestHead): void;
  /** Not HTTP or not a head node:http would read like ours: the HTTP server answers. */
  onNotOurs(conn: DoorConnection, bytes: Buffer): void;
  /** The connection's cost class may have changed (see `costClass`). */
  onCostChange(conn: DoorConnection): void;
  /** The connection is rejected (metrics; `idle` timeouts are not rejections). */
  onRejected(conn: DoorConnection, reason: string): void;
  onClosed(conn: DoorConnection): void;
}

/**
 * One connection while the front door owns it. Its socket events are wired once, here; what an
 * event does depends on the phase:
 *
 * | phase     | meaning                                         | leaves for                                      |
 * | --------- | ----------------------------------------------- | ----------------------------------------------- |
 * | reading   | a head is arriving (`keptAlive`: after an answer) | answering / handed-off / closing (head read), closing (timeout, too large, EOF) |
 * | answering | an answer was written; the next head waits its turn (next tick, or `drain` when the client is not reading) | reading, closing (send timeout) |
 * | handed-off| a stream, source or the HTTP server owns the socket | closed                                      |
 * | closing   | a final answer is being flushed                 | closed                                          |
 * | closed    | the socket is gone                              | -                                               |
 *
 * The socket is paused in every phase but `reading`, so pipelined input waits in the kernel,
 * which bounds it. 'error' and 'close' stay wired to the end: no socket is ever without an
 * error listener, whoever owns it.
 */
export type Phase =
  | { kind: 'reading'; reader: HeadReader; keptAlive: boolean }
  | { kind: 'answering'; rest: Buffer }
  | { kind: 'handed-off' }
  | { kind: 'closing' }
  | { kind: 'closed' };

export class DoorConnection {
  private phase: Phase = { kind: 'closed' };
  private timer: NodeJS.Timeout | undefined;
  /** The client sent its FIN; what it sent before still counts. */
  private peerEnded = false;
  /** Whether the current head follows an earlier answer on this connection. */
  keptAlive = false;

  private readonly onData = (chunk: Buffer): void => this.received(chunk);
  private readonly onEnd = (): void => this.ended();
  private readonly onDrain = (): void => this.drained();

  constructor(
    readonly socket: Socket,
    private readonly times: ConnectionTimes,
    private readonly owner: ConnectionOwner,
  ) {
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('drain', this.onDrain);
    socket.on('error', () => this.failed());
    socket.on('close', () => this.closed());
  }

  get phaseKind(): Phase['kind'] {
    return this.phase.kind;
  }

  /** What the connection costs while the front door owns it (handed off: the owner decides). */
  costClass(): 'head' | 'kept' | 'refused' | undefined {
    const phase = this.phase;
    switch (phase.kind) {
      case 'reading':
        return phase.keptAlive && phase.reader.size === 0 ? 'kept' : 'head';
      case 'answering':
        return 'kept';
      case 'closing':
        return 'refused';
      default:
        return undefined;
    }
  }

  /** Starts reading the first head. */
  start(): void {
    this.read(Buffer.alloc(0), false);
  }

  /** Writes an answer and reads the next head on the same connection (HTTP keep-alive). */
  answerAndContinue(answer: Buffer, rest: Buffer): void {
    if (this.socket.destroyed) return;
    const flushed = this.socket.write(answer);
    if (flushed && rest.length === 0) {
      this.read(rest, true);
      return;
    }
    // Pipelined requests are taken one per turn of the event loop, so one connection cannot
    // hold the others up; a client that does not read its answers is sent no more, and gets
    // `sendTimeoutMs` to read before it is dropped.
    this.enter({ kind: 'answering', rest });
    if (flushed) {
      setImmediate(() => {
        // `rest` may have grown by a chunk that was already on its way when the socket paused.
        if (this.phase.kind === 'answering') this.read(this.phase.rest, true);
      });
    } else {
      this.arm(this.times.sendTimeoutMs, () => {
        this.owner.onRejected(this, 'send_timeout');
        this.socket.destroy();
      });
    }
  }

  /** A final answer; the connection closes after it. */
  answerAndClose(answer: Buffer, graceMs?: number): void {
    this.enter({ kind: 'closing' });
    answerAndClose(this.socket, answer, graceMs);
  }

  /**
   * Someone else owns the socket from now on (its 'error' and 'close' listeners stay as a
   * safety net and for the bookkeeping). `bytes` go back into the socket for the new owner.
   */
  handOff(): void {
    this.enter({ kind: 'handed-off' });
    this.socket.removeListener('data', this.onData);
    this.socket.removeListener('end', this.onEnd);
    this.socket.removeListener('drain', this.onDrain);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(initial: Buffer, keptAlive: boolean): void {
    this.keptAlive = keptAlive;
    const reader = new HeadReader(this.times.maxHeadBytes, initial);
    const phase: Phase = { kind: 'reading', reader, keptAlive };
    this.enter(phase);
    const idle = keptAlive && initial.length === 0;
    this.arm(idle ? this.times.keepAliveTimeoutMs : this.times.headTimeoutMs, () => {
      if (!(idle && reader.size === 0)) this.owner.onRejected(this, 'head_timeout');
      this.socket.destroy();
    });
    if (initial.length > 0) this.inspect(reader, reader.progress());
    // The head may have been answered meanwhile, and the next one be read already.
    if (this.phase !== phase) return;
    if (this.peerEnded) this.endWhileReading(reader);
    else this.socket.resume();
  }

  private received(chunk: Buffer): void {
    const phase = this.phase;
    if (phase.kind === 'reading') this.inspect(phase.reader, phase.reader.push(chunk));
    // Other phases keep the socket paused; a chunk already on its way is kept for later.
    else if (phase.kind === 'answering') phase.rest = Buffer.concat([phase.rest, chunk]);
  }

  private inspect(reader: HeadReader, progress: HeadProgress): void {
    const first = reader.firstByte();
    if (first >= 0 && !looksLikeRequestStart(reader.bytes(), first)) {
      this.notOurs(reader.bytes());
      return;
    }
    if (progress.kind === 'incomplete') {
      // An idle keep-alive that starts sending is a head in progress from now on.
      if (this.keptAlive) this.owner.onCostChange(this);
      return;
    }
    if (progress.kind === 'too-large') {
      this.tooLarge();
      return;
    }
    const parsed = parseRequestHead(progress.bytes);
    if (parsed.kind === 'incomplete') return; // cannot happen: the reader found the end
    if (parsed.kind === 'invalid') {
      this.notOurs(progress.bytes);
      return;
    }
    if (parsed.head.headEnd > this.times.maxHeadBytes) {
      this.tooLarge();
      return;
    }
    this.pause();
    this.owner.onHead(this, progress.bytes, parsed.head);
  }

  private notOurs(bytes: Buffer): void {
    this.pause();
    this.owner.onNotOurs(this, bytes);
  }

  private tooLarge(): void {
    this.owner.onRejected(this, 'head_too_large');
    this.answerAndClose(plainResponse(431, 'Request head too large.'), 500);
  }

  private ended(): void {
    this.peerEnded = true;
    if (this.phase.kind === 'reading') this.endWhileReading(this.phase.reader);
  }

  private endWhileReading(reader: HeadReader): void {
    // A kept-alive client that is done: whatever it was answered still goes out. A head cut
    // short is not answered.
    if (this.keptAlive && reader.size === 0) this.answerAndClose(Buffer.alloc(0));
    else this.socket.destroy();
  }

  private drained(): void {
    const phase = this.phase;
    if (phase.kind === 'answering') this.read(phase.rest, true);
  }

  private failed(): void {
    if (this.phase.kind === 'reading' || this.phase.kind === 'answering') this.socket.destroy();
  }

  private closed(): void {
    this.enter({ kind: 'closed' });
    this.owner.onClosed(this);
  }

  private pause(): void {
    this.clearTimer();
    this.socket.pause();
  }

  private enter(phase: Phase): void {
    this.clearTimer();
    if (phase.kind !== 'reading') this.socket.pause();
    this.phase = phase;
    if (phase.kind !== 'closed' && phase.kind !== 'handed-off') this.owner.onCostChange(this);
  }

  private arm(ms: number, onTimeout: () => void): void {
    this.clearTimer();
    this.timer = setTimeout(onTimeout, ms);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
