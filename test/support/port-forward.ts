import { createServer, connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { spawnInNamespace, type NsProcessRecord } from './netns.js';

/**
 * A TCP forwarder from the root namespace into a cluster namespace, so that players on this
 * machine (mpv, curl, a browser) can reach a node whose address only exists inside the
 * namespaces. The listening socket is opened here, in the root namespace, and handed as fd 3
 * to a child started with `ip netns exec`: the child accepts on the root-namespace socket and
 * connects out from inside the node's namespace. Nothing is added to the root namespace's
 * addresses or routes.
 *
 * Redirects and playlists name cluster addresses (`http://10.99.x.2/_stream/...`); the child
 * rewrites those hosts in `Location` headers and in small playlist bodies to the matching
 * forwarded `127.0.0.1:PORT`, so a redirect from one node to another keeps working from here.
 */

export interface ForwardSpec {
  /** Cluster host (address or name, without port 80) -> replacement `host:port`. */
  rewrites: Record<string, string>;
  targetHost: string;
  targetPort: number;
}

export async function startPortForward(
  ns: string,
  listen: { host: string; port: number },
  spec: ForwardSpec,
  logFile: string,
): Promise<NsProcessRecord> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: listen.host, port: listen.port, exclusive: true }, resolve);
  });
  try {
    const fd = (server as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) throw new Error('cannot get the listening socket fd');
    const tsx = import.meta.resolve('tsx');
    const self = fileURLToPath(import.meta.url);
    return spawnInNamespace(
      ns,
      [process.execPath, '--import', tsx, self, 'serve', JSON.stringify(spec)],
      logFile,
      { extraFds: [fd] },
    );
  } finally {
    server.close();
  }
}

const PLAYLIST_TYPES = /mpegurl|scpls|xspf|x-scpls|text\/plain/i;
const MAX_HEAD = 64 * 1024;
const MAX_PLAYLIST = 256 * 1024;

/** Replaces `http://HOST[:80]` for every known cluster host. */
export function rewriteUrls(text: string, rewrites: Record<string, string>): string {
  return text.replace(/http:\/\/([A-Za-z0-9.-]+)(:80)?(?=[/\s"'<]|$)/g, (whole, host: string) => {
    const to = rewrites[host.toLowerCase()];
    return to ? `http://${to}` : whole;
  });
}

/**
 * Rewrites response heads (and playlist bodies with a Content-Length) on an upstream -> client
 * byte stream. Bodies with a Content-Length are stepped over so keep-alive responses stay
 * aligned; a close-delimited or chunked body (an audio stream) switches to raw pass-through.
 */
export class ResponseRewriter {
  private buf: Buffer = Buffer.alloc(0);
  private mode: 'head' | 'skip' | 'playlist' | 'raw' = 'head';
  private remaining = 0;
  private head = '';

  constructor(private readonly rewrites: Record<string, string>) {}

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    while (this.buf.length > 0) {
      if (this.mode === 'raw') {
        out.push(this.buf);
        this.buf = Buffer.alloc(0);
      } else if (this.mode === 'skip') {
        const n = Math.min(this.remaining, this.buf.length);
        out.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.remaining -= n;
        if (this.remaining === 0) this.mode = 'head';
      } else if (this.mode === 'playlist') {
        if (this.buf.length < this.remaining) break;
        const body = Buffer.from(rewriteUrls(this.buf.subarray(0, this.remaining).toString('utf8'), this.rewrites));
        out.push(Buffer.from(this.head.replace(/^content-length:.*$/im, `Content-Length: ${body.length}`)), body);
        this.buf = this.buf.subarray(this.remaining);
        this.mode = 'head';
      } else {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.buf.length > MAX_HEAD) this.mode = 'raw';
          break;
        }
        const head = rewriteLocation(this.buf.subarray(0, end + 4).toString('latin1'), this.rewrites);
        this.buf = this.buf.subarray(end + 4);
        const length = /^content-length:\s*(\d+)\s*$/im.exec(head);
        const chunked = /^transfer-encoding:.*chunked/im.test(head);
        const type = /^content-type:\s*(.*)$/im.exec(head)?.[1] ?? '';
        if (length && !chunked) {
          this.remaining = Number(length[1]);
          if (PLAYLIST_TYPES.test(type) && this.remaining > 0 && this.remaining <= MAX_PLAYLIST) {
            this.head = head;
            this.mode = 'playlist';
            continue;
          }
          out.push(Buffer.from(head, 'latin1'));
          this.mode = this.remaining > 0 ? 'skip' : 'head';
        } else {
          out.push(Buffer.from(head, 'latin1'));
          this.mode = 'raw';
        }
      }
    }
    return out;
  }
}

export function rewriteLocation(head: string, rewrites: Record<string, string>): string {
  return head.replace(/^(location:\s*)(.*)$/im, (_all, name: string, value: string) => name + rewriteUrls(value, rewrites));
}

function serve(spec: ForwardSpec): void {
  const server = createServer({ pauseOnConnect: false }, (client: Socket) => {
    const upstream = connect({ host: spec.targetHost, port: spec.targetPort });
    const rewriter = new ResponseRewriter(spec.rewrites);
    const done = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', done).on('close', done);
    upstream.on('error', done).on('close', done);
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => {
      for (const b of rewriter.push(chunk)) if (b.length) client.write(b);
    });
  });
  server.on('error', (err) => {
    console.error(`forwarder: ${err.message}`);
    process.exit(1);
  });
  server.listen({ fd: 3 }, () => console.log(`forwarding fd 3 -> ${spec.targetHost}:${spec.targetPort}`));
}

if (process.argv[2] === 'serve' && process.argv[1] === fileURLToPath(import.meta.url)) {
  serve(JSON.parse(process.argv[3]!) as ForwardSpec);
}
