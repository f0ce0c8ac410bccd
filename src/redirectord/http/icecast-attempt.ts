import { connect, type Socket } from 'node:net';
import { errorMessage } from '../../common/errors.js';
import type { ConnectGate, GateRefusal } from './connect-gate.js';
import { HeadReader } from './head-reader.js';
import type { HostPort } from '../../coordination/host-port.js';
import { parseResponseHead, type ResponseHead } from './stream-response.js';

/** What an attempt reports to its stream session; each is called at most once per attempt, but onBody. */
export interface AttemptEvents {
  /** Icecast answered: `rest` is the body that came with the head. */
  onHead(attempt: IcecastAttempt, head: ResponseHead, raw: Buffer, rest: Buffer): void;
  onBody(attempt: IcecastAttempt, chunk: Buffer): void;
  /** The attempt ended: before the head (no answer) or after it (the body ended). */
  onFailed(attempt: IcecastAttempt, reason: string, kind: 'timeout' | 'refused' | 'error'): void;
}

/**
 * One connection to the local Icecast for one listener, through the connect gate:
 * `queued` -> `connecting` (slot held until Icecast's head arrived) -> `body` -> `over`.
 * Every socket event is wired once, in `open`, and ignored once the attempt is over.
 */
export class IcecastAttempt {
  private state: 'queued' | 'connecting' | 'body' | 'over' = 'queued';
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private leaveGate: () => void = () => {};

  constructor(
    private readonly upstream: HostPort,
    private readonly request: Buffer,
    /**
     * `bodyIdleTimeoutMs`: a body that stays silent this long ends the attempt (a hung Icecast
     * still holds the connection open); unset, the body may pause for ever.
     */
    private readonly o: { headTimeoutMs: number; maxHeadBytes: number; gate?: ConnectGate; bodyIdleTimeoutMs?: number },
    private readonly events: AttemptEvents,
  ) {}

  start(): void {
    const gate = this.o.gate;
    if (!gate) {
      this.open(() => {});
      return;
    }
    this.leaveGate = gate.enter(
      (release) => this.open(release),
      (why: GateRefusal) => this.fail(`connect queue ${why}`, 'refused'),
    );
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** Ends the attempt without a report. */
  close(): void {
    this.state = 'over';
    this.cleanup();
  }

  private open(release: () => void): void {
    if (this.state !== 'queued') {
      release();
      return;
    }
    this.state = 'connecting';
    this.leaveGate = release;
    const sock = connect({ host: this.upstream.host, port: this.upstream.port });
    this.socket = sock;
    sock.setNoDelay(true);
    const reader = new HeadReader(this.o.maxHeadBytes);
    this.timer = setTimeout(() => this.fail('upstream head timeout', 'timeout'), this.o.headTimeoutMs);
    sock.on('connect', () => sock.write(this.request));
    sock.on('data', (chunk: Buffer) => this.received(reader, chunk));
    sock.on('error', (err) => this.fail(`upstream error: ${errorMessage(err)}`, 'error'));
    sock.on('close', () => this.fail('upstream closed', 'error'));
  }

  private received(reader: HeadReader, chunk: Buffer): void {
    if (this.state === 'body') {
      this.events.onBody(this, chunk);
      return;
    }
    if (this.state !== 'connecting') return;
    const progress = reader.push(chunk);
    if (progress.kind === 'incomplete') return;
    if (progress.kind === 'too-large') {
      this.fail('upstream head too large', 'error');
      return;
    }
    const parsed = parseResponseHead(progress.bytes);
    if (parsed.kind !== 'complete') {
      this.fail(`upstream answer unreadable: ${parsed.kind === 'invalid' ? parsed.reason : 'incomplete'}`, 'error');
      return;
    }
    clearTimeout(this.timer);
    this.leaveGate();
    this.state = 'body';
    if (this.o.bodyIdleTimeoutMs !== undefined) {
      this.socket?.setTimeout(this.o.bodyIdleTimeoutMs, () => this.fail('upstream silent', 'timeout'));
    }
    const head = parsed.head;
    this.events.onHead(this, head, progress.bytes.subarray(0, head.headEnd), progress.bytes.subarray(head.headEnd));
  }

  private fail(reason: string, kind: 'timeout' | 'refused' | 'error'): void {
    if (this.state === 'over') return;
    this.state = 'over';
    this.cleanup();
    this.events.onFailed(this, reason, kind);
  }

  private cleanup(): void {
    clearTimeout(this.timer);
    this.leaveGate();
    this.socket?.destroy();
  }
}
