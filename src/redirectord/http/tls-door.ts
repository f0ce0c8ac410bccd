import { Server as TlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { errorMessage } from '../../common/errors.js';
import type { FrontDoor } from './front-door.js';

export interface TlsDoorOptions {
  frontDoor: Pick<FrontDoor, 'adopt'>;
  /** The certificate and key to start with (see certificate-files.ts). */
  credentials: SecureContextOptions;
  log: Logger;
  metrics: Metrics;
  /** Time a client gets to finish its TLS handshake. 10 s, as the front door's head timeout. */
  handshakeTimeoutMs?: number;
  /**
   * Handshakes in progress at once, all addresses together; a connection beyond is closed at
   * once. They cost a descriptor and a TLS state each before the front door's own budget sees
   * them. 512, as the front door's pending heads.
   */
  maxHandshakes?: number;
}

/**
 * The HTTPS port. Only the TLS layer lives here: each connection whose handshake completed is
 * handed to the front door (`adopt`), which treats its decrypted bytes exactly as a plain
 * connection's (redirects, playlists, `/_stream`, sources spliced in plain text to the
 * master's Icecast, the HTTP application). What happens before that is bounded here: a
 * handshake that does not finish in time, garbage, or plain HTTP on this port ends in a
 * 'tlsClientError' that closes only that connection.
 */
export class TlsDoor extends TlsServer {
  /** TCP connections whose handshake is in progress, by peer address and port. */
  private readonly handshaking = new Set<string>();

  constructor(opts: TlsDoorOptions) {
    super({
      ...opts.credentials,
      handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
      // HTTP/1.1 only: the front door reads HTTP/1 heads; a browser must not try HTTP/2.
      ALPNProtocols: ['http/1.1'],
      allowHalfOpen: true,
    });
    const maxHandshakes = opts.maxHandshakes ?? 512;
    const { log, metrics } = opts;
    this.on('connection', (raw: Socket) => {
      if (this.handshaking.size >= maxHandshakes) {
        metrics.increment('front_door.tls.rejected', 1, { reason: 'handshakes' });
        raw.destroy();
        return;
      }
      const key = peerKey(raw);
      this.handshaking.add(key);
      raw.once('close', () => this.handshaking.delete(key));
    });
    this.on('secureConnection', (socket: TLSSocket) => {
      // The TLS socket reports its TCP connection's peer: the same key as the raw socket's.
      this.handshaking.delete(peerKey(socket));
      metrics.increment('front_door.tls.handshake');
      opts.frontDoor.adopt(socket);
    });
    this.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      metrics.increment('front_door.tls.rejected', 1, { reason: err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'timeout' : 'handshake' });
      log.debug({ err: errorMessage(err), code: err.code, client: socket.remoteAddress }, 'TLS handshake failed');
      socket.destroy();
    });
    // Accept fails with EMFILE when descriptors run out: that is load, not a reason to exit.
    this.on('error', (err: NodeJS.ErrnoException) => {
      metrics.increment('front_door.accept_error');
      log.error({ err: errorMessage(err), code: err.code }, 'HTTPS socket error');
    });
  }

  /** Handshakes in progress. */
  get pendingHandshakes(): number {
    return this.handshaking.size;
  }
}

function peerKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}
