import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Metrics } from '../../common/metrics.js';
import type { HttpAppDeps } from './deps.js';
import { CORS_PREFLIGHT_HEADERS, CORS_RESPONSE_HEADERS } from './cors.js';
import {
  decideListenerResponse,
  encodeListenerResponse,
  type ListenerContext,
  type ListenerOutcome,
} from './listener-decision.js';
import type { RequestHead } from './request-head.js';
import { STREAM_PREFIX, requestScheme } from './urls.js';
import { LISTCLIENTS_PATHS } from '../access/listclients.js';
import type { TLSSocket } from 'node:tls';


/** The catch-all route every stream and playlist URL reaches in fastify. */
export const LISTENER_ROUTE = '/*';

/** Stream redirects and playlists: every path that is not `/` or `/status.json`. */
export function registerListenerRoutes(app: FastifyInstance, deps: HttpAppDeps): void {
  function listener(request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
    const res = decideListenerResponse(request.raw.url ?? '/', deps.state.current(), deps.balancer, context(deps, request.socket.remoteAddress, method, (request.socket as Partial<TLSSocket>).encrypted === true));
    recordListenerOutcome(res.outcome, deps.metrics, request.log);
    for (const [name, value] of res.headers) void reply.header(name, value);
    void reply.code(res.status);
    return res.body === '' ? reply.send() : reply.send(res.body);
  }

  // Reached only when a client reuses a connection the front door already handed to the app:
  // send it to the same URL on a fresh connection, which the front door answers itself.
  const toFreshConnection = (request: FastifyRequest, reply: FastifyReply) =>
    reply
      .code(307)
      .headers(CORS_RESPONSE_HEADERS)
      .header('location', request.raw.url ?? '/')
      .header('cache-control', 'no-cache')
      .header('connection', 'close')
      .send();
  if (deps.enableIcecastProxy) app.get(`${STREAM_PREFIX}/*`, toFreshConnection);
  for (const path of LISTCLIENTS_PATHS.keys()) app.get(path, toFreshConnection);
  app.get(LISTENER_ROUTE, listener);
  app.options('/*', (_request, reply) => reply.code(204).headers(CORS_PREFLIGHT_HEADERS).send());
}

function context(deps: HttpAppDeps, remoteAddress: string | undefined, method: 'GET' | 'HEAD', secure: boolean): ListenerContext {
  const scheme = requestScheme(deps.httpsPort, secure);
  return { domain: deps.domain, httpPort: deps.httpPort, enableIcecastProxy: deps.enableIcecastProxy, remoteAddress, method, scheme };
}


/** Metrics and logs of a listener answer, the same whichever path sent it. */
export function recordListenerOutcome(outcome: ListenerOutcome, metrics: Metrics, log: Pick<FastifyBaseLogger, 'warn'>): void {
  switch (outcome.kind) {
    case 'redirect':
      metrics.increment('http.redirect', 1, { node: outcome.node });
      return;
    case 'unavailable':
      metrics.increment('http.unavailable');
      log.warn({ mount: outcome.mount, nodes: outcome.nodes }, 'no node can take a listener');
      return;
    case 'playlist':
      metrics.increment('http.playlist', 1, { format: outcome.format });
      return;
    case 'not_found':
      metrics.increment('http.not_found');
      return;
  }
}

/**
 * Front door fast path: answers a head itself, or undefined to hand the connection over.
 * `keepAlive`: the front door keeps reading the connection after the answer. `secure`: the
 * connection is TLS (the answer names https:// URLs).
 */
export type ListenerAnswer = (head: RequestHead, remoteAddress: string | undefined, keepAlive: boolean, secure?: boolean) => Buffer | undefined;

/**
 * The front door's answer to stream redirects, from the same decision as the fastify route,
 * for listener heads that isPlainListenerHead() accepted. Only 302s are answered here, the
 * bulk of the traffic, where node:http and fastify add nothing but cost. Playlists, 404s and
 * 503s, and any path another fastify route owns
 * (`isOtherRoute`, e.g. `/status.json` even if a mount had that name) are handed over. The
 * path is resolved before the balancer runs, so a handed-over request is never counted twice.
 * fastify hooks never see these requests: a hook added for listener routes must check here too.
 */
export function createListenerAnswer(deps: HttpAppDeps, isOtherRoute: (path: string) => boolean): ListenerAnswer {
  const log = deps.log;
  let dateSecond = -1;
  let date = '';
  const answer: ListenerAnswer = (head, remoteAddress, keepAlive, secure = false) => {
    if (head.method !== 'GET' && head.method !== 'HEAD') return undefined;
    const q = head.target.indexOf('?');
    const path = q === -1 ? head.target : head.target.slice(0, q);
    if (isOtherRoute(path)) return undefined;
    const state = deps.state.current();
    if (!state.mounts.has(path)) return undefined;
    const res = decideListenerResponse(head.target, state, deps.balancer, context(deps, remoteAddress, head.method, secure));
    // A known mount path is always a stream: only "no node" (503) is left to fastify, and the
    // balancer records nothing then.
    if (res.status !== 302) return undefined;
    recordListenerOutcome(res.outcome, deps.metrics, log);
    // node:http's Date header, built at most once a second as node:http does.
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== dateSecond) {
      dateSecond = second;
      date = new Date(now).toUTCString();
    }
    return encodeListenerResponse(res, { head: head.method === 'HEAD', date, keepAlive });
  };
  // Called from the front door's socket callback: a failure is logged and the request handed
  // to fastify (whose error handler answers 500), never thrown into the socket handler.
  return (head, remoteAddress, keepAlive, secure) => {
    try {
      return answer(head, remoteAddress, keepAlive, secure);
    } catch (err) {
      log.error({ err, target: head.target.slice(0, 200) }, 'listener fast path failed; handing the request over');
      return undefined;
    }
  };
}
