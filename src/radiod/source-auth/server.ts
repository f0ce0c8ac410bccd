import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { Mount } from '../../coordination/mount.js';
import { judgeSourceAuth, parseSourceAuthForm } from './verdict.js';

/** The header Icecast's URL authenticator looks for in a positive answer (its `auth_header`). */
export const SOURCE_AUTH_HEADER = 'icecast-auth-user';
const MAX_BODY_BYTES = 4096;
const BODY_TIMEOUT_MS = 2000;

export interface SourceAuthOptions {
  mounts: () => ReadonlyMap<string, Mount>;
  /** Asked at every request: the answer must reflect the fencing state of this very moment. */
  mayTakeSources: () => boolean;
  log: Logger;
  metrics: Metrics;
}

/**
 * The local Icecast's source authenticator, on loopback only: it answers whether a source
 * password is right, so it must never be reachable from the network. Each answer is decided
 * when asked (verdict.ts); nothing is cached.
 */
export class SourceAuthServer {
  private readonly server: Server;

  constructor(private readonly opts: SourceAuthOptions) {
    // Timeouts are checked every connectionsCheckingInterval (30 s by default): a dribbled
    // request would otherwise hold its connection that long.
    this.server = createServer(
      { requestTimeout: BODY_TIMEOUT_MS, headersTimeout: BODY_TIMEOUT_MS, connectionsCheckingInterval: 250 },
      (req, res) => this.handle(req, res),
    );
  }

  /** Binds an ephemeral loopback port; the URL goes into icecast.xml. */
  async start(): Promise<string> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}/source-auth`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        res.writeHead(413).end();
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.writableEnded) return;
      const request = parseSourceAuthForm(Buffer.concat(chunks).toString('latin1'));
      const verdict = judgeSourceAuth(request, this.opts.mounts(), this.opts.mayTakeSources());
      this.opts.metrics.increment('source_auth', 1, { result: verdict.allow ? 'allowed' : 'refused' });
      const fields = { mount: request.mount?.slice(0, 200), admin: request.admin };
      if (verdict.allow) {
        this.opts.log.info(fields, 'source allowed');
        res.writeHead(200, { [SOURCE_AUTH_HEADER]: '1' }).end();
      } else {
        this.opts.log.info({ ...fields, reason: verdict.reason }, 'source refused');
        res.writeHead(200, { 'icecast-auth-message': verdict.reason }).end();
      }
    });
    req.on('error', () => res.destroy());
  }
}
