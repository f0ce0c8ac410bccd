import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { HttpAppDeps } from './app.js';
import { CORS_PREFLIGHT_HEADERS, CORS_RESPONSE_HEADERS } from './cors.js';
import { resolveListenerRequest } from './listener-path.js';
import { STREAM_PREFIX, clientFamily, publicStreamUrl, redirectTarget } from './urls.js';

/** Seconds a listener is told to wait when no node can take it (about one status report). */
export const RETRY_AFTER_SECONDS = 5;

/** Stream redirects and playlists: every path that is not `/` or `/status.json`. */
export function registerListenerRoutes(app: FastifyInstance, deps: HttpAppDeps): void {
  const { balancer, metrics } = deps;

  function text(reply: FastifyReply, code: number, body: string): FastifyReply {
    return reply.code(code).type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(body);
  }

  function listener(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    void reply.headers(CORS_RESPONSE_HEADERS);
    const state = deps.state.current();
    const target = resolveListenerRequest(request.raw.url ?? '/', state.mounts);
    switch (target.kind) {
      case 'unknown':
        metrics.increment('http.not_found');
        return text(reply, 404, 'No such stream\n');
      case 'playlist': {
        metrics.increment('http.playlist', 1, { format: target.format.extension });
        const url = publicStreamUrl(deps.domain, deps.httpPort, target.mount.path);
        const body = target.format.render(url, `${deps.domain}${target.mount.path}`);
        return reply
          .code(200)
          .type(target.format.contentType)
          .header('cache-control', 'no-cache')
          .header('content-disposition', `inline; filename="${basename(target.mount.path)}.${target.format.extension}"`)
          .send(body);
      }
      case 'stream': {
        const family = clientFamily(request.socket.remoteAddress);
        const node = balancer.choose([...state.nodes.values()], {
          clientFamily: family,
          mount: target.mount.path,
          bitrateKbps: target.mount.transcoding?.bitrate,
        });
        if (!node) {
          metrics.increment('http.unavailable');
          request.log.warn({ mount: target.mount.path, nodes: state.nodes.size }, 'no node can take a listener');
          return text(reply.header('retry-after', String(RETRY_AFTER_SECONDS)), 503, 'No server can take this listener now, retry shortly\n');
        }
        const location = redirectTarget({
          node,
          family,
          domain: deps.domain,
          mountPath: target.mount.path,
          query: target.query,
          httpPort: deps.httpPort,
          enableIcecastProxy: deps.enableIcecastProxy,
        });
        metrics.increment('http.redirect', 1, { node: node.name });
        // The follow-up request may go to this very node's /_stream: it must arrive on a new
        // connection, which the front door sees, not on this one, which belongs to the app.
        return reply
          .code(302)
          .header('location', location)
          .header('cache-control', 'no-cache')
          .header('connection', 'close')
          .send();
      }
    }
  }

  // Reached only when a client reuses a connection the front door already handed to the app:
  // send it to the same URL on a fresh connection, which the front door will proxy.
  if (deps.enableIcecastProxy) {
    app.get(`${STREAM_PREFIX}/*`, (request, reply) =>
      reply
        .code(307)
        .headers(CORS_RESPONSE_HEADERS)
        .header('location', request.raw.url ?? '/')
        .header('cache-control', 'no-cache')
        .header('connection', 'close')
        .send(),
    );
  }
  app.get('/*', listener);
  app.options('/*', (_request, reply) => reply.code(204).headers(CORS_PREFLIGHT_HEADERS).send());
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
