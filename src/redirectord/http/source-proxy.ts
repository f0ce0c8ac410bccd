import type { Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { HostPort } from '../../coordination/host-port.js';
import type { RequestHead } from './request-head.js';
import { isHoldableSourceRequest } from './source-reply.js';
import { SourceSession as Session } from './source-session.js';

export interface SourceProxyOptions {
  log: Logger;
  metrics: Metrics;
  /** How long to wait for the master's Icecast to accept the TCP connection. */
  connectTimeoutMs?: number;
  /** Grace for flushing the last bytes to one side once the other has gone. */
  lingerMs?: number;
  /** Time a client that does not read Icecast's answer (its 401, say) is kept; 5 s. */
  clientStallMs?: number;
  /** The client's first request head (parsed from `buffered`); with `master`, enables holding. */
  head?: RequestHead;
  /** The current master's Icecast, read again on every re-attach attempt. */
  master?: () => HostPort | undefined;
  /** Longest hold of a streaming client while no master takes its audio; 30 s. 0 disables. */
  holdMs?: number;
  /**
   * Pause between re-attach attempts; 100 ms. A new master's Icecast asks its radiod about each
   * attempt and takes the source the moment it may: the pause is all the wait that is left.
   */
  reattachIntervalMs?: number;
  /** Connect timeout of one re-attach attempt (the master may be gone or not yet known); 1 s. */
  reattachConnectTimeoutMs?: number;
  /** Time Icecast gets to answer one re-attach attempt once connected; 3 s. */
  reattachReplyTimeoutMs?: number;
}

/** What the front door holds of a source connection (a `SourceSession` of source-session.ts). */
export interface SourceSession {
  /** The Icecast that gets (or last got) the client's audio, or the one a re-attach attempt is trying. */
  readonly target: HostPort;
  /** Closes both sides at once. */
  close(reason: string): void;
  /**
   * The master is no longer `target`. A streaming MP3/AAC session keeps its client and moves
   * its audio to the new master; any other session is closed (its client reconnects).
   */
  masterMoved(reason: string): void;
  /** Resolves once the client socket is gone (upstreams are destroyed with it). */
  readonly closed: Promise<void>;
}

/**
 * Splices a source client to the master's Icecast byte for byte. Icecast runs the whole
 * dialogue (401 challenge, 100 Continue, 200) itself: the proxy never answers for it, because
 * every source client reacts differently to anything but Icecast's exact replies.
 * `buffered` is everything read from the client so far (head and any audio behind it).
 *
 * Continuity: once Icecast has answered 200 to an MP3/AAC SOURCE/PUT, losing that Icecast (it
 * died, or the master moved) does not close the client. Many source clients cope badly with a
 * close (darkice exits, libshout fails while the new master's mount is not live yet), so the
 * client is held instead: its audio is read and dropped, so it never blocks and stays live, while
 * its original request head is replayed to the current master until one answers 200; the
 * splice then resumes at the next chunk (MP3/AAC decoders resync on the next frame). Nothing is
 * ever written to a held client. After `holdMs` without success it is closed as before.
 * The states and their transitions are in source-session.ts.
 */
export function proxySource(client: Socket, buffered: Buffer, initialTarget: HostPort, opts: SourceProxyOptions): SourceSession {
  const holdMs = opts.holdMs ?? 30_000;
  const master = opts.master;
  // The head exactly as the client sent it, credentials included: what every new master gets.
  const replayHead =
    master && holdMs > 0 && opts.head && isHoldableSourceRequest(opts.head)
      ? Buffer.from(buffered.subarray(0, opts.head.headEnd))
      : undefined;
  return new Session(client, buffered, initialTarget, {
    log: opts.log,
    metrics: opts.metrics,
    replayHead,
    master: master ?? (() => undefined),
    connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
    lingerMs: opts.lingerMs ?? 5000,
    clientStallMs: opts.clientStallMs ?? 5000,
    holdMs,
    reattachIntervalMs: opts.reattachIntervalMs ?? 100,
    reattachConnectTimeoutMs: opts.reattachConnectTimeoutMs ?? 1000,
    reattachReplyTimeoutMs: opts.reattachReplyTimeoutMs ?? 3000,
  });
}
