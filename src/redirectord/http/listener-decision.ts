import type { ClusterState } from '../../coordination/cluster-state.js';
import type { Balancer } from '../balancer/balancer.js';
import { CORS_RESPONSE_HEADERS } from './cors.js';
import { resolveListenerRequest } from './listener-path.js';
import { hasFramedBody, type RequestHead } from './request-head.js';
import { clientFamily, publicStreamUrl, redirectTarget, type Scheme } from './urls.js';

/**
 * The answer to a listener's `GET`/`HEAD` on a stream or playlist URL, decided once for both
 * ways a request can arrive: the fastify route (listener-routes.ts) and the front door's fast
 * path, which writes the 302 itself without node:http. Pure apart from the balancer's own
 * bookkeeping (a GET's redirect counts as a pending listener on the chosen node; a HEAD's not).
 */

/** Seconds a listener is told to wait when no node can take it (about one status report). */
export const RETRY_AFTER_SECONDS = 5;

export interface ListenerContext {
  domain: string;
  /** redirectord's port on every node. */
  httpPort: number;
  /** true: listeners go to the chosen node's /_stream proxy; false: straight to its Icecast port. */
  enableIcecastProxy: boolean;
  /** The listener's address as the socket reports it (selects the address family). */
  remoteAddress: string | undefined;
  /** A HEAD is answered like a GET but never counts as a pending listener on the chosen node. */
  method: 'GET' | 'HEAD';
  /** How the request arrived (default plain HTTP): the URLs in the answer use the same. */
  scheme?: Scheme;
}

/** What happened, for metrics and logs (kept out of the decision so it stays pure). */
export type ListenerOutcome =
  | { kind: 'redirect'; mount: string; node: string }
  | { kind: 'unavailable'; mount: string; nodes: number }
  | { kind: 'playlist'; mount: string; format: string }
  | { kind: 'not_found' };

export interface ListenerResponse {
  status: number;
  /** In the order they are sent; lowercase names, as fastify sends them. */
  headers: ReadonlyArray<readonly [string, string]>;
  body: string;
  outcome: ListenerOutcome;
}

const CORS: ReadonlyArray<readonly [string, string]> = Object.entries(CORS_RESPONSE_HEADERS);
const TEXT_TYPE = 'text/plain; charset=utf-8';

/** Decides the answer to `GET`/`HEAD rawUrl` (path and query as sent) on the listener route. */
export function decideListenerResponse(
  rawUrl: string,
  state: ClusterState,
  balancer: Balancer,
  ctx: ListenerContext,
): ListenerResponse {
  const target = resolveListenerRequest(rawUrl, state.mounts);
  switch (target.kind) {
    case 'unknown':
      return {
        status: 404,
        headers: [...CORS, ['content-type', TEXT_TYPE], ['cache-control', 'no-cache']],
        body: 'No such stream\n',
        outcome: { kind: 'not_found' },
      };
    case 'playlist': {
      const path = target.mount.path;
      const url = publicStreamUrl(ctx.domain, ctx.httpPort, path, ctx.scheme);
      const ext = target.format.extension;
      return {
        status: 200,
        headers: [
          ...CORS,
          ['content-type', target.format.contentType],
          ['cache-control', 'no-cache'],
          ['content-disposition', `inline; filename="${path.slice(path.lastIndexOf('/') + 1)}.${ext}"`],
        ],
        body: target.format.render(url, `${ctx.domain}${path}`),
        outcome: { kind: 'playlist', mount: path, format: ext },
      };
    }
    case 'stream': {
      const family = clientFamily(ctx.remoteAddress);
      const mount = target.mount.path;
      const node = balancer.choose([...state.nodes.values()], {
        clientFamily: family,
        mount,
        bitrateKbps: target.mount.transcoding?.bitrate,
        clientAddress: ctx.remoteAddress,
        probe: ctx.method === 'HEAD',
      });
      if (!node) {
        return {
          status: 503,
          headers: [
            ...CORS,
            ['retry-after', String(RETRY_AFTER_SECONDS)],
            ['content-type', TEXT_TYPE],
            ['cache-control', 'no-cache'],
          ],
          body: 'No server can take this listener now, retry shortly\n',
          outcome: { kind: 'unavailable', mount, nodes: state.nodes.size },
        };
      }
      const location = redirectTarget({
        node,
        family,
        domain: ctx.domain,
        mountPath: mount,
        query: target.query,
        httpPort: ctx.httpPort,
        enableIcecastProxy: ctx.enableIcecastProxy,
        scheme: ctx.scheme,
      });
      // The follow-up request may go to this very node's /_stream, which only the front door
      // can serve: node:http must not keep the connection. (The front door's fast path keeps
      // it alive instead, reading the next head itself: see encodeListenerResponse.)
      return {
        status: 302,
        headers: [...CORS, ['location', location], ['cache-control', 'no-cache'], ['connection', 'close']],
        body: '',
        outcome: { kind: 'redirect', mount, node: node.name },
      };
    }
  }
}

const REASONS: Readonly<Record<number, string>> = {
  200: 'OK',
  302: 'Found',
  404: 'Not Found',
  503: 'Service Unavailable',
};

/**
 * The bytes node:http writes for `res` after fastify has set its headers: HTTP/1.1 status line,
 * the headers in order, `content-length`, `Date`, and `Connection: close` unless the response
 * names its own. HEAD gets the head only. With `keepAlive` (the front door goes on reading the
 * connection itself) the answer says `connection: keep-alive` instead of closing.
 */
export function encodeListenerResponse(res: ListenerResponse, o: { head: boolean; date: string; keepAlive?: boolean }): Buffer {
  let text = `HTTP/1.1 ${res.status} ${REASONS[res.status] ?? 'Unknown'}\r\n`;
  let ownConnection = false;
  for (const [name, value] of res.headers) {
    if (name === 'connection') {
      ownConnection = true;
      if (o.keepAlive) {
        text += 'connection: keep-alive\r\n';
        continue;
      }
    }
    text += `${name}: ${value}\r\n`;
  }
  text += `content-length: ${Buffer.byteLength(res.body)}\r\nDate: ${o.date}\r\n`;
  if (!ownConnection) text += o.keepAlive ? 'Connection: keep-alive\r\n' : 'Connection: close\r\n';
  text += '\r\n';
  if (o.head || res.body === '') return Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from(res.body, 'utf8')]);
}

const CR = 0x0d;
const LF = 0x0a;
const NOT_URL_ASCII = /[^\x21-\x7e]/;

/**
 * Whether the front door may answer this head itself, i.e. node:http would read it as a plain
 * bodiless GET/HEAD in origin form: an ASCII target, strict CRLF lines, no control bytes
 * (what node:http's parser refuses with a 400), a Host header on
 * HTTP/1.1, no body, no Expect/Upgrade dialogue, and a path without percent escapes (mount
 * paths never need one, and escaped paths might route elsewhere in fastify). Anything else
 * goes to the HTTP server, whose parser answers it as before. `buf` holds the head's bytes.
 */
export function isPlainListenerHead(buf: Uint8Array, head: RequestHead): boolean {
  if (head.method !== 'GET' && head.method !== 'HEAD') return false;
  if (head.version !== 'HTTP/1.1' && head.version !== 'HTTP/1.0') return false;
  const target = head.target;
  // node:http refuses bytes above 0x7e in the request target (400).
  if (target.charCodeAt(0) !== 0x2f || NOT_URL_ASCII.test(target)) return false;
  const q = target.indexOf('?');
  const pct = target.indexOf('%');
  if (pct !== -1 && (q === -1 || pct < q)) return false;
  const h = head.headers;
  if (head.version === 'HTTP/1.1' && !h.has('host')) return false;
  if (hasFramedBody(head) || h.has('transfer-encoding') || h.has('expect') || h.has('upgrade')) return false;
  // Leading blank lines, bare LF or CR, and control bytes are left to node:http's parser.
  const end = head.headEnd;
  if (end > buf.length || buf[0] === CR || buf[0] === LF) return false;
  for (let i = 0; i < end; i++) {
    const c = buf[i]!;
    if (c >= 0x20 && c !== 0x7f) continue;
    if (c === 0x09) continue;
    if (c === CR && buf[i + 1] === LF) continue;
    if (c === LF && i > 0 && buf[i - 1] === CR) continue;
    return false;
  }
  return true;
}
