import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import { sameHostPort, type HostPort } from '../../coordination/host-port.js';
import { clientSilent, continuesHold, Hold } from './source-hold.js';
import { readSourceReply } from './source-reply.js';
import { plainResponse } from './stream-response.js';
import { answerAndClose } from './sockets.js';

export interface SourceSessionSettings {
  log: Logger;
  metrics: Metrics;
  /** The client's request head exactly as sent, when the session may be held; else undefined. */
  replayHead: Buffer | undefined;
  /** The current master's Icecast, read again on every re-attach attempt. */
  master: () => HostPort | undefined;
  connectTimeoutMs: number;
  /** Grace for flushing the last bytes to one side once the other has gone. */
  lingerMs: number;
  /** Time a client gets to take Icecast's answer before the splice gives up on it. */
  clientStallMs: number;
  holdMs: number;
  reattachIntervalMs: number;
  reattachConnectTimeoutMs: number;
  reattachReplyTimeoutMs: number;
}

/*
 * States and transitions (anything not listed is ignored, e.g. events of a socket the current
 * state no longer owns):
 *
 *   state         | event                                   | next
 *   --------------+-----------------------------------------+------------------------------------
 *   connecting    | upstream connected                      | splicing (client bytes sent, client read),
 *                 |                                         |   or draining if the client sent its FIN
 *                 | upstream error / connect timeout        | closed (503 to the client)
 *   splicing      | Icecast's 200 to a holdable request     | streaming
 *                 | upstream FIN, error or close            | draining (FIN forwarded to the client)
 *   streaming     | upstream lost, client still sending     | reattaching, or held when it continues
 *                 |                                         |   the hold that just attached it
 *                 | upstream lost, client silent            | draining
 *                 | master moved                            | reattaching (a new hold)
 *   reattaching   | 200 from the Icecast that is master     | streaming
 *                 | any other answer, loss or timeout       | held, or closed once the hold is over
 *                 | master moved elsewhere                  | reattaching (to the new master)
 *   held          | retry timer, master moved               | reattaching, or held (no master known)
 *                 | deadline passed / client silent         | closed
 *   splicing,     | client FIN                              | draining (FIN forwarded to Icecast)
 *     streaming   |                                         |
 *   draining      | other side done / linger timer          | closed
 *   held,         | client FIN                              | closed (nothing left to hold for)
 *     reattaching |                                         |
 *   any           | client error or close, close()          | closed
 *   connecting,   | master moved                            | closed (the client reconnects)
 *     splicing,   |                                         |
 *     draining    |                                         |
 *
 * Each state owns its sockets and timers: entering a state clears the timers of the one it
 * leaves and destroys its sockets that the new state does not take over. Nothing is ever
 * written to a held or re-attaching client.
 */

interface Attempt {
  socket: Socket;
  to: HostPort;
  phase: 'connecting' | 'awaiting-reply';
  /** Icecast's answer so far. */
  answer: Buffer;
  /** Connect timeout, then reply timeout. */
  timer: NodeJS.Timeout;
}

type State =
  /** `clientEnded`: the client half-closed right behind its head; Icecast gets that FIN too. */
  | { name: 'connecting'; upstream: Socket; timer: NodeJS.Timeout; clientEnded: boolean }
  /** Icecast's dialogue; `reply` is its first answer so far while the session may become holdable. */
  | { name: 'splicing'; upstream: Socket; reply: Buffer | undefined }
  /** `replayed`: the upstream got a replayed head, and its answers are not the client's. */
  | { name: 'streaming'; upstream: Socket; replayed: boolean; attachedAt: number; endedHold: Hold | undefined }
  | { name: 'reattaching'; hold: Hold; attempt: Attempt }
  | { name: 'held'; hold: Hold; retry: NodeJS.Timeout }
  /** `replayed`: as in streaming; a client that half-closed after a re-attach gets no answer either. */
  | { name: 'draining'; upstream: Socket; timer: NodeJS.Timeout; replayed: boolean }
  | { name: 'closed' };

function socketsOf(s: State): Socket[] {
  switch (s.name) {
    case 'connecting':
    case 'splicing':
    case 'streaming':
    case 'draining':
      return [s.upstream];
    case 'reattaching':
      return [s.attempt.socket];
    case 'held':
    case 'closed':
      return [];
  }
}

function timerOf(s: State): NodeJS.Timeout | undefined {
  switch (s.name) {
    case 'connecting':
    case 'draining':
      return s.timer;
    case 'reattaching':
      return s.attempt.timer;
    case 'held':
      return s.retry;
    default:
      return undefined;
  }
}

const now = (): number => performance.now();

/**
 * One source client spliced to the master's Icecast, held across a loss of that Icecast when
 * it streams MP3/AAC (see `proxySource`).
 */
export class SourceSession {
  readonly closed: Promise<void>;
  #state: State;
  #target: HostPort;
  #lastClientDataAt = now();
  /** Armed while an upstream is paused for a client that does not read its answer. */
  #clientStall: NodeJS.Timeout | undefined;
  #resolveClosed!: () => void;

  constructor(
    private readonly client: Socket,
    private buffered: Buffer,
    initialTarget: HostPort,
    private readonly s: SourceSessionSettings,
  ) {
    this.closed = new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    this.#target = initialTarget;
    this.#wireClient();
    const upstream = this.#openUpstream(initialTarget);
    const timer = setTimeout(() => this.#connectFailed(upstream, 'connect timeout'), s.connectTimeoutMs);
    this.#state = { name: 'connecting', upstream, timer, clientEnded: false };
  }

  /** The Icecast taking the client's audio, or the one a re-attach attempt is trying. */
  get target(): HostPort {
    return this.#state.name === 'reattaching' ? this.#state.attempt.to : this.#target;
  }

  /** Closes both sides at once. */
  close(reason: string): void {
    if (this.#state.name !== 'closed') this.s.log.info({ target: this.target, reason }, 'closing source connection');
    this.#finish(reason);
  }

  /**
   * The master is no longer `target`. A streaming MP3/AAC session keeps its client and moves
   * its audio to the new master; any other session is closed (its client reconnects).
   */
  masterMoved(reason: string): void {
    const st = this.#state;
    switch (st.name) {
      case 'closed':
        return;
      case 'streaming':
        this.#startHold(st, reason, true);
        return;
      case 'held':
        this.#reattach(st.hold);
        return;
      case 'reattaching':
        // An attempt at the new master goes on; one at an old master gives way at once.
        if (sameHostPort(this.s.master(), st.attempt.to)) return;
        this.s.log.debug({ target: st.attempt.to, reason }, 'source re-attach attempt abandoned: the master moved');
        this.#reattach(st.hold);
        return;
      default:
        this.close(reason);
    }
  }

  #enter(next: State): void {
    const prev = this.#state;
    clearTimeout(timerOf(prev));
    const kept = new Set(socketsOf(next));
    for (const sock of socketsOf(prev)) if (!kept.has(sock)) sock.destroy();
    this.#state = next;
    if (prev.name !== next.name) this.s.log.trace({ target: this.target, from: prev.name, to: next.name }, 'source session state');
  }

  #wireClient(): void {
    const c = this.client;
    c.on('data', (chunk: Buffer) => this.#onClientData(chunk));
    c.on('end', () => this.#onClientEnd());
    c.on('drain', () => this.#onClientDrain());
    c.on('error', (err) => this.#finish(`client error: ${errorMessage(err)}`));
    c.once('close', () => {
      this.#finish('client closed');
      this.#resolveClosed();
    });
  }

  /** Every upstream socket, the first one and each re-attach attempt, is wired here once. */
  #openUpstream(to: HostPort): Socket {
    const sock = connect({ host: to.host, port: to.port });
    sock.setNoDelay(true);
    sock.on('connect', () => this.#onUpstreamConnect(sock));
    sock.on('data', (chunk: Buffer) => this.#onUpstreamData(sock, chunk));
    sock.on('drain', () => this.#onUpstreamDrain(sock));
    sock.on('end', () => this.#upstreamGone(sock, 'upstream closed'));
    sock.on('error', (err) => this.#upstreamGone(sock, `upstream error: ${errorMessage(err)}`));
    sock.on('close', () => this.#upstreamGone(sock, 'upstream closed'));
    return sock;
  }

  /** The upstream socket the current state forwards to and from, if any. */
  #upstreamOf(st: State): Socket | undefined {
    return st.name === 'splicing' || st.name === 'streaming' || st.name === 'draining' ? st.upstream : undefined;
  }

  #onClientData(chunk: Buffer): void {
    this.#lastClientDataAt = now();
    const st = this.#state;
    switch (st.name) {
      case 'connecting':
        // The client is paused until the upstream connects; kept for it should a byte slip by.
        this.buffered = Buffer.concat([this.buffered, chunk]);
        this.client.pause();
        return;
      case 'splicing':
      case 'streaming':
        if (!st.upstream.writable) return;
        if (!st.upstream.write(chunk)) this.client.pause();
        return;
      case 'held':
      case 'reattaching':
        st.hold.discardedBytes += chunk.length;
        return;
      default:
        // Draining or closed: read and dropped, so the client's FIN is seen.
        return;
    }
  }

  #onClientEnd(): void {
    const st = this.#state;
    switch (st.name) {
      case 'splicing':
      case 'streaming':
        // The client is done sending: Icecast gets the FIN and may still answer.
        st.upstream.end();
        this.#drain(st.upstream, st.name === 'streaming' && st.replayed);
        return;
      case 'connecting':
        // The FIN can come right behind the head, before Icecast is reached: it follows the head.
        st.clientEnded = true;
        return;
      case 'draining':
      case 'closed':
        return;
      default:
        this.#finish('source client left');
    }
  }

  #onClientDrain(): void {
    clearTimeout(this.#clientStall);
    this.#clientStall = undefined;
    this.#upstreamOf(this.#state)?.resume();
  }

  #onUpstreamConnect(sock: Socket): void {
    const st = this.#state;
    if (st.name === 'connecting' && st.upstream === sock) {
      this.#enter({ name: 'splicing', upstream: sock, reply: this.s.replayHead ? Buffer.alloc(0) : undefined });
      this.client.setNoDelay(true);
      sock.write(this.buffered);
      // Only the replay head is kept beyond this (up to 64 KB of audio may follow the head).
      this.buffered = Buffer.alloc(0);
      this.#resumeClient();
      if (st.clientEnded) this.#onClientEnd();
    } else if (st.name === 'reattaching' && st.attempt.socket === sock) {
      const timer = setTimeout(() => this.#attemptFailed(sock, 'no answer'), st.hold.stepMs(this.s.reattachReplyTimeoutMs, now()));
      this.#enter({ ...st, attempt: { ...st.attempt, phase: 'awaiting-reply', timer } });
      sock.write(this.s.replayHead!);
    }
  }

  #onUpstreamData(sock: Socket, chunk: Buffer): void {
    const st = this.#state;
    if (st.name === 'reattaching' && st.attempt.socket === sock) {
      this.#readAttemptAnswer(st, chunk);
      return;
    }
    if (this.#upstreamOf(st) !== sock) return;
    // Once re-attached, whatever Icecast says is dropped: the client already had its answer.
    if ((st.name === 'streaming' || st.name === 'draining') && st.replayed) return;
    this.#forwardToClient(sock, chunk);
    if (st.name === 'splicing' && st.reply) this.#watchFirstReply(st, chunk);
  }

  /** Icecast's dialogue goes back to the client exactly as sent, never faster than it reads. */
  #forwardToClient(sock: Socket, chunk: Buffer): void {
    if (!this.client.writable) return;
    if (this.client.write(chunk)) return;
    sock.pause();
    // A client that never takes its answer would pin both sockets: it gets a grace, then is closed.
    this.#clientStall ??= setTimeout(() => this.close('the source client does not read its answer'), this.s.clientStallMs);
  }

  #onUpstreamDrain(sock: Socket): void {
    const st = this.#state;
    if ((st.name === 'splicing' || st.name === 'streaming') && st.upstream === sock) this.#resumeClient();
  }

  #watchFirstReply(st: Extract<State, { name: 'splicing' }>, chunk: Buffer): void {
    const reply = Buffer.concat([st.reply!, chunk]);
    const r = readSourceReply(reply);
    if (r.kind === 'incomplete') {
      st.reply = reply;
      return;
    }
    st.reply = undefined;
    if (r.kind !== 'final' || r.status !== 200) return;
    this.#enter({ name: 'streaming', upstream: st.upstream, replayed: false, attachedAt: now(), endedHold: undefined });
    this.s.log.debug({ target: this.#target }, 'source streaming; it will be held across a master change');
  }

  /** An upstream ended, failed or closed; `sock` may belong to a state already left. */
  #upstreamGone(sock: Socket, reason: string): void {
    const st = this.#state;
    if (st.name === 'connecting' && st.upstream === sock) {
      this.#connectFailed(sock, reason);
    } else if (st.name === 'reattaching' && st.attempt.socket === sock) {
      this.#attemptFailed(sock, reason);
    } else if (st.name === 'streaming' && st.upstream === sock && !this.#clientSilent(now())) {
      this.#startHold(st, reason, false);
    } else if ((st.name === 'splicing' || st.name === 'streaming') && st.upstream === sock) {
      // Not holdable: as a plain splice, the client gets Icecast's FIN once its bytes are flushed.
      this.s.log.debug({ target: this.#target, reason }, 'source connection ended');
      this.#endClient();
      // Whatever the client still sends is read and dropped, so its own FIN is seen.
      this.#resumeClient();
      this.#drain(sock, st.name === 'streaming' && st.replayed);
    } else if (st.name === 'draining' && st.upstream === sock) {
      this.#endClient();
    }
  }

  /** One side finished: the other gets a grace to flush, then both are destroyed. */
  #drain(upstream: Socket, replayed: boolean): void {
    const timer = setTimeout(() => this.#finish('linger over'), this.s.lingerMs);
    timer.unref();
    this.#enter({ name: 'draining', upstream, timer, replayed });
  }

  /**
   * A client the proxy stopped reading (its upstream did not take the audio) is not silent:
   * it may have been sending all along. Its silence is counted from when it is read again.
   */
  #clientSilent(t: number): boolean {
    return !this.client.isPaused() && clientSilent(this.#lastClientDataAt, t);
  }

  #resumeClient(): void {
    if (this.client.isPaused()) this.#lastClientDataAt = now();
    this.client.resume();
  }

  #endClient(): void {
    if (!this.client.writableEnded) this.client.end();
  }

  #connectFailed(sock: Socket, reason: string): void {
    const st = this.#state;
    if (st.name !== 'connecting' || st.upstream !== sock) return;
    this.#enter({ name: 'closed' });
    this.s.metrics.increment('source_proxy.upstream_error');
    this.s.log.warn({ target: this.#target, err: reason }, 'master Icecast unreachable for a source client');
    answerAndClose(this.client, plainResponse(503, 'The master Icecast server is unreachable; try again shortly.'));
  }

  /** Detaches the lost upstream and re-attaches; the client is read and never answered. */
  #startHold(st: Extract<State, { name: 'streaming' }>, reason: string, masterMoved: boolean): void {
    this.#resumeClient();
    const t = now();
    if (st.endedHold && continuesHold(st.attachedAt, t, masterMoved)) {
      this.s.log.debug({ target: this.#target, reason }, 'source upstream lost right after re-attaching; still holding');
      this.#retryLater(st.endedHold, reason);
      return;
    }
    const hold = new Hold(t, this.s.holdMs);
    this.s.metrics.increment('source_proxy.hold');
    this.s.log.info({ target: this.#target, reason, holdMs: this.s.holdMs }, 'source upstream lost; holding the client while re-attaching');
    this.#reattach(hold);
  }

  /** Replays the client's head to the current master, or waits for one to be known. */
  #reattach(hold: Hold): void {
    const to = this.s.master();
    if (!to) {
      this.#retryLater(hold, 'no master known');
      return;
    }
    hold.attempts++;
    const socket = this.#openUpstream(to);
    const timer = setTimeout(() => this.#attemptFailed(socket, 'connect timeout'), hold.stepMs(this.s.reattachConnectTimeoutMs, now()));
    this.#enter({ name: 'reattaching', hold, attempt: { socket, to, phase: 'connecting', answer: Buffer.alloc(0), timer } });
  }

  #readAttemptAnswer(st: Extract<State, { name: 'reattaching' }>, chunk: Buffer): void {
    const { attempt } = st;
    if (attempt.phase !== 'awaiting-reply') return;
    attempt.answer = Buffer.concat([attempt.answer, chunk]);
    const r = readSourceReply(attempt.answer);
    if (r.kind === 'incomplete') return;
    if (r.kind === 'invalid') {
      this.#attemptFailed(attempt.socket, `unreadable answer: ${r.reason}`);
    } else if (r.status !== 200) {
      this.#attemptFailed(attempt.socket, `answered ${r.status}`);
    } else if (!sameHostPort(this.s.master(), attempt.to)) {
      // The master moved while this Icecast was answering: its mount is not where listeners are.
      this.s.log.debug({ target: attempt.to }, 'source re-attach answer from an Icecast no longer master; dropped');
      this.#reattach(st.hold);
    } else {
      this.#attach(st.hold, attempt);
    }
  }

  #attach(hold: Hold, attempt: Attempt): void {
    const t = now();
    this.#target = attempt.to;
    this.#enter({ name: 'streaming', upstream: attempt.socket, replayed: true, attachedAt: t, endedHold: hold });
    this.s.metrics.increment('source_proxy.reattach');
    this.s.metrics.increment('source_proxy.discarded_bytes', hold.discardedBytes);
    this.s.metrics.timing('source_proxy.hold', hold.heldMs(t));
    this.s.log.info(
      { target: attempt.to, heldMs: Math.round(hold.heldMs(t)), discardedBytes: hold.discardedBytes, attempts: hold.attempts },
      'source re-attached to the master',
    );
    hold.discardedBytes = 0;
    this.#resumeClient();
  }

  #attemptFailed(sock: Socket, reason: string): void {
    const st = this.#state;
    if (st.name !== 'reattaching' || st.attempt.socket !== sock) return;
    this.s.log.debug({ target: st.attempt.to, reason }, 'source re-attach attempt failed');
    this.#retryLater(st.hold, reason);
  }

  #retryLater(hold: Hold, reason: string): void {
    const t = now();
    if (this.#clientSilent(t)) {
      this.#finish('the source client went silent while held');
      return;
    }
    const delay = hold.retryDelayMs(this.s.reattachIntervalMs, t);
    if (delay === undefined) {
      this.s.metrics.increment('source_proxy.reattach_failed');
      this.s.metrics.increment('source_proxy.discarded_bytes', hold.discardedBytes);
      this.s.log.warn(
        { target: this.#target, reason, heldMs: Math.round(hold.heldMs(t)), discardedBytes: hold.discardedBytes, attempts: hold.attempts },
        'no master took the source back; closing the client',
      );
      this.#finish('hold expired');
      return;
    }
    const retry = setTimeout(() => this.#reattach(hold), delay);
    this.#enter({ name: 'held', hold, retry });
  }

  #finish(reason: string): void {
    if (this.#state.name !== 'closed') {
      this.s.log.debug({ target: this.#target, reason, state: this.#state.name }, 'source connection ended');
      this.#enter({ name: 'closed' });
    }
    clearTimeout(this.#clientStall);
    this.#clientStall = undefined;
    this.client.destroy();
  }
}
